"""The tray's engine work, in a child process: ``python -m desktop.proc.worker OP``.

The one entry point is :func:`main` (a frozen app dispatches to it).

The tray never imports boto3 or psycopg and never shares its GIL with the
engine: every status poll, sync, start/stop, conflicts, history, put-back and
database test runs here, one child process per operation.

Protocol (all UTF-8, one JSON object per line):

* stdin, first line: the request, ``{"config": <base64 pickle of the tray's Config>,
  "now": <ISO time or null>, "password": <str or null>}``; with ``--config PATH`` the
  config is read from that file instead and no request line is read.
  Every later line ``cancel`` (and end of file: the tray went away) cancels the
  operation's :class:`~desktop.engine.progress.CancelToken`; so do SIGTERM and SIGINT.
  The engine rolls back the dump in flight; a killed child leaves nothing either, the
  merge's transaction dies with its connection.
* stdout: ``{"progress": {...}}`` per :class:`SyncProgress` (sync only; the engine
  throttles), then exactly one last line, ``{"result": {...}}`` (exit 0) or
  ``{"error": {"message", "hint", "kind", "cancelled"}}`` (exit 1).
* stderr: log lines; the tray copies them into its own log.

The records both ends share (the request, the answers read back) are in
:mod:`desktop.proc.protocol`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from desktop.engine.instance import InstanceState
from desktop.engine.progress import CancelToken, SyncProgress
from desktop.proc.protocol import CANCEL, OPERATIONS, Request
from shared.config import Config

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.secrets import SecretStore

logger = logging.getLogger(__name__)


# -- the child's side ------------------------------------------------------------------------
def secret_store(config: Config) -> SecretStore | None:
    """The keyring, or None (and a log line) where no acceptable one exists."""
    from shared.credentials import secret_store as store

    return store(config.ui.allow_insecure_keyring)


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
    """The one resolver of shared/credentials.py: the operator key from the keyring first."""
    from shared.credentials import laptop_clients

    clients = laptop_clients(config.aws, secret_store(config))
    if clients.identity is not None:
        logger.info("AWS as %s", clients.identity.label)
    return clients


class Output:
    """stdout as the protocol's lines; one lock, so progress and the result never mix."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, kind: str, document: object) -> None:
        line = json.dumps({kind: document}, default=str, ensure_ascii=False)
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def progress(self, p: SyncProgress) -> None:
        self.send("progress", {f.name: getattr(p, f.name) for f in fields(p)})


def _clock(request: Request) -> dict[str, Any]:
    now = request.now
    return {} if now is None else {"clock": lambda: now}


def _connect(request: Request) -> Any:
    from desktop.engine.sync import connect_local

    config = request.config
    return connect_local(config.database.conninfo, database_password(config))


def _instance(request: Request) -> Any:
    from desktop.engine.instance import InstanceController
    from desktop.engine.status import health_url_for
    from shared.errors import ConfigError

    config = request.config
    if not config.aws.instance_id:
        raise ConfigError("no instance is configured",
                          "set [aws] instance_id in Settings or the config file")
    return InstanceController(aws_clients(config).ec2(), config.aws.instance_id,
                              health_url=health_url_for(config), **_clock(request))


def run_operation(args: argparse.Namespace, request: Request, cancel: CancelToken,
                  out: Output) -> dict[str, Any]:
    """The operation's result document (what follows ``"result"``)."""
    config = request.config
    if args.operation == "status":
        from desktop.engine.status import collect_status

        return collect_status(config, aws_clients(config), password=database_password(config),
                              **_clock(request)).to_json()
    if args.operation == "sync":
        from desktop.engine.sync import SyncEngine
        from shared.dumpstore import DumpStore
        from shared.paths import AppPaths

        store = DumpStore(aws_clients(config).s3(), config.aws.bucket, config.aws.prefix)
        engine = SyncEngine(config, store, AppPaths.default().downloads_dir,
                            password=database_password(config))
        return engine.run(progress=out.progress, cancel=cancel).to_json()
    if args.operation == "start":
        state: InstanceState = _instance(request).start(wait=False)
        return state.to_json()
    if args.operation == "stop":
        state = _instance(request).stop(force=args.force, wait=False)
        return state.to_json()
    if args.operation in ("conflicts", "history"):
        from desktop.engine import ledger

        with _connect(request) as conn:
            if args.operation == "conflicts":
                return {"conflicts": [r.to_json() for r in ledger.conflicts(conn)]}
            return {"dumps": [d.to_json() for d in ledger.applied_dumps(conn)]}
    if args.operation == "restore":
        from desktop.engine.restore import restore_conflict

        with _connect(request) as conn:
            for conflict_id in args.ids:  # each in the engine's own transaction
                restore_conflict(conn, config, conflict_id)
        return {"restored": list(args.ids)}
    if args.operation == "check-database":
        return check_database(config.database.conninfo,
                              request.password or database_password(config))
    if args.operation.startswith("app-secret"):
        return app_secrets(args, request)
    raise AssertionError(args.operation)


