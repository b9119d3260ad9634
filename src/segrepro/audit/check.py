"""One row of the audit: what was checked, its status, observed and pinned values.

``stale``: an output made with params other than the current ``params.yaml`` (``stale.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("pass", "drift", "missing", "stale", "skip")
FAILING = ("drift", "missing", "stale")


@dataclass(frozen=True)
class Check:
    subject: str
    check: str
    status: str  # one of STATUSES
    observed: str
    pinned: str
    note: str = ""  # why: the band used, the reason for a skip, the fix for a drift

    @property
    def failed(self) -> bool:
        return self.status in FAILING
