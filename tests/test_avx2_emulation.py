"""benchmarks/avx2_emulation.py: the emulated child's command line, without running it.

The child only runs on an AVX-512 machine (``test_bench_train`` exercises it
there); these checks hold everywhere: the child runs bench_train.py itself,
with the parent's settings, and never recurses into another emulation.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import avx2_emulation  # noqa: E402
import bench_train  # noqa: E402


def test_child_reruns_the_command_line_with_the_parents_settings(tmp_path):
    args = bench_train.parser().parse_args(
        ["--params", "p.yaml", "--methods", "baseline", "sdn", "--steps", "2", "--warmup", "1", "--repeats", "4",
         "--threads", "1", "--crop", "32", "48", "--epoch-breakdown", "pdn", "--data", "d", "--markdown",
         "--emulate-avx2", "--json", "parent.json"])
    out = tmp_path / "emulated.json"
    argv = avx2_emulation.child_argv(args, 3, out)
    assert argv[0] == sys.executable
    assert Path(argv[1]) == REPO / "benchmarks" / "bench_train.py"
    child = bench_train.parser().parse_args(argv[2:])
    assert (child.params, child.methods, child.steps, child.warmup, child.repeats, child.crop) == \
        ("p.yaml", ["baseline", "sdn"], 2, 1, 4, [32, 48])
    assert (child.epoch_breakdown, child.data, child.markdown) == ("pdn", "d", True)
    assert (child.threads, child.json, child.expect_capability) == (3, str(out), "AVX2")
    assert not child.emulate_avx2 and not child.host_only


def test_child_leaves_out_the_options_the_parent_did_not_set(tmp_path):
    args = bench_train.parser().parse_args(["--emulate-avx2"])
    child = bench_train.parser().parse_args(avx2_emulation.child_argv(args, 2, tmp_path / "e.json")[2:])
    assert child.crop is None and child.epoch_breakdown is None and not child.markdown
    assert child.methods == list(bench_train.METHOD_NAMES)
