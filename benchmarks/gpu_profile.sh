#!/usr/bin/env bash
# The paper-scale GPU profile (profiles/paper-gpu.yaml) end to end on one GPU machine, in a fixed
# wall-clock budget: download (from a local CamVid copy) → preprocess at 360×480 → train + evaluate
# for every method × seed, several runs sharing the GPU → compare → bench_gpu.py; results packed
# into $OUT/gpu-results.tar.gz (split into 15 MiB parts if larger) and $OUT/summary.txt.
#
#   benchmarks/gpu_profile.sh RAW_CAMVID_DIR          # a folder holding CamVid/ (or CamVid/ itself)
#   benchmarks/gpu_profile.sh --cpu-tiny [RAW_DIR]    # dry run on CPU: 48×64, 1 epoch, 1 seed, 2 methods
#   benchmarks/gpu_profile.sh --sweep [--cpu-tiny] RAW_DIR   # instead of the grid, the validation
#       sweep of $GPU_PROFILE_SWEEP (benchmarks/gpu_sweep.py): training runs only, validation split
#       only, no evaluate, no compare; the bench runs after it as after the grid
#   benchmarks/gpu_profile.sh --help                  # this header
#
# Without CUDA (torch.cuda.is_available() false) the script stops at once, before any download, with
# one line naming --cpu-tiny, unless the merged params ask for runtime.device cpu (the dry run does;
# GPU_PROFILE_SET='runtime.device: cpu' runs the full profile on CPU). runtime.device auto is refused
# there too: on a machine without CUDA it would train the paper-scale grid on CPU unasked. With --sweep
# the params checked are each arm's (what trains; an arm's set: may name runtime.device, over the dry
# run's cpu; the line names the arms), so the sweep is planned before the check, and so before the
# data: a bad sweep file fails before the download too.
#
# Exit status: 0 when every run finished or was stopped by the deadline (rc 124 from `timeout`, or
# never started for lack of time: the budget at work, shown in runs.tsv and the summary); 1 when any
# training or evaluation failed (any other rc, 137 included), when no run finished at all, or when a
# step before the grid (merge, download, preprocess, plan) failed; 2 for bad arguments and the
# refusal above. Failed runs do not stop the others, and whatever exists is packed and benchmarked
# before the exit, so a GPU window is never wasted; the bench's own rc shows in phases.tsv and does
# not change the status.
#
# Environment (defaults in brackets):
#   CAMVID_RAW               the raw CamVid location, instead of the argument
#   OUT                      where the results go [.gpu/out]
#   GPU_PROFILE_DRY=1        same as --cpu-tiny
#   GPU_PROFILE_BUDGET       seconds from start by which everything, packing included, is done [550]
#   GPU_PROFILE_WORKERS      concurrent train+evaluate jobs sharing the GPU [4]
#   GPU_PROFILE_BENCH_S      seconds kept for bench_gpu.py after the grid [60: its eager rows; the
#                            compiled rows get what the grid leaves. The H200 grid took 341 s of the
#                            390 s a 120-s reserve left it, and an H100 has ~30% less memory
#                            bandwidth (3.35 vs 4.8 TB/s): the grid gets the time]
#   GPU_PROFILE_COMPILE      true/false: override the profile's train.compile
#   GPU_PROFILE_SET          extra overrides, YAML lines 'key: value' (e.g. 'train.epochs: 12')
#   GPU_PROFILE_PROFILE      the profile [profiles/paper-gpu.yaml]
#   GPU_PROFILE_SWEEP        the sweep file of --sweep [benchmarks/gpu_sweep.yaml]
#   GPU_PROFILE_WORK         scratch folder [a new mktemp -d]
# Training runs through segrepro's own run_training/save_checkpoint (what `segrepro train` calls);
# only the logger differs: dvclive is not installed on the GPU machine (it imports dvc and ~30
# packages at import time), so a small logger writes DVCLive's exact file layout instead.
set -uo pipefail
START=$(date +%s)  # epoch seconds: the job workers are separate shells
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2
DRY=${GPU_PROFILE_DRY:-0}
MODE=grid
while [ $# -gt 0 ]; do
  case $1 in
    --cpu-tiny) DRY=1; shift ;;
    --sweep) MODE=sweep; shift ;;
    -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;  # the header above
    -*) echo "$0: unknown option $1 (options: --cpu-tiny, --sweep, --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
