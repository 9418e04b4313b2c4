"""``market-sync demo``: the whole chain on this machine with nothing to configure."""

from __future__ import annotations

import argparse
import importlib.util
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.cliutil import positive_int

if TYPE_CHECKING:
    from desktop.demo.world import DemoWorld


def register(commands: argparse._SubParsersAction[Any]) -> None:
    demo = commands.add_parser(
        "demo", help="everything on this machine: embedded AWS endpoint (moto), throwaway "
        "PostgreSQL, sample data, a simulated instance, then the tray",
        description="Runs the whole chain locally and removes it afterwards (Quit or Ctrl+C): "
        "a moto server for S3 and EC2, a simulated instance with the app's health endpoint, "
        "a throwaway PostgreSQL cluster with an 'instance' and a 'laptop' database, a few "
        "trading days of sample ticks and the real backup agent (one dump per day at 16:00 "
        "IST); then the tray pointed at all of it. With --headless: the real sync with its "
        "report, then a conflict and its report, in the terminal.")
    demo.add_argument("--days", type=positive_int, default=3, metavar="N",
                      help="trading days of sample data (3)")
    demo.add_argument("--step", type=positive_int, default=15, metavar="SECONDS",
                      help="seconds between ticks per instrument (15: ~12k ticks a day)")
    demo.add_argument("--headless", action="store_true",
                      help="no tray: run a sync and print its report instead")
    demo.set_defaults(handler=_demo)


def _say(line: str = "") -> None:
    print(line, flush=True)


def _interrupt(signum: int, _frame: object) -> None:
    """SIGTERM and SIGHUP end the demo like Ctrl+C: everything it made is removed."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _demo(args: argparse.Namespace) -> int:
    from desktop.demo.tray import run_demo_tray, tray_available
    from desktop.demo.world import demo_world
    from shared.errors import MarketSyncError

    if importlib.util.find_spec("shared.devtools") is None:  # the packaged app leaves it out
        raise MarketSyncError("the demo is not part of the installed app (it runs moto and a "
                              "throwaway PostgreSQL from the sources)",
                              "run ./scripts/demo in a clone of market-sync")
    if not args.headless:
        problem = tray_available()  # before minutes of set-up, not after
        if problem:
            raise MarketSyncError(problem,
                                  "run `market-sync demo --headless` for the terminal demo")
    previous = {s: signal.signal(s, _interrupt) for s in _STOP_SIGNALS}
    try:
        _say("Starting an embedded AWS endpoint (moto) and a throwaway PostgreSQL…")
        with demo_world(args.days, args.step) as world:
            _say(f"  S3 at {world.endpoint_url}, bucket {world.bucket}; "
                 f"config in {world.laptop_config.path}")
            _say(f"  PostgreSQL at {_where(world.laptop_conninfo)} (throwaway)")
            _say(f"  EC2 instance {world.instance_id} (simulated), the app's health at "
                 f"{world.health_url}\n")
            _instance_day(world, args.step, _say)
            if not args.headless:
                _first_sync_and_a_conflict(world)
                _say("\nOpening the tray: press Sync now (1 pending), watch the progress, "
                     "then look at the conflicts.\nQuit (or Ctrl+C here) removes everything.")
                return run_demo_tray(world)
            return _headless(world)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                      if hasattr(signal, name))


def _where(conninfo: str) -> str:
    parts = dict(p.split("=", 1) for p in conninfo.split() if "=" in p)
    return f"{parts.get('host', 'localhost')}:{parts.get('port', '5432')}"


def _first_sync_and_a_conflict(world: DemoWorld) -> None:
    """The tray demo's set-up: the days synced once, then the same tick changed on both
    sides, so the tray's Sync now finds a real conflict to look at."""
    from desktop.demo.scenario import make_conflict
    from desktop.engine.sync import SyncEngine
    from shared.aws import AwsClients
    from shared.dumpstore import DumpStore

    store = DumpStore(AwsClients(world.laptop_config.aws).s3(), world.bucket)
    _say("\n$ market-sync sync")
    report = SyncEngine(world.laptop_config, store, world.folder / "downloads").run()
    _say(report.summary())
    _say("\nThe trader edits a tick on the laptop; the server corrects the same tick and "
         "renames an instrument.\nagent:    " + make_conflict(world).split("\n")[0])


def _instance_day(world: DemoWorld, step: int, say: Callable[[str], None]) -> None:
    """The instance's side: started, days collected and backed up, then powered off."""
    from desktop.demo.scenario import demo_controller, simulate_days
    from desktop.engine.instance import market_hours

    controller = demo_controller(world)
    say("$ market-sync start --wait")
    say(controller.start(wait=True, timeout=60).describe())
    health = controller.health()
    say(f"app: {'healthy' if health.ok else 'unhealthy'} ({health.detail})\n")
    simulate_days(world, say, step)
    forced = market_hours(controller.calendar, controller.clock()) is not None
    say("\n$ market-sync stop --wait" + (" --force   # market hours now: the demo insists"
                                         if forced else ""))
    say(controller.stop(force=forced, wait=True, timeout=60).describe())


def _headless(world: DemoWorld) -> int:
    import sys

    from desktop.commands.sync import TerminalProgress
    from desktop.demo.scenario import make_conflict
    from desktop.engine import ledger
    from desktop.engine.status import collect_status
    from desktop.engine.sync import SyncEngine, connect_local
    from shared.aws import AwsClients
    from shared.dumpstore import DumpStore

    clients = AwsClients(world.laptop_config.aws)
    _say("\n$ market-sync status")
    _say(collect_status(world.laptop_config, clients).summary())

    store = DumpStore(clients.s3(), world.bucket)
    engine = SyncEngine(world.laptop_config, store, world.folder / "downloads")
    _say("\n$ market-sync sync")
    progress = TerminalProgress() if sys.stderr.isatty() else None
    report = engine.run(progress=progress)
    if progress:
        progress.clear()
    _say(report.summary())
    if report.exit_code not in (0, 4):
        return report.exit_code

    _say("\nThe trader edits a tick on the laptop; the server corrects the same tick "
         "and renames an instrument.\nagent:    " + make_conflict(world).split("\n")[0])
    _say("\n$ market-sync sync")
    second = engine.run(progress=progress)
    if progress:
        progress.clear()
    _say(second.summary())

    _say("\n$ market-sync conflicts")
    with connect_local(world.laptop_config.database.conninfo) as conn:
        for c in ledger.conflicts(conn):
            _say(f"#{c.id} {c.table_name} {c.key}: {c.winner} won")
            _say(f"    laptop:   {c.local_row}")
            _say(f"    incoming: {c.incoming_row}")
        _say("\n$ market-sync history")
        for d in ledger.applied_dumps(conn):
            _say(f"{d.dump_id}  {d.first_day} … {d.last_day}  new {d.rows_new:,}  "
                 f"unchanged {d.rows_unchanged:,}  diverged {d.rows_diverged:,}")
    _say("\n$ market-sync status")
    _say(collect_status(world.laptop_config, clients).summary())
    _say("\nDemo finished; the throwaway database, S3 endpoint and files are removed.")
    return second.exit_code
