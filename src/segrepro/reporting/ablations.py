"""The ablation section: each variant against its parent's full version, or how to run them.

An ablation variant is a complete option block ``model.<name>: {of: <parent>, ...}``
in ``params.yaml`` (e.g. ``sdn_vanilla``: SDN with vanilla convolution, the
operator ladder of the SDN paper's ablation, ``../shared/docs/methods.md``
§1.8; ``ddsm_spatial`` / ``ddsm_channel``: one sampling branch only, §2.5;
``pdn_1layer`` / ``pdn_3layer``: the number of diffusion layers, §3.5). The
compare stage records which methods of the run are variants and the
paired interval of variant − parent (``comparison["vs_parent"]``); this
module only arranges those numbers.

Choices: a table per parent, long format (rows: metric × version, columns:
mean ± std and Δ vs the full version), so it never grows sideways with the
number of variants; a variant whose parent is not in the run is listed with
its numbers and "parent not run" in place of an interval; the command that
produces the variants adds every variant after its parent (and the parent,
if it is not already run) to the current ``base.methods``; one command per parent
(the reference, the parent and its variants) is given too, since all
variants at once is a long run.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from segrepro.metrics import registry
from segrepro.reporting.labels import method_label
from segrepro.reporting.results import fmt_delta, fmt_mean_std

PARENT_NOT_RUN = "parent not run"


def groups(comparison: dict, methods: Sequence[str]) -> dict[str, list[str]]:
    """parent → its variants in the run, both in configured order."""
    variants = comparison["variants"]
    out: dict[str, list[str]] = {}
    for method in methods:
        if method in variants:
            out.setdefault(variants[method], []).append(method)
    return out


def ablation_table(comparison: dict, parent: str, variants: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Rows (metric, version); columns: mean ± std over seeds (%), Δ vs the parent [95% CI] (pp)."""
    parent_entry = comparison["methods"].get(parent)
    full = f"{method_label(parent)} (full)"
    column = f"Δ vs {full} [95% CI]"
    records = []
    for key in metrics:
        if parent_entry is not None:
            records.append({"metric": registry.label(key), "version": full,
                            "mean ± std": fmt_mean_std(parent_entry[key]), column: "—"})
        for variant in variants:
            vs = comparison["vs_parent"].get(variant)
            records.append({"metric": registry.label(key), "version": variant,
                            "mean ± std": fmt_mean_std(comparison["methods"][variant][key]),
                            column: fmt_delta(vs[key]) if vs else PARENT_NOT_RUN})
    return pd.DataFrame(records).set_index(["metric", "version"])


def run_command(methods: Sequence[str], variants: Mapping[str, str]) -> str:
    """The ``dvc exp run`` line that trains, evaluates and reports every variant next to its parent."""
    order = list(methods) + [p for p in dict.fromkeys(variants.values()) if p not in methods]
    listed: list[str] = []
    for method in order:
        if method not in variants and method not in listed:
            listed.append(method)
            listed += [v for v in variants if variants[v] == method]
    return f"dvc exp run -S 'base.methods=[{','.join(listed)}]' report"


def how_to_produce(methods: Sequence[str], variants: Mapping[str, str]) -> str:
    """Markdown for the section when no variant was run: one command per parent, and one for all."""
    if not variants:
        return ("No ablation variant was run, and `params.yaml` defines none. Add a complete option block "
                "`model.<name>: {of: <method>, ...}` and list `<name>` in `base.methods`, e.g. "
                "`dvc exp run -S 'base.methods=[baseline,sdn,<name>]' report`.")
    names = ", ".join(f"`{v}` (of {p})" for v, p in variants.items())
    reference = list(methods[:1])
    per_parent = [run_command(reference + [parent], {v: p for v, p in variants.items() if p == parent})
                  for parent in dict.fromkeys(variants.values())]
    return (f"No ablation variant was run. `params.yaml` defines {names}. To train, evaluate and report the "
            "variants of one method next to its full version and the reference, run one of:\n\n```bash\n"
            + "\n".join(per_parent) + "\n```\n\nor all of them next to the current methods in one experiment:"
            f"\n\n```bash\n{run_command(methods, variants)}\n```")
