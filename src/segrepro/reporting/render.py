"""Execute the report notebook with papermill and export it to HTML with nbconvert.

The HTML hides input cells and embeds images (matplotlib's inline PNGs are
base64 in the notebook already). If a cell fails, papermill's error — which
names the cell and the exception — becomes a ``SegreproError`` and no HTML
is written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbconvert import HTMLExporter

from segrepro.atomic import atomic_file
from segrepro.errors import SegreproError


def render_report(notebook: Path, executed: Path, html: Path, parameters: dict[str, Any],
                  cwd: Path | None = None) -> None:
    if not Path(notebook).is_file():
        raise SegreproError(f"report notebook {notebook} is missing")
    with atomic_file(executed) as tmp_nb:
        try:
            papermill.execute_notebook(str(notebook), str(tmp_nb), parameters=parameters,
                                       cwd=str(cwd) if cwd else None, progress_bar=False,
                                       kernel_name="python3")
        except papermill.PapermillExecutionError as exc:
            first_line = (exc.source or "").strip().splitlines()[:1]
            raise SegreproError(f"report notebook {notebook} failed in cell {exc.cell_index} "
                                f"({first_line[0] if first_line else 'empty'!r}): "
                                f"{exc.ename}: {exc.evalue}") from exc
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    with atomic_file(html) as tmp_html:
        tmp_html.write_text(body, encoding="utf-8")
