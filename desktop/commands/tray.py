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
    from shared.config import load_config
    from shared.paths import resolve_config_path

    path = resolve_config_path(args.config)
    if not path.exists():
        from desktop.ui.app import run_first_run

        return run_first_run(path)
    config = load_config(path)
    from desktop.ui.app import run_tray

    return run_tray(config)
