"""The one exception type for user-facing errors.

Every message names the problem and the fix; the CLI prints it without a
traceback and exits with status 2.
"""


class SegreproError(Exception):
    """A problem the user can fix: bad input, bad params, missing data."""
