"""benchmarks/text_table.py: the benchmarks' tables, aligned text and Markdown."""
from __future__ import annotations

import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from text_table import table  # noqa: E402


def test_plain_text_right_aligns_each_column_to_its_widest_cell():
    text = table(["method", "ms"], [["baseline", "5"], ["sdn", "1234567890"]], markdown=False)
    assert text.splitlines() == ["  method          ms",
                                 "baseline           5",
                                 "     sdn  1234567890"]


def test_markdown_has_a_separator_under_the_header():
    text = table(["phase", "s"], [["forward", "0.50"]], markdown=True)
    assert text.splitlines() == ["| phase | s |", "| --- | --- |", "| forward | 0.50 |"]
