"""Write report tables as CSV, Markdown and LaTeX under ``reports/tables``."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from segrepro.atomic import atomic_file


def export_table(table: pd.DataFrame, directory: Path, name: str) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    index = any(name is not None for name in table.index.names)
    for suffix, text in ((".csv", table.to_csv(index=index)),
                         (".md", table.to_markdown(index=index) + "\n"),
                         (".tex", table.to_latex(index=index, escape=True))):
        with atomic_file(directory / f"{name}{suffix}") as tmp:
            tmp.write_text(text, encoding="utf-8")
