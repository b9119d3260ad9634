"""benchmarks/gpu_sweep.py and benchmarks/gpu_profile.sh on CPU: the committed sweep plans against
the real params.yaml and profile; bad sweep files fail naming the arm, bad paths naming the file; the
script prints its usage, stops without CUDA unless asked for the CPU, and its dry runs (grid and
sweep, a deadline and a failed run included) end with the files a GPU window's reader needs and the
documented exit status (no timing asserted)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

from segrepro import profiles
from segrepro.errors import SegreproError
from segrepro.params import load_params
from tests.conftest import REPO, assert_one_error_line

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_sweep  # noqa: E402

SWEEP = REPO / "benchmarks" / "gpu_sweep.yaml"
SCRIPT = REPO / "benchmarks" / "gpu_profile.sh"


@pytest.fixture()
def profile_params(tmp_path: Path) -> Path:
    """params.yaml with profiles/paper-gpu.yaml applied: what the script's sweep plans against."""
    path = tmp_path / "params-gpu.yaml"
    profiles.merge(REPO / "params.yaml", REPO / "profiles" / "paper-gpu.yaml", path)
    return path


def test_the_committed_sweep_plans_against_the_profile(tmp_path: Path, profile_params: Path) -> None:
    planned = gpu_sweep.plan(SWEEP, profile_params, tmp_path / "plan")
    arms = {a["name"]: a for a in planned["arms"]}
    assert list(arms)[0] == "pinned" and planned["method"] == "baseline"
    profile = load_params(profile_params)
    pinned = load_params(arms["pinned"]["params"])
    # The reference arm is the profile itself, for one method and its seeds.
    assert pinned.train == profile.train and pinned.model == profile.model and pinned.preprocess == profile.preprocess
    assert (pinned.base.methods, pinned.base.seeds) == (("baseline",), (0, 1))
    # `from` carries the CPU recipe into the arms built on it; their own keys come on top.
    long = load_params(arms["cpu_recipe_84ep"]["params"])
    assert (long.train.optimizer, long.train.scale_max, long.model.input_norm) == ("adamw", 1.5, "per_image")
    assert long.train.epochs == 84 and long.model.output_stride == profile.model.output_stride == 16
    assert load_params(arms["cpu_recipe_os32_42ep"]["params"]).model.output_stride == 32
    assert load_params(arms["cpu_recipe_b16"]["params"]).train.batch_size == 16
    # The longest job first; every planned run appears once.
    jobs = (tmp_path / "plan" / "jobs.txt").read_text().splitlines()
    assert jobs[0].split()[:3] == ["cpu_recipe_84ep", "baseline", "0"]
    assert sorted(j.split()[0] for j in jobs) == sorted(n for n, a in arms.items() for _ in a["seeds"])


def _sweep_file(tmp_path: Path, arms: list) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"method": "baseline", "arms": arms}, sort_keys=False))
    return path


def _arm(name: str, keys: dict | None = None, **extra) -> dict:
    return {"name": name, "why": "a test arm", "seeds": [0], "set": keys or {}, **extra}


@pytest.mark.parametrize("arms, needles", [
    ([_arm("a", {"train.epohcs": 3})], ["sweep arm a", "train.epohcs", "did you mean train.epochs"]),
    ([_arm("a", {"train.epochs": 0})], ["sweep arm a", "train.epochs"]),
    ([_arm("a"), _arm("a")], ["arm a appears twice"]),
    ([_arm("b", **{"from": "zzz"})], ["arm b", "from 'zzz' names no earlier arm"]),
    ([_arm("a", seeds=[])], ["arm a", "seeds must be a non-empty list"]),
    ([_arm("a", {"base.seeds": [0, 1]})], ["arm a", "base.seeds", "arm's seeds decide"]),
    ([_arm("Bad-Name")], ["name 'Bad-Name'"]),
    ([{"name": "a", "seeds": [0], "set": {}}], ["arm 1", "missing keys ['why']"]),
])
def test_a_bad_sweep_fails_naming_the_arm_and_the_fix(tmp_path, profile_params, arms, needles) -> None:
    gpu_sweep.plan(_sweep_file(tmp_path, [_arm("good")]), profile_params, tmp_path / "plan")
    with pytest.raises(SegreproError) as caught:
        gpu_sweep.plan(_sweep_file(tmp_path, arms), profile_params, tmp_path / "plan")
    for needle in needles:
        assert needle in str(caught.value)
    # Nothing for the script to run: not even the job list of the good plan before it.
    assert not (tmp_path / "plan" / "jobs.txt").exists() and not (tmp_path / "plan" / "plan.json").exists()


