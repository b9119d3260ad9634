"""reporting/labels.py: how tables name a method."""
from __future__ import annotations

import subprocess
import sys

from segrepro.models.methods import METHOD_NAMES
from segrepro.reporting.labels import method_label
from tests.conftest import REPO


def test_tables_show_the_papers_acronyms_and_the_plain_baseline():
    assert [method_label(name) for name in METHOD_NAMES] == ["baseline", "SDN", "DDSM", "PDN"]
    assert method_label("sdn_cdc") == "sdn_cdc"      # an ablation variant keeps its name


def test_the_labels_import_neither_torch_nor_pandas():
    code = "import sys, segrepro.reporting.labels; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
