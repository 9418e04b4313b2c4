"""The engine calls the tray makes, as plain functions for the runner's workers.

No Qt here, and every heavy import (boto3, psycopg) happens inside a function,
on a worker thread, when it is first needed: the idle tray stays light.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.config import Config

if TYPE_CHECKING:
    from desktop.engine.ledger import AppliedDump, ConflictRecord
    from desktop.engine.progress import CancelToken, ProgressCallback
    from desktop.engine.report import SyncReport
    from desktop.instance import InstanceController, InstanceState
    from desktop.status import StatusSnapshot
    from shared.aws import AwsClients
    from shared.secrets import SecretStore

logger = logging.getLogger(__name__)


def secret_store(config: Config) -> SecretStore | None:
    """The keyring, or None (and a log line) where no acceptable one exists."""
    from shared.secrets import SecretStore, SecretStoreError

    try:
        return SecretStore.default(config.ui.allow_insecure_keyring)
    except SecretStoreError as exc:
        logger.info("no keyring: %s", exc.message)
        return None


def database_password(config: Config) -> str | None:
    from shared.secrets import DATABASE_PASSWORD, SecretStoreError

    store = secret_store(config)
    if store is None:
        return None
    try:
        return store.get(DATABASE_PASSWORD)
    except SecretStoreError as exc:
        logger.warning("%s", exc.message)
        return None


def aws_clients(config: Config) -> AwsClients:
    """Keys from the keyring if the installer stored some, else the profile/default chain."""
    from shared.aws import AwsClients
    from shared.secrets import SecretStoreError

    store = secret_store(config)
    try:
        keys = store.aws_keys() if store is not None else None
    except SecretStoreError as exc:
        logger.warning("%s", exc.message)
        keys = None
    return AwsClients.with_keys(config.aws, keys) if keys else AwsClients(config.aws)


Clock = Callable[[], dt.datetime] | None  # None: the real time (tests pass a fixed one)


def poll_status(config: Config, clock: Clock = None) -> StatusSnapshot:
    from desktop.status import collect_status

    if clock is None:
        return collect_status(config, aws_clients(config), password=database_password(config))
    return collect_status(config, aws_clients(config), password=database_password(config),
                          clock=clock)


def instance_controller(config: Config, clock: Clock = None) -> InstanceController:
    from desktop.instance import InstanceController
    from shared.errors import ConfigError

    if not config.aws.instance_id:
        raise ConfigError("no instance is configured",
                          "set [aws] instance_id in Settings or the config file")
    ec2 = aws_clients(config).ec2()
    if clock is None:
        return InstanceController(ec2, config.aws.instance_id)
    return InstanceController(ec2, config.aws.instance_id, clock=clock)


def start_instance(config: Config, clock: Clock = None) -> InstanceState:
    return instance_controller(config, clock).start(wait=False)


def stop_instance(config: Config, force: bool, clock: Clock = None) -> InstanceState:
    return instance_controller(config, clock).stop(force=force, wait=False)


def run_sync(config: Config, progress: ProgressCallback, cancel: CancelToken) -> SyncReport:
    from desktop.engine.sync import SyncEngine
    from shared.dumpstore import DumpStore
    from shared.paths import AppPaths

    store = DumpStore(aws_clients(config).s3(), config.aws.bucket, config.aws.prefix)
    engine = SyncEngine(config, store, AppPaths.default().downloads_dir,
                        password=database_password(config))
    return engine.run(progress=progress, cancel=cancel)


@dataclass(frozen=True)
class ConflictList:
    records: tuple[ConflictRecord, ...]


@dataclass(frozen=True)
class HistoryList:
    dumps: tuple[AppliedDump, ...]


def _connect(config: Config) -> Any:
    from desktop.engine.sync import connect_local

    return connect_local(config.database.conninfo, database_password(config))


def load_conflicts(config: Config) -> ConflictList:
    from desktop.engine import ledger

    with _connect(config) as conn:
        return ConflictList(tuple(ledger.conflicts(conn)))


def load_history(config: Config) -> HistoryList:
    from desktop.engine import ledger

    with _connect(config) as conn:
        return HistoryList(tuple(ledger.applied_dumps(conn)))


@dataclass(frozen=True)
class RestoredRows:
    conflict_ids: tuple[int, ...]


def restore_conflicts(config: Config, conflict_ids: tuple[int, ...]) -> RestoredRows:
    """Put the laptop's version of each row back (each in the engine's own transaction)."""
    from desktop.engine.restore import restore_conflict

    with _connect(config) as conn:
        for conflict_id in conflict_ids:
            restore_conflict(conn, config, conflict_id)
    return RestoredRows(conflict_ids)


@dataclass(frozen=True)
class DatabaseCheck:
    ok: bool
    message: str


def check_database(conninfo: str, password: str | None) -> DatabaseCheck:
    """The Settings dialog's Test button: connect, ask the server version."""
    from desktop.engine.sync import connect_local
    from shared.errors import MarketSyncError

    try:
        with connect_local(conninfo, password or None) as conn:
            row = conn.execute("SELECT current_setting('server_version'), "
                               "current_database()").fetchone()
    except MarketSyncError as exc:
        return DatabaseCheck(False, exc.message)
    version, name = row if row else ("?", "?")
    return DatabaseCheck(True, f"Connected to {name} (PostgreSQL {version}).")