def test_a_sweep_file_that_sets_a_key_twice_is_refused(tmp_path, profile_params) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("method: baseline\narms:\n- name: a\n  why: x\n  seeds: [0]\n  set: {}\n  seeds: [1]\n")
    with pytest.raises(SegreproError, match=r"sweep file .*sweep.yaml: .*'seeds' appears twice \(line 7\)"):
        gpu_sweep.plan(path, profile_params, tmp_path / "plan")


def test_overrides_may_not_change_what_a_sweep_runs(tmp_path, profile_params) -> None:
    after = tmp_path / "after.yaml"
    after.write_text("base.seeds: [3]\n")
    with pytest.raises(SegreproError, match="set base.methods or base.seeds; leave them out in a sweep"):
        gpu_sweep.plan(_sweep_file(tmp_path, [_arm("a")]), profile_params, tmp_path / "plan", after)


def _live(directory: Path, losses: list[float], val: dict[int, float]) -> None:
    """What the script's logger writes: DVCLive's plots/metrics/<name>.tsv, step = epoch - 1."""
    for name, rows in (("train/loss", dict(enumerate(losses, 1))), ("val/miou", val)):
        path = directory / "plots" / "metrics" / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        leaf = name.split("/")[-1]
        path.write_text(f"step\t{leaf}\n" + "".join(f"{epoch - 1}\t{v}\n" for epoch, v in rows.items()))


def test_the_summary_tells_complete_stopped_and_unrun_runs_apart(tmp_path, profile_params) -> None:
    plan_dir, results = tmp_path / "plan", tmp_path / "results"
    gpu_sweep.plan(_sweep_file(tmp_path, [_arm("a", {"train.epochs": 2}, seeds=[0, 1, 2])]), profile_params, plan_dir)
    _live(results / "a-0", [2.0, 1.5], {2: 0.25})
    _live(results / "a-1", [2.0], {})
    runs = tmp_path / "runs.tsv"
    runs.write_text("arm\tmethod\tseed\ttrain_s\ttrain_rc\n"
                    "a\tbaseline\t0\t30\t0\na\tbaseline\t1\t12\t124\na\tbaseline\t2\t0\tskipped\n")
    summary = gpu_sweep.summarise(plan_dir, runs, results)
    (arm,) = summary["arms"]
    assert arm["complete_seeds"] == 1 and arm["final_val_miou_mean"] == 0.25
    text = gpu_sweep.format_summary(summary).splitlines()
    assert text[1].startswith("a (2 epochs; mean final 25.00 over 1 complete seed(s)): a test arm")
    assert text[2] == "  seed 0: 25.00, 30 s; e2 25.0"
    assert text[3] == "  seed 1: stopped at epoch 1 of 2 (rc 124), 12 s; no validation logged"
    assert text[4] == "  seed 2: not run (no time left before the deadline); no validation logged"


