"""Were stage outputs edited after their stage ran?

Every output of the stages whose results the report and the audit read —
``preprocess`` (the data), ``train@<key>`` (checkpoints and training logs),
``evaluate@<key>`` (metrics JSON, per-image ``.npz``) and ``compare``
(``comparison.json``) — must hash to the md5 that ``dvc.lock`` recorded when
the stage ran. Editing a stored result by any amount, even below a metric
tolerance, changes its md5; so does editing ``comparison.json`` or a
per-image file, from which the report's verdicts come. The hashes are
recomputed directly (``dvchash``), never through the ``dvc`` CLI: the audit
runs inside ``dvc repro``, which holds the repository lock.

Choice: the download stage's raw archive is not re-hashed (1,400 files,
already sha256-verified by ``download`` and only read by ``preprocess``,
whose output is checked).
"""
from __future__ import annotations

from pathlib import Path

from segrepro.audit.check import Check
from segrepro.audit.dvchash import dvc_md5
from segrepro.audit.lock import stage_outs

EDITED = "edited after its stage ran; rerun `dvc repro`"


def audited_stages(keys: list[str]) -> list[str]:
    return (["preprocess"] + [f"train@{k}" for k in keys] + [f"evaluate@{k}" for k in keys]
            + ["compare"])


def edit_checks(stages: dict, lock_dir: Path, keys: list[str]) -> list[Check]:
    """One row per output of the audited stages: its file hash against dvc.lock."""
    rows = []
    for stage in audited_stages(keys):
        outs = stage_outs(stages, stage)
        if outs is None:
            rows.append(Check(stage, "dvc.lock entry", "missing", "-", "recorded",
                              f"stage {stage} has no dvc.lock entry; run `dvc repro`"))
            continue
        for path, recorded in sorted(outs.items()):
            actual = dvc_md5(lock_dir / path, lock_dir)
            if actual is None:
                status, note = "missing", "missing from the workspace; run `dvc repro` (or `dvc pull`)"
            elif actual == recorded:
                status, note = "pass", ""
            else:
                status, note = "drift", f"{path} {EDITED}"
            rows.append(Check(path, f"md5 = dvc.lock ({stage})", status, actual or "-", str(recorded), note))
    return rows
