"""``sync``, ``history``, ``conflicts`` and ``restore``: the data path on the command
line."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from typing import Any

from desktop.engine.progress import SyncProgress
from shared.calendar import IST
from shared.cliutil import config_from_args, print_json
from shared.config import ConflictPolicy
from shared.paths import AppPaths

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    sync = commands.add_parser(
        "sync", help="download the new daily dumps from S3 and merge them into the laptop "
        "database",
        description="Find dumps newer than the ledger, download and verify them, and merge "
        "each in one transaction. Exit 3 when --policy abort meets a conflict, 4 when a "
        "trading day has no dump (a hole, or history that expired from S3).")
    sync.add_argument("--json", action="store_true", help="print the report as one JSON object")
    sync.add_argument("--dry-run", action="store_true",
                      help="report what would happen; change nothing")
    sync.add_argument("--policy", choices=[str(p) for p in ConflictPolicy],
                      help="what wins when a row differs (default: [sync] policy, server-wins)")
    sync.add_argument("--add-columns", action="store_true",
                      help="add columns the dump has and the laptop table lacks (the "
                      "laptop's existing rows get the value the instance's existing rows got)")
    sync.add_argument("--keep-dropped-columns", action="store_true",
                      help="sync although a laptop column is not in the dump (dropped on the "
                      "instance): the laptop keeps the column and its values, rows the sync "
                      "adds get its default (NULL without one)")
    sync.set_defaults(handler=_sync)

    history = commands.add_parser(
        "history", help="applied dumps with their counts",
        description="Every dump merged into the laptop database, oldest first: its days, "
        "new/unchanged/diverged rows, size, and when it was applied (IST).")
    history.add_argument("--json", action="store_true", help="print one JSON object")
    history.set_defaults(handler=_history)

    conflicts = commands.add_parser(
        "conflicts", help="rows that differed between the laptop and a dump (both versions)",
        description="Each row a sync found changed on both sides: its key, the laptop's and "
        "the dump's version, and which one won (a value longer than 4,096 characters is "
        "shown shortened to its start, size and md5; it is kept whole). `market-sync "
        "restore ID` (or the tray's Conflicts window) puts the losing version back.")
    conflicts.add_argument("--dump", metavar="ID", help="only this dump")
    fmt = conflicts.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--csv", action="store_true",
                     help="print CSV: one column per key part, then each field's laptop and "
                     "incoming value")
    conflicts.set_defaults(handler=_conflicts)

    restore = commands.add_parser(
        "restore", help="put a conflict's losing version back into its table",
        description="For each conflict id (see `market-sync conflicts`): the version that "
        "lost goes back into the table, replacing the winner's row (found by its key); "
        "where the loser is a row the instance deleted, the laptop's row comes back, and "
        "where it is the instance's deletion, the laptop's row goes. Each conflict in a "
        "transaction of its own; one that cannot be put back changes nothing and stops "
        "the rest.")
    restore.add_argument("ids", metavar="ID", type=_conflict_id, nargs="+",
                         help="conflict id, as `market-sync conflicts` lists it")
    restore.add_argument("--json", action="store_true", help="print one JSON object")
    restore.set_defaults(handler=_restore)


def database_password() -> str | None:
    """The laptop database's password from the OS keyring, if one is stored there.

    Without a secure keyring (a headless machine), libpq's PGPASSWORD and .pgpass apply.
    """
    from shared.secrets import DATABASE_PASSWORD, SecretStore, SecretStoreError

    try:
        return SecretStore.default().get(DATABASE_PASSWORD)
    except SecretStoreError as exc:
        logger.debug("no database password from the keyring (%s)", exc.message)
        return None


def _sync(args: argparse.Namespace) -> int:
    from desktop.engine.sync import SyncEngine
    from shared.credentials import announce, laptop_clients, secret_store
    from shared.dumpstore import DumpStore

    config = config_from_args(args)
    clients = laptop_clients(config.aws, secret_store(config.ui.allow_insecure_keyring))
    announce(clients)
    store = DumpStore(clients.s3(), config.aws.bucket, config.aws.prefix)
    engine = SyncEngine(config, store, AppPaths.default().downloads_dir,
                        password=database_password())
    show = TerminalProgress() if sys.stderr.isatty() and not args.json else None
    report = engine.run(ConflictPolicy(args.policy) if args.policy else None,
                        dry_run=args.dry_run, add_columns=args.add_columns or None,
                        keep_dropped_columns=args.keep_dropped_columns or None,
                        progress=show)
    if show:
        show.clear()
    if args.json:
        print_json(report.to_json())
    else:
        print(report.summary())
    return report.exit_code


class TerminalProgress:
    def __init__(self) -> None:
        self.width = 0

    def __call__(self, p: SyncProgress) -> None:
        if p.phase in ("listing", "done") or not p.dump_id:
            return
        mb = p.bytes_done / 1e6
        total = p.bytes_total / 1e6
        line = (f"dump {p.dump_index}/{p.dump_count} {p.phase} {p.table or ''} "
                f"{mb:,.1f}/{total:,.1f} MB, {p.rows_done:,}/{p.rows_total:,} rows")
        self.width = max(self.width, len(line))
        print("\r" + line.ljust(self.width), end="", file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.width:
            print("\r" + " " * self.width + "\r", end="", file=sys.stderr, flush=True)


def _history(args: argparse.Namespace) -> int:
    from desktop.engine import ledger
    from desktop.engine.sync import connect_local

    config = config_from_args(args)
    with connect_local(config.database.conninfo, database_password()) as conn:
        dumps = ledger.applied_dumps(conn)
    if args.json:
        print_json({"ok": True, "dumps": [d.to_json() for d in dumps]})
        return 0
    if not dumps:
        print("No dumps applied yet: run `market-sync sync`.")
        return 0
    print(f"{'dump':<26} {'days':<23} {'new':>12} {'unchanged':>12} {'diverged':>9} "
          f"{'MB':>8}  applied (IST)")
    for d in dumps:
        days = f"{d.first_day} … {d.last_day}" if d.first_day else "snapshot"
        print(f"{d.dump_id:<26} {days:<23} {d.rows_new:>12,} {d.rows_unchanged:>12,} "
              f"{d.rows_diverged:>9,} {d.bytes / 1e6:>8.1f}  "
              f"{d.applied_at.astimezone(IST):%Y-%m-%d %H:%M}")
    return 0


def _conflicts(args: argparse.Namespace) -> int:
    from desktop.engine import ledger
    from desktop.engine.sync import connect_local

    config = config_from_args(args)
    with connect_local(config.database.conninfo, database_password()) as conn:
        rows = ledger.conflicts(conn, args.dump)
    if args.json:
        print_json({"ok": True, "conflicts": [r.to_json() for r in rows]})
    elif args.csv:
        from desktop.engine.conflict_table import conflict_table

        header, table = conflict_table(rows)
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(table)
    elif not rows:
        print("No conflicts." if not args.dump else f"No conflicts in dump {args.dump}.")
    else:
        for r in rows:
            print(f"#{r.id} {r.table_name} {_js(r.key)} (dump {r.dump_id}, {r.winner} won)")
            print(f"    laptop:   {_js(r.local_row)}")
            print(f"    incoming: {_js(r.incoming_row)}")
    return 0


def _conflict_id(text: str) -> int:
    try:
        value = int(text.removeprefix("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a conflict id (a number, as `market-sync conflicts` "
            "lists it)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a conflict id (they start at 1)")
    return value


def _restore(args: argparse.Namespace) -> int:
    from desktop.engine.restore import restore_conflict
    from desktop.engine.sync import connect_local
    from shared.errors import MarketSyncError

    config = config_from_args(args)
    done = []
    with connect_local(config.database.conninfo, database_password()) as conn:
        for conflict_id in dict.fromkeys(args.ids):  # each in a transaction of its own
            try:
                done.append(restore_conflict(conn, config, conflict_id))
            except MarketSyncError as exc:
                if done:
                    before = ", ".join(f"#{r.conflict_id}" for r in done)
                    exc.hint = f"{before} put back before it; " + exc.hint
                raise
    if args.json:
        print_json({"ok": True, "restored": [
            {"id": r.conflict_id, "table": r.table, "version": r.version, "removed": r.removed}
            for r in done]})
        return 0
    for r in done:
        if r.removed:
            print(f"#{r.conflict_id} {r.table}: the winner's row was removed "
                  "(the losing version was a deletion)")
        else:
            side = "laptop's" if r.version == "local" else "instance's"
            print(f"#{r.conflict_id} {r.table}: the {side} version is back in the table")
    return 0


def _js(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)