RAW=${1:-${CAMVID_RAW:-}}
if [ -z "$RAW" ] && [ "$DRY" = 1 ]; then RAW=${SEGREPRO_CAMVID_MIRROR:-$REPO/../shared/datasets/camvid}; fi
if [ -z "$RAW" ]; then echo "usage: $0 RAW_CAMVID_DIR (a folder holding CamVid/), or CAMVID_RAW=..." >&2; exit 2; fi
RAW=${RAW%/}
if [ "$(basename "$RAW")" = CamVid ]; then RAW=$(dirname "$RAW"); fi
if [ ! -d "$RAW/CamVid" ]; then echo "$0: $RAW has no CamVid/ folder; pass the folder that holds CamVid/" >&2; exit 2; fi

BUDGET=${GPU_PROFILE_BUDGET:-550}
WORKERS=${GPU_PROFILE_WORKERS:-4}
BENCH_S=${GPU_PROFILE_BENCH_S:-60}
PROFILE=${GPU_PROFILE_PROFILE:-profiles/paper-gpu.yaml}
OUT=${OUT:-$REPO/.gpu/out}
WORK=${GPU_PROFILE_WORK:-$(mktemp -d /tmp/gpu-profile.XXXXXX)}
mkdir -p "$OUT" "$WORK/logs" "$WORK/results/metrics" "$WORK/results/per_image" "$WORK/results/train" "$WORK/models"
if [ -x "$REPO/.venv/bin/python" ]; then PY=$REPO/.venv/bin/python; else PY=python3; fi
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
: > "$WORK/phases.tsv"
if [ "$MODE" = sweep ]; then printf 'arm\tmethod\tseed\ttrain_s\ttrain_rc\n' > "$WORK/runs.tsv"
else printf 'method\tseed\ttrain_s\ttrain_rc\tevaluate_s\tevaluate_rc\n' > "$WORK/runs.tsv"; fi

now() { echo $(($(date +%s) - START)); }  # seconds since start
left() { echo $((BUDGET - $(now))); }
log() { echo "[$(printf '%4d' "$(now)")s] $*"; }
# phase NAME LIMIT_S CMD…: run with a hard time limit, log to logs/NAME.log, record the time.
phase() {
  local name=$1 limit=$2 t0 rc
  t0=$(now)
  shift 2
  if [ "$limit" -le 2 ]; then log "$name: skipped (no time left)"; printf '%s\t%s\t0\tskipped\n' "$name" "$t0" >> "$WORK/phases.tsv"; return 1; fi
  timeout -k 10 "$limit" "$@" > "$WORK/logs/$name.log" 2>&1; rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$t0" $(($(now) - t0)) "$rc" >> "$WORK/phases.tsv"
  log "$name: rc $rc in $(($(now) - t0)) s"
  if [ "$rc" != 0 ]; then tail -n 5 "$WORK/logs/$name.log" | sed 's/^/    /'; fi
  return "$rc"
}

log "work dir $WORK; out $OUT; python $PY; budget ${BUDGET}s; workers $WORKERS; dry $DRY"
# 1. Environment. Wheels carried in .gpu/whl (none are needed by default) go to /tmp/site.
if compgen -G "$REPO/.gpu/whl/*.whl" > /dev/null; then
  phase wheels 120 "$PY" -m pip install --no-deps --no-index --target /tmp/site "$REPO"/.gpu/whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
{ if command -v nvidia-smi > /dev/null; then nvidia-smi -L; else echo "nvidia-smi: not available"; fi
  "$PY" -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available()); print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")'
  nproc; free -g 2>/dev/null | head -2; } > "$WORK/env.txt" 2>&1
sed 's/^/    /' "$WORK/env.txt"
CUDA=0; grep -q ' available True$' "$WORK/env.txt" && CUDA=1  # torch's answer above: asked once

