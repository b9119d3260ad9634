"""How tables name a method: the one place that says it (metric labels live in ``metrics.registry``).

A method's code name (``models.methods.METHOD_NAMES``: ``sdn``) names its files, stages and params;
tables show its paper's acronym in capitals (``SDN``). The baseline, which has no paper, keeps its
plain name. The module imports nothing heavy, so benchmarks that print tables may use it.
"""
from __future__ import annotations

from segrepro.models.methods import BASELINE


def method_label(name: str) -> str:
    """The label of a method in tables (``sdn`` → ``SDN``; ``baseline`` stays ``baseline``)."""
    return name if name == BASELINE else name.upper()
