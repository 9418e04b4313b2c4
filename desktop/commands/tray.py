"""``market-sync tray``: the tray app (``market-sync-tray`` is :func:`desktop.cli.gui_main`)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: argparse._SubParsersAction[Any]) -> None:
    tray = commands.add_parser(
        "tray", help="the tray app: instance state, start/stop, Sync now",
        description="Shows the instance's state in the system tray (or a window where there "
        "is no tray). Without a configuration it opens the first-run wizard. A second launch "
        "brings the running one's window forward.")
    tray.set_defaults(handler=_tray)


def _tray(args: argparse.Namespace) -> int:
    from desktop.system.display import display_problem
    from shared.config import load_config
    from shared.errors import ConfigError, UsageError
    from shared.paths import resolve_config_path

    problem = display_problem()  # before Qt, which would abort the process
    if problem:
        raise UsageError(problem, "start the tray from your desktop session; on a server use "
                         "`market-sync status` and `market-sync sync`")
    path = resolve_config_path(args.config)
    if not path.exists():
        from desktop.ui.app import run_first_run

        return run_first_run(path)
    try:
        config = load_config(path)
    except ConfigError as exc:  # from a launcher there is no terminal: say it in a window
        from desktop.ui.app import run_config_error

        return run_config_error(path, exc)
    from desktop.ui.app import run_tray

    return run_tray(config)
