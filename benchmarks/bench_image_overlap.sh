#!/usr/bin/env bash
# What the test suite gains by building the container image in the background of the other tests
# (tests/container_image.py): a slice of the suite and a from-nothing engine + image build, timed
# alone one after the other, then together. Prints the machine line and three wall times.
#
#   sudo bash benchmarks/bench_image_overlap.sh            # from the checkout, ../shared beside it
#
# It needs what the container test needs on this project's machines: root, Linux and
# ../shared/tools/container-env.sh (an air-gapped engine with a local base image). The engine is a
# separate one, in its own folder (BENCH_ENGINE_WORK, default /tmp/segrepro-bench-engine), which is
# removed before each build (so each build starts from nothing: root filesystem, base layers,
# image) and stopped at the end; the test suite's own engine (/tmp/segrepro-container) is not
# touched. The slice (BENCH_SLICE, pytest arguments) defaults to the bad-input corpus and the
# end-to-end tests: subprocesses, DVC and two-thread torch, like most of the suite.
# Choices: one run of each (the three walls come from the same hour; rerun to see the spread); a
# build's apt installs (docker.io, mmdebstrap) are not timed, since an engine must already answer or
# be installed for this script to run at all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "$0: unknown argument $1 (only --help)" >&2; exit 2 ;;
esac
ENV_SCRIPT=../shared/tools/container-env.sh
[[ $(id -u) = 0 ]] || { echo "$0: run as root (container-env.sh starts a Docker daemon)" >&2; exit 2; }
[[ -f $ENV_SCRIPT ]] || { echo "$0: $ENV_SCRIPT is missing: run from a checkout with ../shared beside it" >&2; exit 2; }
[[ -x .venv/bin/python ]] || { echo "$0: .venv is missing: run bash scripts/setup.sh first" >&2; exit 2; }
WORK=${BENCH_ENGINE_WORK:-/tmp/segrepro-bench-engine}
[[ $WORK != /tmp/segrepro-container ]] || { echo "$0: BENCH_ENGINE_WORK must not be the test suite's engine folder" >&2; exit 2; }
read -r -a SLICE <<< "${BENCH_SLICE:-tests/test_bad_input_corpus.py tests/test_pipeline_e2e.py}"
LOG=$(mktemp -d)

stop_engine() {
  if [[ -f $WORK/dockerd.pid ]]; then kill "$(cat "$WORK/dockerd.pid")" 2>/dev/null || true; fi
  for _ in $(seq 60); do pgrep -f "dockerd --data-root $WORK/" >/dev/null || break; sleep 1; done
  grep " $WORK/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount 2>/dev/null || true
  rm -rf "$WORK"
}
trap stop_engine EXIT
build() {
  stop_engine
  local env
  env=$(SEGREPRO_CONTAINER_WORK=$WORK bash "$ENV_SCRIPT" 2>"$LOG/engine.err") \
    || { tail -n 5 "$LOG/engine.err" >&2; echo "$0: container-env.sh failed" >&2; return 1; }
  eval "$env"
  docker build -q --network host --build-arg BASE_IMAGE="$SEGREPRO_BASE_IMAGE" --build-arg TORCH_INDEX_URL= \
    -t segrepro:bench-overlap . >"$LOG/build.out" 2>&1 || { tail -n 20 "$LOG/build.out" >&2; return 1; }
}
slice() {
  PYTHONPATH=src:. .venv/bin/python -m pytest -q -p no:cacheprovider "${SLICE[@]}" >"$LOG/slice.out" 2>&1 \
    || { tail -n 20 "$LOG/slice.out" >&2; return 1; }
}
# In $(...) set -e is off: a failed step must fail the assignment itself, not print a time.
timed() { local start; start=$(date +%s.%N); "$@" || return; echo "$(date +%s.%N) - $start" | bc; }

PYTHONPATH=src .venv/bin/python -c 'import torch; from segrepro.runtime import machine_description
print("machine:", ", ".join(f"{k} {v}" for k, v in machine_description(torch.device("cpu")).items()))'
echo "slice: ${SLICE[*]}"
slice_s=$(timed slice)
build_s=$(timed build)
stop_engine
start=$(date +%s.%N)
build & build_pid=$!
slice
wait "$build_pid"
both_s=$(echo "$(date +%s.%N) - $start" | bc)
printf 'slice alone %.0f s, build alone %.0f s: one after the other %.0f s; together %.0f s (saved %.0f s)\n' \
  "$slice_s" "$build_s" "$(echo "$slice_s + $build_s" | bc)" "$both_s" "$(echo "$slice_s + $build_s - $both_s" | bc)"