def app_secrets(args: argparse.Namespace, request: Request) -> dict[str, Any]:
    """The tray's "App secrets…" and "Set today's access token…": names, put, delete."""
    from shared.appsecrets import AppSecrets, stack_of
    from shared.errors import UsageError

    config = request.config
    secrets = AppSecrets(aws_clients(config).ssm(), stack_of(config.aws))
    if args.operation == "app-secrets":
        return {"names": secrets.names()}
    if not args.name:
        raise UsageError(f"{args.operation} needs --name")
    if args.operation == "app-secret-set":
        secrets.put(args.name, request.value or "")
        return {"stored": args.name}
    secrets.delete(args.name)
    return {"deleted": args.name}


def check_database(conninfo: str, password: str | None) -> dict[str, Any]:
    """The Settings dialog's Test button: connect, ask the server version."""
    from desktop.engine.sync import connect_local
    from shared.errors import MarketSyncError

    try:
        with connect_local(conninfo, password or None) as conn:
            row = conn.execute("SELECT current_setting('server_version'), "
                               "current_database()").fetchone()
    except MarketSyncError as exc:
        return {"ok": False, "message": exc.message}
    version, name = row if row else ("?", "?")
    return {"ok": True, "message": f"Connected to {name} (PostgreSQL {version})."}


def _listen_for_cancel(stream: IO[str], cancel: CancelToken, eof_cancels: bool) -> None:
    """``cancel`` on stdin cancels; so does stdin closing when the tray started us (the tray
    is gone), not when a person did (``--config`` with stdin from /dev/null)."""
    for line in stream:
        if line.strip() == CANCEL:
            logger.info("cancel requested")
            cancel.cancel()
    if eof_cancels and not cancel.cancelled:
        logger.info("stdin closed: cancelling")
        cancel.cancel()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m desktop.proc.worker",
        description="The tray's engine work in a child process. The request comes as the "
        "first stdin line (or --config); progress and the result are JSON lines on stdout; "
        "'cancel' on stdin, SIGTERM or SIGINT cancel. Use `market-sync` for the command "
        "line.")
    parser.add_argument("operation", choices=OPERATIONS)
    parser.add_argument("ids", nargs="*", type=int, metavar="ID",
                        help="restore: the conflicts to put back")
    parser.add_argument("--force", action="store_true",
                        help="stop: even during market hours")
    parser.add_argument("--name", help="app-secret-set/-delete: the variable (its value "
                        "comes in the request line, never on the command line)")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help="read the config from this file instead of the request line")
    return parser


def main(argv: Sequence[str] | None = None, stdin: IO[str] | None = None,
         stdout: IO[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from shared.logsetup import configure_cli_logging

    configure_cli_logging(int(os.environ.get("MARKET_SYNC_WORKER_VERBOSE", "0") or 0))
    stdin = stdin or sys.stdin
    out = Output(stdout or sys.stdout)
    cancel = CancelToken()
    try:
        if args.config is not None:
            from shared.config import load_config

            request = Request(load_config(args.config))
        else:
            request = Request.parse(stdin.readline())
    except Exception as exc:  # the tray's own bug, or a hand-typed request
        return _fail(out, exc)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: cancel.cancel())
    threading.Thread(target=_listen_for_cancel, args=(stdin, cancel, args.config is None),
                     daemon=True,
                     name="cancel-listener").start()
    try:
        result = run_operation(args, request, cancel, out)
    except Exception as exc:
        return _fail(out, exc)
    out.send("result", result)
    return 0


def _fail(out: Output, exc: Exception) -> int:
    from shared.errors import Cancelled, MarketSyncError

    if isinstance(exc, MarketSyncError):
        error = {"message": exc.message, "hint": exc.hint, "kind": type(exc).__name__,
                 "cancelled": isinstance(exc, Cancelled)}
    else:  # a bug: the traceback goes to the log (stderr), one line to the tray
        logger.error("%s", traceback.format_exc().rstrip())
        error = {"message": f"{type(exc).__name__}: {exc}",
                 "hint": "this is a bug; the log has the details",
                 "kind": type(exc).__name__, "cancelled": False}
    out.send("error", error)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
