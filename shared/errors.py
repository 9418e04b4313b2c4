"""The project's own errors: each says what happened and what to do.

Every error a trader can meet is a :class:`MarketSyncError`; the CLIs print
``str(error)`` (message, then the hint) and exit with ``error.exit_code``.
A traceback is a bug.
"""

from __future__ import annotations


class MarketSyncError(Exception):
    """Base of every expected failure. ``hint`` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class ConfigError(MarketSyncError):
    """The configuration file is missing, malformed or names something invalid."""


class UsageError(MarketSyncError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class TableNameError(ConfigError):
    """A table name does not parse as ``schema.table`` with PostgreSQL's rules."""


class ManifestError(MarketSyncError):
    """A dump's manifest is unreadable, of an unknown version or not of the contract."""


class IntegrityError(MarketSyncError):
    """A downloaded part does not match its manifest (checksum, size or row count)."""


class SchemaMismatchError(MarketSyncError):
    """The laptop table and the dump disagree about a column."""


class UnsafeManifestError(ManifestError):
    """A manifest names a table that is not configured, or carries a name that is not a
    plain identifier: it is refused whole."""


class ConflictAbort(MarketSyncError):
    """Policy ``abort`` met diverged rows: nothing of that dump was applied."""

    exit_code = 3


class AwsError(MarketSyncError):
    """An AWS call failed; the message is in the trader's words."""


class DatabaseError(MarketSyncError):
    """The local or instance PostgreSQL could not be reached or refused a statement."""


class SyncBusyError(MarketSyncError):
    """Another sync holds the laptop database's sync lock."""


class Cancelled(MarketSyncError):
    """The trader cancelled; whatever was in flight was rolled back."""


class CalendarError(MarketSyncError):
    """The trading calendar has no data for the year asked about."""


class MarketHoursError(UsageError):
    """Stopping the instance during market hours needs an explicit force."""
