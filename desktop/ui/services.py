"""What the tray asks of the engine, as requests to its child process (no Qt here).

Each function returns a :class:`WorkerCall`: the operation for ``python -m
desktop.proc.worker``, the request written to its stdin, how long it may take, and how
its JSON answer becomes the frozen dataclass the windows show. The runner
(:meth:`desktop.ui.runner.Runner.spawn`) runs it. Nothing here imports boto3 or
psycopg, and nothing of the engine runs in the tray's process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from desktop.engine.status import StatusSnapshot
from desktop.proc.protocol import (
    AppSecretChange,
    AppSecretNames,
    ConflictList,
    DatabaseCheck,
    Decoder,
    HistoryList,
    Request,
    RestoredRows,
    instance_from_json,
    progress_from_json,
    report_from_json,
)
from shared.config import Config

__all__ = ["AppSecretChange", "AppSecretNames", "ConflictList", "DatabaseCheck", "HistoryList",
           "RestoredRows", "WorkerCall"]

Clock = Callable[[], dt.datetime] | None  # None: the real time (tests pass a fixed one)

STATUS_TIMEOUT_MS = 90_000
INSTANCE_TIMEOUT_MS = 120_000
LEDGER_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class WorkerCall:
    """One operation of the worker, ready to run."""

    operation: str
    arguments: tuple[str, ...]
    request: Request
    decode: Decoder
    progress: Decoder | None = None
    timeout_ms: int | None = None  # None: as long as it takes (a sync)


def _request(config: Config, clock: Clock = None, password: str | None = None) -> Request:
    return Request(config, clock() if clock is not None else None, password)


def poll_status(config: Config, clock: Clock = None) -> WorkerCall:
    return WorkerCall("status", (), _request(config, clock), StatusSnapshot.from_json,
                      timeout_ms=STATUS_TIMEOUT_MS)


def start_instance(config: Config, clock: Clock = None) -> WorkerCall:
    return WorkerCall("start", (), _request(config, clock), instance_from_json,
                      timeout_ms=INSTANCE_TIMEOUT_MS)


def stop_instance(config: Config, force: bool, clock: Clock = None) -> WorkerCall:
    return WorkerCall("stop", ("--force",) if force else (), _request(config, clock),
                      instance_from_json, timeout_ms=INSTANCE_TIMEOUT_MS)


def run_sync(config: Config) -> WorkerCall:
    return WorkerCall("sync", (), _request(config), report_from_json,
                      progress=progress_from_json)


def load_conflicts(config: Config) -> WorkerCall:
    return WorkerCall("conflicts", (), _request(config), ConflictList.from_json,
                      timeout_ms=LEDGER_TIMEOUT_MS)


def load_history(config: Config) -> WorkerCall:
    return WorkerCall("history", (), _request(config), HistoryList.from_json,
                      timeout_ms=LEDGER_TIMEOUT_MS)


def restore_conflicts(config: Config, conflict_ids: tuple[int, ...]) -> WorkerCall:
    """Put the laptop's version of each row back (each in the engine's own transaction)."""
    return WorkerCall("restore", tuple(str(i) for i in conflict_ids), _request(config),
                      RestoredRows.from_json, timeout_ms=LEDGER_TIMEOUT_MS)


def check_database(config: Config, conninfo: str, password: str | None) -> WorkerCall:
    """The Settings dialog's Test button; the typed password travels on stdin, never argv."""
    from dataclasses import replace

    tested = replace(config, database=replace(config.database, conninfo=conninfo))
    return WorkerCall("check-database", (), _request(tested, password=password or None),
                      DatabaseCheck.from_json, timeout_ms=LEDGER_TIMEOUT_MS)


def list_app_secrets(config: Config) -> WorkerCall:
    """The names of the app's secrets in SSM (never their values)."""
    return WorkerCall("app-secrets", (), _request(config), AppSecretNames.from_json,
                      timeout_ms=INSTANCE_TIMEOUT_MS)


def set_app_secret(config: Config, name: str, value: str) -> WorkerCall:
    """Store one secret; the value travels on the child's stdin, never on its argv."""
    from dataclasses import replace

    return WorkerCall("app-secret-set", ("--name", name),
                      replace(_request(config), value=value), AppSecretChange.from_json,
                      timeout_ms=INSTANCE_TIMEOUT_MS)


def delete_app_secret(config: Config, name: str) -> WorkerCall:
    return WorkerCall("app-secret-delete", ("--name", name), _request(config),
                      AppSecretChange.from_json, timeout_ms=INSTANCE_TIMEOUT_MS)