# 2. Params: params.yaml + the profile, then the dry run's tiny sizes, then the explicit overrides
#    (they win), each merge validated by segrepro.profiles. A sweep's arms change params-base.yaml
#    (profile + dry run) and get the explicit overrides after their own keys.
PARAMS=$WORK/params.yaml
phase merge 60 "$PY" -m segrepro.profiles merge "$PROFILE" --params params.yaml --out "$PARAMS" || exit 1
if [ "$DRY" = 1 ]; then
  cat > "$WORK/dry.yaml" <<'YAML'
preprocess.height: 48
preprocess.width: 64
preprocess.max_images: 8
train.crop_height: 32
train.crop_width: 48
train.batch_size: 4
train.epochs: 1
train.warmup_epochs: 0
train.val_every: 1
runtime.threads: 1
runtime.device: cpu
train.compile: false
evaluate.latency_runs: 2
evaluate.bf_tolerances: [1, 2]
evaluate.trimap_widths: [2, 4]
YAML
  # The grid's dry run: one seed, two methods (a sweep's arms name their own method and seeds).
  if [ "$MODE" = grid ]; then printf 'base.seeds: [0]\nbase.methods: [baseline, pdn]\n' >> "$WORK/dry.yaml"; fi
  phase merge-dry 60 "$PY" -m segrepro.profiles merge "$WORK/dry.yaml" --params "$PARAMS" --out "$PARAMS" || exit 1
  WORKERS=${GPU_PROFILE_WORKERS:-2}
fi
cp "$PARAMS" "$WORK/params-base.yaml"
overrides=""  # YAML: the last of duplicate keys wins
if [ -n "${GPU_PROFILE_COMPILE:-}" ]; then overrides+="train.compile: ${GPU_PROFILE_COMPILE}"$'\n'; fi
if [ -n "${GPU_PROFILE_SET:-}" ]; then overrides+="${GPU_PROFILE_SET}"$'\n'; fi
if [ -n "$overrides" ]; then
  printf '%s' "$overrides" > "$WORK/overrides.yaml"
  phase merge-overrides 60 "$PY" -m segrepro.profiles merge "$WORK/overrides.yaml" --params "$PARAMS" --out "$PARAMS" || exit 1
fi

# A sweep's plan: every arm's params (profile, dry run, the arm's keys, then the overrides), which the
# device check reads.
SWEEP_FILE=${GPU_PROFILE_SWEEP:-benchmarks/gpu_sweep.yaml}
if [ "$MODE" = sweep ]; then
  AFTER=(); [ -f "$WORK/overrides.yaml" ] && AFTER=(--after "$WORK/overrides.yaml")
  phase sweep-plan 60 "$PY" benchmarks/gpu_sweep.py plan "$SWEEP_FILE" \
    --params "$WORK/params-base.yaml" --out "$WORK/sweep" ${AFTER[@]+"${AFTER[@]}"} || exit 1
  cp "$WORK/sweep/jobs.txt" "$WORK/jobs.txt"
fi

# The device: training on CUDA where none is usable stops here, before the data (the header says why;
# whether CUDA is usable, env.txt says).
# The grid trains with $PARAMS; a sweep with its arms' params (plan.json lists them) and nothing else.
if [ "$CUDA" = 0 ]; then
"$PY" - "$MODE" "$PARAMS" "$WORK/sweep/plan.json" "$SWEEP_FILE" "$DRY" <<'PY' || exit 2
import json
import sys
from pathlib import Path
from segrepro.params import load_params
mode, params, plan, sweep_file, dry = sys.argv[1:]
head = "gpu_profile.sh: no CUDA device is usable here (torch.cuda.is_available() is false) and"
if mode == "grid":
    device = load_params(params).runtime.device
    if device != "cpu" and dry == "1":  # the dry run says cpu: only GPU_PROFILE_SET, which wins, can say more
        sys.exit(f"{head} the dry run's params say runtime.device {device}, from GPU_PROFILE_SET over the dry "
                 f"run's cpu; drop runtime.device from GPU_PROFILE_SET, or run where CUDA is usable")
    if device != "cpu":
        sys.exit(f"{head} the merged params say runtime.device {device}; run the CPU dry run with --cpu-tiny, or "
                 f"the full profile on CPU with GPU_PROFILE_SET='runtime.device: cpu'")
