"""What this installation of market-sync is: a source checkout, a pip install, or the packaged
app (PyInstaller), and how it starts its own processes.

A frozen app has no ``python -m``: the tray starts its engine children as
``market-sync __worker__ OP`` (see :mod:`desktop.launcher`) instead of
``python -m desktop.proc.worker OP``. On Windows the package has two executables over the
same files: ``market-sync.exe`` (console: the command line and the worker, which QProcess
starts without a window when the tray has no console) and ``market-sync-tray.exe`` (no
console: the tray, the Start menu entry and the login item).
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.paths import bundle_dir, is_frozen

__all__ = ["WORKER_SWITCH", "app_version", "bundle_dir", "frozen_executable", "is_frozen",
           "worker_command"]

WORKER_SWITCH = "__worker__"
CLI_NAME = "market-sync"
GUI_NAME = "market-sync-tray"  # Windows only: the windowed twin of CLI_NAME


def frozen_executable(gui: bool, platform: str | None = None,
                      executable: str | None = None) -> str:
    """The packaged app's executable for a window-less child (``gui=False``) or for the
    tray at login (``gui=True``); the same file except on Windows."""
    platform = platform or sys.platform
    running = Path(executable or sys.executable)
    if platform != "win32":
        return str(running)
    return str(running.with_name((GUI_NAME if gui else CLI_NAME) + running.suffix))


def worker_command() -> tuple[str, ...]:
    """How the tray starts its engine child: this interpreter's ``-m desktop.proc.worker``,
    or the packaged executable's worker switch."""
    if is_frozen():
        return (frozen_executable(gui=False), WORKER_SWITCH)
    return (sys.executable, "-m", "desktop.proc.worker")


def app_version() -> str:
    """The installed market-sync's version (the package's own metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("market-sync")
    except PackageNotFoundError:  # run from sources that were never installed
        return "unknown"
