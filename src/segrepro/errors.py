"""The one exception type for user-facing errors.

Every message names the problem and the fix; the CLI prints it without a
traceback and exits with status 2.
"""


class SegreproError(Exception):
    """A problem the user can fix: bad input, bad params, missing data."""


def reason(exc: BaseException, limit: int = 200) -> str:
    """``exc`` inside a one-line message: its type and text on one line, cut at ``limit`` characters
    (a library's error, e.g. numpy's or zipfile's, quoted as the cause of a ``SegreproError``)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split()) if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"