def test_the_sweep_tool_names_a_bad_input_before_writing(tmp_path, capsys, profile_params) -> None:
    plan_dir = tmp_path / "plan"
    gpu_sweep.plan(_sweep_file(tmp_path, [_arm("a", {"train.epochs": 2})]), profile_params, plan_dir)
    runs = tmp_path / "runs.tsv"
    runs.write_text("arm\tmethod\tseed\ttrain_s\ttrain_rc\na\tbaseline\t0\t30\t0\n")
    (tmp_path / "blocker").write_text("a file\n")
    grid_runs = tmp_path / "grid-runs.tsv"
    grid_runs.write_text("method\tseed\ttrain_s\ttrain_rc\tevaluate_s\tevaluate_rc\n")
    summary = ["summary", str(plan_dir), "--runs", str(runs), "--results", str(tmp_path / "results")]
    for argv, needles in [
        (["summary", str(tmp_path / "nonexist"), *summary[2:]], ["nonexist/plan.json is missing", "gpu_sweep.py plan"]),
        ([*summary[:3], str(tmp_path / "nonexist.tsv"), *summary[4:]], ["nonexist.tsv (--runs) is not a file"]),
        ([*summary[:3], str(grid_runs), *summary[4:]], ["has the columns ['method'", "not a sweep's ['arm'"]),
        ([*summary[:5], str(runs)], ["--results", "is not a folder"]),
        ([*summary, "--json", str(tmp_path / "blocker" / "s.json")], ["blocker is a file, not a directory"]),
        (["plan", str(SWEEP), "--params", str(tmp_path / "nonexist.yaml"), "--out", str(tmp_path / "p")],
         ["params file", "nonexist.yaml not found"]),
        (["plan", str(SWEEP), "--params", str(profile_params), "--out", str(tmp_path / "blocker")],
         ["--out", "blocker is a file; pass a folder"]),
    ]:
        status = gpu_sweep.main(argv)
        err = capsys.readouterr().err
        assert status == 2 and len(err.strip().splitlines()) == 1 and err.startswith("gpu_sweep: error: "), err
        for needle in needles:
            assert needle in err, err
    assert not (tmp_path / "p").exists() and (tmp_path / "blocker").read_text() == "a file\n"
    # The good call still works, and a missing results folder means no run logged anything.
    assert gpu_sweep.main([*summary, "--json", str(tmp_path / "new" / "s.json")]) == 0
    assert "seed 0: stopped at epoch 0 of 2 (rc 0), 30 s; no validation logged" in capsys.readouterr().out
    assert json.loads((tmp_path / "new" / "s.json").read_text())["arms"][0]["name"] == "a"


def script(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """benchmarks/gpu_profile.sh ARGS with $OUT and its scratch folder under ``tmp_path``."""
    environ = dict(os.environ, OUT=str(tmp_path / "out"), GPU_PROFILE_WORK=str(tmp_path / "work"),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **env)
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=environ, capture_output=True, text=True)


