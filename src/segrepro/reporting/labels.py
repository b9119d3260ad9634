"""How tables name a method: the one place that says it (metric labels live in ``metrics.registry``).

A method's code name (``models.methods.METHOD_NAMES``: ``sdn``) names its files, stages and params;
tables show its paper's acronym in capitals (``SDN``). The baseline, which has no paper, keeps its
plain name, and so does an ablation variant (``sdn_cdc``: its name is its only description). The
module imports nothing heavy, so benchmarks that print tables may use it.
"""
from __future__ import annotations

from segrepro.models.methods import BASELINE, METHOD_NAMES


def method_label(name: str) -> str:
    """The label of a method in tables (``sdn`` → ``SDN``; ``baseline`` and variants keep their names)."""
    return name.upper() if name in METHOD_NAMES and name != BASELINE else name
