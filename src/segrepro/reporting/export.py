"""Write report tables as CSV, Markdown and LaTeX under ``reports/tables``."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from segrepro.atomic import atomic_file


def export_table(table: pd.DataFrame, directory: Path, name: str) -> None:
    """A named index becomes leading columns; in Markdown each level of a multi-level index gets its
    own column (``to_markdown`` would print every row label as a Python tuple)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    index = any(name is not None for name in table.index.names)
    markdown = table.reset_index() if index else table
    for suffix, text in ((".csv", table.to_csv(index=index)),
                         (".md", markdown.to_markdown(index=False) + "\n"),
                         (".tex", table.to_latex(index=index, escape=True))):
        with atomic_file(directory / f"{name}{suffix}") as tmp:
            tmp.write_text(text, encoding="utf-8")