def run_script(tmp_path: Path, *args: str, status: int = 0, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    done = script(tmp_path, "--cpu-tiny", *args, **env)
    assert done.returncode == status, done.stdout[-3000:] + done.stderr[-3000:]
    return done, tmp_path / "out"


def test_help_prints_the_usage() -> None:
    for flag in ("--help", "-h"):
        done = subprocess.run(["bash", str(SCRIPT), flag], capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert done.stdout.startswith("The paper-scale GPU profile") and "--cpu-tiny [RAW_DIR]" in done.stdout
        assert "GPU_PROFILE_BUDGET" in done.stdout and "#" not in done.stdout.splitlines()[0]
    done = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown option --bogus (options: --cpu-tiny, --sweep, --help)" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for a machine without CUDA")
def test_without_cuda_the_profile_stops_before_the_data_unless_asked_for_cpu(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "CamVid").mkdir(parents=True)  # empty: the download stage would fail on it, and must not start
    done = script(tmp_path / "a", str(raw))
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    (line,) = done.stderr.splitlines()  # one line, no traceback
    assert "no CUDA device is usable here" in line and "runtime.device cuda" in line and "--cpu-tiny" in line
    phases = (tmp_path / "a" / "work" / "phases.tsv").read_text()
    assert "merge" in phases and "download" not in phases and not (tmp_path / "a" / "work" / "data").exists()
    assert not list((tmp_path / "a" / "out").iterdir())  # nothing packed
    # Asked for the CPU, the full profile gets past the check: to the download, which fails on the empty copy.
    done = script(tmp_path / "b", str(raw), GPU_PROFILE_SET="runtime.device: cpu")
    assert done.returncode == 1 and "no CUDA device" not in done.stderr
    assert "download" in (tmp_path / "b" / "work" / "phases.tsv").read_text()


def open_results(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_results.py"), *args],
                          capture_output=True, text=True, cwd=REPO)


@pytest.mark.slow  # a dry run of the whole script, then gpu_results.py: preprocess here, report, pins
def test_the_grid_dry_run_packs_results_that_report_and_pin_here(tmp_path, mirror) -> None:
    done, out = run_script(tmp_path, SEGREPRO_CAMVID_MIRROR=str(mirror))
    summary = (out / "summary.txt").read_text()
    assert "== test metrics (%)" in summary and "== comparison.json: present" in summary
    # The claims, read in the window as the report reads them: one seed gives no verdict either way.
    claims = summary.split("== claims (")[1].split("\n\n")[0].splitlines()[1:]
    assert len(claims) == 1 and claims[0].split()[:2] == ["PDN", "mIoU"], claims
    assert claims[0].endswith("inconclusive (one seed) | inconclusive (one seed)"), claims
    assert "== seeds a verdict needs: not shown: a grid of one seed; the planner needs two or more\n" in summary
    for key in ("baseline-0", "pdn-0"):
        result = json.loads((tmp_path / "work" / "results" / "metrics" / f"{key}.json").read_text())
        assert 0 <= result["miou"] <= 1 and result["device"] == "cpu"
    with tarfile.open(out / "gpu-results.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"params.yaml", "runs.tsv", "bench_gpu.json", "results/comparison.json",
            "results/metrics/baseline-0.json"} <= names
    assert json.loads((tmp_path / "work" / "bench_gpu.json").read_text())["rows"]

    # Back "home": the archive in 15 MiB parts' form (split as the script does), unpacked, reported, pinned.
    parts = tmp_path / "fetched"
    parts.mkdir()
    data = (out / "gpu-results.tar.gz").read_bytes()
    for i in range(3):
        (parts / f"gpu-results.tar.gz.part-a{'abc'[i]}").write_bytes(data[i * len(data) // 3:(i + 1) * len(data) // 3])
    run, pins = tmp_path / "run", tmp_path / "pins-test.yaml"
    # A dry run is no GPU run: refused at once, the pins file untouched, unless asked for (to test pinning here).
    committed = tmp_path / "pins-committed.yaml"
    committed.write_bytes((REPO / "pins.yaml").read_bytes())
    refused = open_results(str(parts), "--run", str(run), "--mirror", str(mirror), "--pin", str(committed))
    assert_one_error_line(refused, "gpu_results: error: ", "it is a dry run of gpu_profile.sh", "--pin-dry-run")
    assert committed.read_bytes() == (REPO / "pins.yaml").read_bytes() and not run.exists()
    opened = open_results(str(parts), "--run", str(run), "--mirror", str(mirror), "--pin", str(pins), "--pin-dry-run")
    assert opened.returncode == 0, opened.stderr
    html = (run / "report.html").read_text()
    assert "baseline" in html and "PDN" in html
    assert "they were not made by" in html  # no dvc.lock: the provenance says so instead of an empty table
    ((klass, section),) = yaml.safe_load(pins.read_text())["classes"].items()
    assert klass.startswith("cpu-") and set(section["results"]) == {"baseline-0", "pdn-0"}
    assert section["results"]["pdn-0"]["metrics"]["miou"] == pytest.approx(result["miou"], abs=1e-6)
    # Opening into the same folder again is refused: an older run is never mixed in.
    again = open_results(str(parts), "--run", str(run), "--mirror", str(mirror))
    assert again.returncode == 2 and "exists and is not empty; pass a new --run folder" in again.stderr


def test_opening_results_names_what_is_missing(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = open_results(str(empty), "--run", str(tmp_path / "run"))
    assert done.returncode == 2 and "holds neither gpu-results.tar.gz nor gpu-results.tar.gz.part-*" in done.stderr
    # A truncated archive (a part lost on the way back) is named as such; nothing is left to look valid.
    buffer = tmp_path / "whole.tar.gz"
    with tarfile.open(buffer, "w:gz") as tar:
        payload = tmp_path / "summary.txt"
        payload.write_bytes(os.urandom(200_000))
        tar.add(payload, arcname="summary.txt")
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "gpu-results.tar.gz").write_bytes(buffer.read_bytes()[:-5000])
    done = open_results(str(cut), "--run", str(tmp_path / "run2"))
    assert done.returncode == 2 and "cannot be unpacked" in done.stderr and "fetch the window's files again" in done.stderr
    assert not (tmp_path / "run2").exists() and not list(tmp_path.glob(".run2.*"))


@pytest.mark.slow  # a dry sweep: two arms, one run stopped by the deadline, one failed, then the bench
@pytest.mark.deadline  # whether a run ends or is stopped depends on the CPU it gets before the deadline
def test_the_sweep_dry_run_trains_the_arms_and_keeps_a_stopped_curve(tmp_path, mirror) -> None:
    sweep = _sweep_file(tmp_path, [
        _arm("short", {"train.epochs": 2}, seeds=[0, 1]),
        # far more epochs than the deadline allows: stopped, its validation curve kept
        _arm("endless", {"train.epochs": 100000, "train.optimizer": "adamw", "train.lr": 0.001}),
    ])
    # One run fails at once: a file stands where its DVCLive folder goes. The others carry on, all is
    # packed and benchmarked, and the status is 1 (a run stopped by the deadline is no failure).
    work = tmp_path / "work"
    (work / "results" / "sweep").mkdir(parents=True)
    (work / "results" / "sweep" / "short-1").write_text("in the way\n")
    # The grid's deadline is BUDGET - 40 - BENCH_S = 50 s after the start; three workers, so the
    # short runs do not wait for one another.
    done, out = run_script(tmp_path, "--sweep", status=1, SEGREPRO_CAMVID_MIRROR=str(mirror),
                           GPU_PROFILE_SWEEP=str(sweep), GPU_PROFILE_BUDGET="100", GPU_PROFILE_BENCH_S="10",
                           GPU_PROFILE_WORKERS="3")
    assert done.stdout.splitlines()[-1].endswith("exit 1: of 3 runs, 1 failed and 1 finished "
                                                 "(runs.tsv; each run's log in logs/)"), done.stdout[-2000:]
    result = json.loads((work / "results" / "sweep.json").read_text())
    arms = {a["name"]: a for a in result["arms"]}
    assert list(arms) == ["short", "endless"]
    short, endless = arms["short"], arms["endless"]
    assert short["complete_seeds"] == 1 and short["epochs"] == 2
    run = short["runs"]["0"]  # JSON keys: seeds as strings
    assert run["complete"] and run["rc"] == "0" and sorted(run["val_miou"]) == ["1", "2"]
    failed = short["runs"]["1"]
    assert not failed["complete"] and failed["rc"] == "1" and failed["epochs_done"] == 0
    (run,) = endless["runs"].values()
    assert not run["complete"] and run["rc"] == "124" and endless["final_val_miou_mean"] is None
    assert 1 <= run["epochs_done"] < 100000 and run["val_miou"]
    assert max(int(epoch) for epoch in run["val_miou"]) <= run["epochs_done"]
    assert load_params(work / "sweep" / "params-endless.yaml").train.optimizer == "adamw"
    # Validation only: nothing was evaluated, so the test split was never read.
    assert not list((work / "results" / "metrics").glob("*.json")) and not list((work / "logs").glob("evaluate-*"))
    summary = (out / "summary.txt").read_text()
    assert "== sweep" in summary and f"stopped at epoch {run['epochs_done']} of 100000 (rc 124)" in summary
    assert "== test metrics" not in summary
    with tarfile.open(out / "gpu-results.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"results/sweep.json", "sweep/plan.json", "sweep/params-short.yaml", "bench_gpu.json",
            "results/sweep/endless-0/plots/metrics/val/miou.tsv"} <= names
    # Opened back home: the summary, and nothing to report or pin.
    opened = open_results(str(out), "--run", str(tmp_path / "run"), "--pin", str(tmp_path / "pins.yaml"))
    assert opened.returncode == 0, opened.stderr
    assert "stopped at epoch" in opened.stdout and "a sweep (validation only)" in opened.stdout
    assert not (tmp_path / "run" / "report.html").exists() and not (tmp_path / "pins.yaml").exists()
