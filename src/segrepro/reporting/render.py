"""Execute the report notebook with papermill and export it to HTML with nbconvert.

The HTML hides input cells and embeds images (matplotlib's inline PNGs are
base64 in the notebook already). If a cell fails, papermill's error — which
names the cell and the exception — becomes a ``SegreproError`` and none of
the report's outputs (HTML, executed notebook, tables) is written.

Progress (``segrepro.progress``, on stdout): a line when the notebook starts
executing and one when it is done, the same for the HTML export. On a
terminal papermill's own per-cell bar is drawn in between (on the same
stream, cleared when done); in a log, one line per cell would be noise.

Known limit: while the notebook executes, nbclient owns SIGINT and SIGTERM
(its handlers only schedule a kernel shutdown; the running cells go on), so
Ctrl-C takes effect when the notebook has finished, and afterwards SIGTERM is
back at the system default.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import nbformat
import papermill
from nbconvert import HTMLExporter

from segrepro.atomic import atomic_dir, atomic_file
from segrepro.errors import SegreproError
from segrepro.progress import is_tty, task

# The kernel's own log goes to the stage's stderr, which holds only an error line: ipykernel warns there on
# every start that its local TCP sockets are unencrypted (papermill's kernel manager picks the transport),
# so only the kernel's errors are let through.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def render_report(notebook: Path, executed: Path, html: Path, parameters: dict[str, Any],
                  cwd: Path | None = None) -> None:
    """Execute ``notebook`` into ``executed``, export ``html``, and let the notebook fill ``tables_dir``.

    The three outputs appear as a set: the notebook writes its tables into a
    scratch directory (``atomic_dir``, which also refuses to replace a
    ``tables_dir`` the report did not make), and the tables, the executed
    notebook and the HTML are renamed into place only after all of them
    were written, so a failed report leaves no fresh tables without HTML.
    """
    if not Path(notebook).is_file():
        raise SegreproError(f"report notebook {notebook} is missing")
    bar = {"file": sys.stdout, "leave": False, "desc": "report: cells"} if is_tty() else False
    tables = parameters.get("tables_dir")
    with contextlib.ExitStack() as outputs:
        if tables is not None:
            parameters = dict(parameters, tables_dir=str(outputs.enter_context(atomic_dir(tables, "report"))))
        tmp_nb = outputs.enter_context(atomic_file(executed))
        tmp_html = outputs.enter_context(atomic_file(html))
        with task(f"report: executing notebook {notebook}"):
            try:
                papermill.execute_notebook(str(notebook), str(tmp_nb), parameters=parameters,
                                           cwd=str(cwd) if cwd else None, progress_bar=bar,
                                           kernel_name="python3", extra_arguments=KERNEL_ARGUMENTS)
            except papermill.PapermillExecutionError as exc:
                first_line = (exc.source or "").strip().splitlines()[:1]
                raise SegreproError(f"report notebook {notebook} failed in cell {exc.cell_index} "
                                    f"({first_line[0] if first_line else 'empty'!r}): "
                                    f"{exc.ename}: {exc.evalue}") from exc
        with task(f"report: exporting HTML {html}"):
            exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
            body, _ = exporter.from_notebook_node(nbformat.read(tmp_nb, as_version=4))
            tmp_html.write_text(body, encoding="utf-8")
