"""What ``bench_train.py`` prints after its machine line: its result dict as text, every line labelled.

Every block names the label of the run it comes from ("measured" or
"emulated (ISA caps)", ``cpu_class``), so the two runs of ``--emulate-avx2``
cannot be mixed up in one terminal. In order: the matmul peak and conv rates
(one line: all that ``--host-only`` prints after the machine), the step table
(one row per method, per layout ms, img/s, counted GFLOP/s and % of the
peak), the epoch breakdown (s and % per phase, then validation's amortised
share), the note that ``train.compile`` was not timed, and the PASS/FAIL/SKIP
target lines. ``markdown`` makes the tables README-ready.
"""
from __future__ import annotations

from typing import Any

from host_speed import LAYOUTS
from text_table import table


def report(result: dict[str, Any], markdown: bool) -> None:
    """Print ``result`` (``bench_train.run``'s dict) below the machine line ``run`` printed already."""
    m, label = result["machine"], result["machine"]["label"]
    print(f"[{label}] fp32 matmul peak 2048³: {result['peak_gflops']:.1f} GFLOP/s; conv3×3 128ch "
          + ", ".join(f"{k} {v:.1f}" for k, v in result["conv_gflops"].items()) + " GFLOP/s")
    if result["steps"]:
        print(f"\nTraining step, {label}, batch {result['batch']}, crop {result['crop'][0]}×{result['crop'][1]}, "
              f"threads {m['threads']}, {m['cpu_capability']}:")
        cols = (("ms", "ms", 0), ("img/s", "img_s", 1), ("GFLOP/s", "gflops", 1), ("% peak", "pct_peak", 0))
        heads = ["method", "GFLOP/step"] + [f"{lay} {c}" for lay in LAYOUTS for c, _, _ in cols]
        print(table(heads, [[r["method"], f"{r['gflop']:.2f}"] + [f"{r[lay][k]:.{d}f}" for lay in LAYOUTS
                                                                 for _, k, d in cols]
                            for r in result["steps"]], markdown))
    if result.get("breakdown"):
        b = result["breakdown"]
        print(f"\nOne epoch, {label}, {b['method']}: {b['steps']} steps of {b['batch']}, total {b['total_s']:.1f} s")
        print(table(["phase", "s", "%"], [[k, f"{v['s']:.2f}", f"{v['pct']:.1f}"] for k, v in b["parts"].items()],
                    markdown))
        print(f"Validation runs every {b['val_every']} epoch(s): {b['validation_amortised_pct']:.1f}% of an "
              "average epoch")
    if result["eager_note"]:
        print(result["eager_note"])
    for line in result["targets"]:
        print(f"[{label}] {line}")
