"""Rows of strings as a table for the terminal or for the README, shared by the CPU benchmarks.

Plain text right-aligns every column to its widest cell (header included),
two spaces apart, so numbers line up by their last digit. Markdown gives
``| a | b |`` rows with a ``| --- |`` separator under the header, ready to
paste into the README. Cells arrive formatted: the caller picks the digits.
"""
from __future__ import annotations


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    """``headers`` and ``rows`` as aligned plain text, or as a Markdown table where ``markdown``."""
    if markdown:
        lines = [headers, ["---"] * len(headers), *rows]
        return "\n".join("| " + " | ".join(r) + " |" for r in lines)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [headers, *rows])