else:
    arms = json.loads(Path(plan).read_text())["arms"]
    bad = [(arm, device) for arm in arms if (device := load_params(arm["params"]).runtime.device) != "cpu"]
    if bad:  # an arm's own key says so unless the overrides (which win) say it instead
        own = [arm["name"] for arm, device in bad if arm["keys"].get("runtime.device") == device]
        fixes = ["run them on CPU with GPU_PROFILE_SET='runtime.device: cpu' (it wins over an arm's set:)"]
        if own:
            fixes.append(f"drop runtime.device from the set: of {', '.join(own)} in {sweep_file}")
        elif dry != "1":
            fixes.append("run the CPU dry run with --cpu-tiny")
        sys.exit(f"{head} the params of sweep arms ask for a runtime.device other than cpu: "
                 + ", ".join(f"{arm['name']} ({device})" for arm, device in bad) + "; " + ", or ".join(fixes))
PY
fi

# 3. Data: the download stage from the local copy (sha256-verified), then preprocess.
phase download 120 "$PY" -m segrepro.cli download --params "$PARAMS" --mirror "$RAW" --out "$WORK/data/raw/camvid" || exit 1
phase preprocess 240 "$PY" -m segrepro.cli preprocess --params "$PARAMS" --raw "$WORK/data/raw/camvid" --out "$WORK/data/processed" || exit 1

# 4. The grid. Jobs in seed order, slowest method first within a seed, so that whole seeds finish
#    first and the long runs do not end up last; WORKERS jobs at a time share the GPU.
cat > "$WORK/train_one.py" <<'PY'
"""One training run: segrepro's run_training + save_checkpoint, logged in DVCLive's file layout."""
import json, shutil, sys
from pathlib import Path

from segrepro.errors import SegreproError
from segrepro.params import load_params
from segrepro.checkpoint import save_checkpoint
from segrepro.training.distributed import process_group
from segrepro.training.train import run_training


class TsvLive:
    """What Live(dir, dvcyaml=False, save_dvc_exp=False, report=None) writes for log_metric/next_step."""

    def __init__(self, directory):
        self.dir, self.step, self.summary = Path(directory), 0, {}
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)

    def log_metric(self, name, value):
        path = self.dir / "plots" / "metrics" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"step\t{path.stem}\n" if new else "")
            fh.write(f"{self.step}\t{value}\n")
        *parents, leaf = name.split("/")
        node = self.summary
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    def next_step(self):
        self.summary["step"] = self.step  # in place: DVCLive's key order
        with open(self.dir / "metrics.json", "w", encoding="utf-8") as fh:
            json.dump(self.summary, fh, indent=4)
            fh.write("\n")
        self.step += 1


