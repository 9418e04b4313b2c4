"""``market-sync demo``: the whole chain on this machine with nothing to configure."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: argparse._SubParsersAction[Any]) -> None:
    demo = commands.add_parser(
        "demo", help="everything on this machine: embedded AWS endpoint (moto), throwaway "
        "PostgreSQL, sample data, the agent's backups and a sync",
        description="Runs the whole chain locally and removes it afterwards: a moto server "
        "for S3, a throwaway PostgreSQL cluster with an 'instance' and a 'laptop' database, "
        "a few trading days of sample ticks, the real backup agent (one dump per day at "
        "16:00 IST), the real sync with its report, then a conflict and its report.")
    demo.add_argument("--days", type=int, default=3, help="trading days of sample data (3)")
    demo.add_argument("--step", type=int, default=15,
                      help="seconds between ticks per instrument (15: ~12k ticks a day)")
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    import sys

    from desktop.commands.sync import TerminalProgress
    from desktop.demo import demo_world, make_conflict, simulate_days
    from desktop.engine import ledger
    from desktop.engine.sync import SyncEngine, connect_local
    from shared.aws import AwsClients
    from shared.dumpstore import DumpStore

    print("Starting an embedded AWS endpoint (moto) and a throwaway PostgreSQL…", flush=True)
    with demo_world(args.days, args.step) as world:
        print(f"  S3 at {world.endpoint_url}, bucket {world.bucket}; "
              f"config in {world.laptop_config.path}\n")
        simulate_days(world, lambda line: print(line, flush=True), args.step)
        store = DumpStore(AwsClients(world.laptop_config.aws).s3(), world.bucket)
        engine = SyncEngine(world.laptop_config, store, world.folder / "downloads")

        print("\n$ market-sync sync", flush=True)
        progress = TerminalProgress() if sys.stderr.isatty() else None
        report = engine.run(progress=progress)
        if progress:
            progress.clear()
        print(report.summary())
        if report.exit_code not in (0, 4):
            return report.exit_code

        print("\nThe trader edits a tick on the laptop; the server corrects the same tick "
              "and renames an instrument.\nagent:    " + make_conflict(world).split("\n")[0])
        print("\n$ market-sync sync", flush=True)
        second = engine.run(progress=progress)
        if progress:
            progress.clear()
        print(second.summary())

        print("\n$ market-sync conflicts")
        with connect_local(world.laptop_config.database.conninfo) as conn:
            for c in ledger.conflicts(conn):
                print(f"#{c.id} {c.table_name} {c.key}: {c.winner} won")
                print(f"    laptop:   {c.local_row}")
                print(f"    incoming: {c.incoming_row}")
            print("\n$ market-sync history")
            for d in ledger.applied_dumps(conn):
                print(f"{d.dump_id}  {d.first_day} … {d.last_day}  new {d.rows_new:,}  "
                      f"unchanged {d.rows_unchanged:,}  diverged {d.rows_diverged:,}")
        print("\nDemo finished; the throwaway database, S3 endpoint and files are removed.")
        return second.exit_code
