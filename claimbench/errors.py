"""User errors: bad input that the user can fix.

Every message is one line: where (file and key), the rule, the bad value, the
fix. ``cli.main`` prints it and exits with code 2. Anything else that escapes
is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input. ``str(err)`` is the one line shown to the user."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.where = where
        self.fix = fix
        parts = [f"{where}: {message}" if where else message]
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__(" — ".join(parts).replace("\n", " "))


class SuiteError(UserError):
    """A suite file that does not parse or does not validate."""


class StoreError(UserError):
    """A run directory that is missing, foreign, or of another schema version."""