def main(params_path, method, seed, data, checkpoint, live_dir):
    params, live = load_params(params_path), TsvLive(live_dir)

    def log(epoch, metrics):
        live.log_metric("train/loss", metrics["train_loss"])
        if "val_miou" in metrics:
            live.log_metric("val/miou", metrics["val_miou"])
        live.next_step()

    try:
        with process_group(params.runtime.device, params.train.batch_size) as ctx:
            state, last = run_training(params, method, int(seed), Path(data), ctx, on_epoch=log)
        save_checkpoint(state, Path(checkpoint))
    except SegreproError as exc:
        print(f"segrepro train: error: {exc}", file=sys.stderr)
        return 2
    print(f"{method}-{seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
PY
if [ "$MODE" = grid ]; then  # (a sweep's jobs.txt is its plan's, made above)
"$PY" - "$PARAMS" > "$WORK/jobs.txt" <<'PY' || exit 1
import sys
from segrepro.params import load_params
p = load_params(sys.argv[1])
slow_first = {"ddsm": 0, "sdn": 1, "pdn": 2, "baseline": 3}
for seed in p.base.seeds:
    for method in sorted(p.base.methods, key=lambda m: slow_first.get(m, 1.5)):
        print(method, seed)
PY
fi
# The grid must end in time for compare, packing and the bench.
GRID_END=$((BUDGET - 40 - BENCH_S))  # seconds since start
run_job() {  # METHOD SEED: train then evaluate, each under what is left of the grid's time
  local m=$1 s=$2 t0 t1 rc_t rc_e=skipped lim
  lim=$((GRID_END - $(now)))
  if [ "$lim" -le 5 ]; then printf '%s\t%s\t0\tskipped\t0\tskipped\n' "$m" "$s" >> "$WORK/runs.tsv"; return 0; fi
  t0=$(now)
  timeout -k 10 "$lim" "$PY" "$WORK/train_one.py" "$PARAMS" "$m" "$s" "$WORK/data/processed" \
    "$WORK/models/$m-$s.pt" "$WORK/results/train/$m-$s" > "$WORK/logs/train-$m-$s.log" 2>&1; rc_t=$?
  t1=$(now)
  lim=$((GRID_END - t1))
  if [ "$rc_t" = 0 ] && [ "$lim" -gt 5 ]; then
    timeout -k 10 "$lim" "$PY" -m segrepro.cli evaluate --params "$PARAMS" --method "$m" --seed "$s" \
      --data "$WORK/data/processed" --checkpoint "$WORK/models/$m-$s.pt" \
      --out "$WORK/results/metrics/$m-$s.json" --per-image "$WORK/results/per_image/$m-$s.npz" \
      > "$WORK/logs/evaluate-$m-$s.log" 2>&1; rc_e=$?
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$s" $((t1 - t0)) "$rc_t" $(($(now) - t1)) "$rc_e" >> "$WORK/runs.tsv"
  log "$m-$s: train rc $rc_t $((t1 - t0)) s, evaluate rc $rc_e $(($(now) - t1)) s;" \
    "$(tail -n 1 "$WORK/logs/evaluate-$m-$s.log" 2>/dev/null || tail -n 1 "$WORK/logs/train-$m-$s.log")"
}
run_sweep_job() {  # ARM METHOD SEED: one training run of a sweep arm, validation split only
  local arm=$1 m=$2 s=$3 p=$WORK/sweep/params-$1.yaml t0 rc lim
  lim=$((GRID_END - $(now)))
  if [ "$lim" -le 5 ]; then printf '%s\t%s\t%s\t0\tskipped\n' "$arm" "$m" "$s" >> "$WORK/runs.tsv"; return 0; fi
  t0=$(now)
  timeout -k 10 "$lim" "$PY" "$WORK/train_one.py" "$p" "$m" "$s" "$WORK/data/processed" \
    "$WORK/models/sweep-$arm-$s.pt" "$WORK/results/sweep/$arm-$s" > "$WORK/logs/train-$arm-$s.log" 2>&1; rc=$?
  printf '%s\t%s\t%s\t%s\t%s\n' "$arm" "$m" "$s" $(($(now) - t0)) "$rc" >> "$WORK/runs.tsv"
  log "$arm-$s: train rc $rc $(($(now) - t0)) s; $(tail -n 1 "$WORK/logs/train-$arm-$s.log")"
}
export -f run_job run_sweep_job now log
export PY WORK PARAMS GRID_END START
JOB=run_job; [ "$MODE" = sweep ] && JOB=run_sweep_job
log "$MODE: $(wc -l < "$WORK/jobs.txt") jobs, $WORKERS at a time, until ${GRID_END}s"
t0=$(now)
xargs -P "$WORKERS" -L 1 bash -c "$JOB"' "$@"' _ < "$WORK/jobs.txt"
printf '%s\t%s\t%s\t0\n' "$MODE" "$t0" $(($(now) - t0)) >> "$WORK/phases.tsv"
log "$MODE done in $(($(now) - t0)) s"
# The exit status (the header's rules), from runs.tsv's *_rc columns; a run finished when its last rc is 0.
read -r FAILED FINISHED RUNS < <(awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /_rc$/) rc[++n] = i; next }
  { bad = 0; for (j = 1; j <= n; j++) if ($rc[j] != "0" && $rc[j] != "124" && $rc[j] != "skipped") bad = 1
    failed += bad; finished += ($rc[n] == "0"); runs++ }
  END { print failed + 0, finished + 0, runs + 0 }' "$WORK/runs.tsv")

# 5. Compare whatever finished (complete seeds only when some runs are missing); a sweep has nothing
#    to compare: its summary goes into summary.txt.
if [ "$MODE" = grid ]; then
"$PY" - "$PARAMS" "$WORK" > "$WORK/compare-params.log" 2>&1 <<'PY'
import sys
from pathlib import Path
import yaml
params_path, work = Path(sys.argv[1]), Path(sys.argv[2])
raw = yaml.safe_load(params_path.read_text())
methods, seeds = raw["base"]["methods"], raw["base"]["seeds"]
done = [s for s in seeds if all((work / "results/per_image" / f"{m}-{s}.npz").is_file() for m in methods)]
if done != seeds and done:
    raw["base"]["seeds"] = done
    (work / "params-compare.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    print(f"comparing complete seeds only: {done}")
elif not done:
    print("no complete seed: nothing to compare")
    sys.exit(1)
PY
CPARAMS=$PARAMS; [ -f "$WORK/params-compare.yaml" ] && CPARAMS=$WORK/params-compare.yaml
if [ -s "$WORK/compare-params.log" ]; then log "$(cat "$WORK/compare-params.log")"; fi
if ! grep -q "nothing to compare" "$WORK/compare-params.log"; then
  phase compare $(($(left) - 20)) "$PY" -m segrepro.cli compare --params "$CPARAMS" \
    --per-image "$WORK/results/per_image" --out "$WORK/results/comparison.json" --summary "$WORK/results/summary.json"
fi
fi

# 6. Pack (now, and again after the bench, so the bench can never cost the grid's results).
pack() {
  if [ "$MODE" = sweep ]; then
    "$PY" benchmarks/gpu_sweep.py summary "$WORK/sweep" --runs "$WORK/runs.tsv" --results "$WORK/results/sweep" \
      --json "$WORK/results/sweep.json" > "$WORK/sweep/summary.txt" 2>&1
  fi
  "$PY" - "$WORK" "$PARAMS" <<'PY' > "$WORK/summary.txt" 2>&1
import hashlib, json, sys
from pathlib import Path
work = Path(sys.argv[1])
print("== environment"); print((work / "env.txt").read_text().strip())
print("\n== phases (name, start s, seconds, rc)"); print((work / "phases.tsv").read_text().strip())
print("\n== runs"); print((work / "runs.tsv").read_text().strip())
sweep = work / "sweep" / "summary.txt"
if sweep.is_file():
    print("\n== sweep"); print(sweep.read_text().strip())
metrics = sorted((work / "results/metrics").glob("*.json"))
if metrics:
    print("\n== test metrics (%)")
for path in metrics:
    r = json.loads(path.read_text())
    bf = " ".join(f"{k} {100 * v:.2f}" for k, v in r.items() if k.startswith("bf@"))
    print(f"{path.stem:>14}: mIoU {100 * r['miou']:.2f}  {bf}  BIoU {100 * r['boundary_iou']:.2f}  "
          f"latency {1000 * r['latency_s']:.1f} ms  {r.get('device', '')}")
comparison = work / "results/comparison.json"
if comparison.is_file():
    print("\n== comparison.json: present")
    try:  # the claims as the report reads them, so the window's verdicts are read in the window
        from segrepro.reporting.claims import ALONE, TOGETHER, claims_table
        claims = claims_table(json.loads(comparison.read_text())).to_dict("records")
        print("\n== claims (Δ in points [95% CI], p; verdict alone | all claims together, Holm)")
        for c in claims:
            print(f"{c['method']:>5} {c['metric']:<13} {c['measured Δ vs baseline [95% CI]']:<25} "
                  f"p {c['p']:<7} {c[ALONE]} | {c[TOGETHER]}")
    except Exception as error:  # never lose the rest of the summary to this view
        print(f"\n== claims: not shown ({type(error).__name__}: {error})")
    try:  # how many seeds each claim would need, if this grid's verdicts are inconclusive
        grid = json.loads(comparison.read_text())
        if len(grid["seeds"]) < 2:  # the planner projects from the spread between seeds; one seed has none
            print("\n== seeds a verdict needs: not shown: a grid of one seed; the planner needs two or more")
        else:
            sys.path.insert(0, "benchmarks")
            from seed_planner import markdown, plan
            order = [grid["reference"]] + [m for m in grid["methods"] if m != grid["reference"]]  # reference first
            rows = plan(work / "results/per_image", order, grid["seeds"], [5, 10, 20])
            print("\n== seeds a verdict needs (95% half-widths in points, projected; docs/benchmarks.md, "
                  "\"Seeds a verdict needs\")")
            print(markdown(rows))
    except Exception as error:  # never lose the rest of the summary to this view
        print(f"\n== seeds a verdict needs: not shown ({type(error).__name__}: {error})")
print("\n== checkpoints (md5; not packed)")
lines = [f"{hashlib.md5(p.read_bytes()).hexdigest()}  models/{p.name}" for p in sorted((work / "models").glob("*.pt"))]
(work / "checkpoints.md5").write_text("".join(l + "\n" for l in lines))
print("\n".join(lines) or "none")
bench = work / "bench_gpu.json"
if bench.is_file():
    b = json.loads(bench.read_text())
    print(f"\n== bench_gpu ({b['device']}, dense {b['peak_dtype']} peak {b['peak_tflops']:.3g} TFLOP/s, "
          f"DeviceBatches {b.get('augment_img_per_s', 0):.0f} img/s)")
    for r in b["rows"]:
        kind = "compiled" if r["compiled"] else "eager"
        print(f"{r['method']:>12} {kind:>8} b{r['batch']:<3}: " + (f"{r['img_per_s']:.1f} img/s, {r['tflops']:.3g} TFLOP/s "
              f"({100 * r['of_peak']:.1f}% of peak)" + (f", compile {r['compile_s']:.0f} s" if 'compile_s' in r else "")
              if "tflops" in r else r["error"]))
PY
  cp "$WORK/summary.txt" "$OUT/summary.txt"
  rm -f "$OUT"/gpu-results.tar.gz*
  ( cd "$WORK" && tar czf "$OUT/gpu-results.tar.gz" --ignore-failed-read params.yaml dry.yaml overrides.yaml \
      env.txt phases.tsv runs.tsv jobs.txt summary.txt checkpoints.md5 bench_gpu.json logs results sweep \
      data/processed/card.json $(ls data/processed/*_names.txt 2>/dev/null) 2>/dev/null )
  if [ "$(stat -c %s "$OUT/gpu-results.tar.gz")" -gt $((15 * 1024 * 1024)) ]; then
    split -b 15M "$OUT/gpu-results.tar.gz" "$OUT/gpu-results.tar.gz.part-" && rm "$OUT/gpu-results.tar.gz"
  fi
  log "packed: $(ls "$OUT" | tr '\n' ' ')"
}
pack

# 7. Benchmark with the time that is left (it writes its JSON after every measurement).
if [ "$DRY" = 1 ]; then BENCH=(--device cpu --peak-size 1024 --steps 2 --warmup 1 --compile off --batch-scaling 8)
else BENCH=(--device cuda --compile-budget 30 --batch-scaling 16 32); fi
lim=$(($(left) - 15))
phase bench "$lim" "$PY" benchmarks/bench_gpu.py --params "$PARAMS" "${BENCH[@]}" \
  --deadline $((lim - 5)) --json "$WORK/bench_gpu.json"
sed 's/^/    /' "$WORK/logs/bench.log" | grep -v Warning | head -20
pack
log "done; summary:"
cat "$OUT/summary.txt"
if [ "$FAILED" -gt 0 ] || [ "$FINISHED" = 0 ]; then
  log "exit 1: of $RUNS runs, $FAILED failed and $FINISHED finished (runs.tsv; each run's log in logs/)"
  exit 1
fi
