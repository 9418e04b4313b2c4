"""``market-sync tray``: the GUI entry point."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from desktop.ui.controller import AppController
from desktop.ui.icons import state_icon
from desktop.ui.refcounts import guard_singletons
from desktop.ui.shell import Shell
from desktop.ui.single import SingleInstance, server_name
from desktop.ui.viewmodel import TrayState
from shared.config import Config

logger = logging.getLogger(__name__)


def application() -> QApplication:
    guard_singletons()  # before anything counts on them (see desktop/ui/refcounts.py)
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName("market-sync")
    app.setApplicationDisplayName("market-sync")
    app.setDesktopFileName("market-sync")
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(QIcon(state_icon(TrayState.HEALTHY)))
    return app


def start_shell(config: Config, *, demo: bool = False, log_dir: Path | None = None,
                use_tray: bool | None = None) -> Shell:
    """Controller + tray (or the fallback window), first poll queued; no event loop."""
    controller = AppController(config)
    shell = Shell(controller, log_dir=log_dir, demo=demo, use_tray=use_tray)
    QTimer.singleShot(0, controller.poll)
    return shell


def run_tray(config: Config, *, demo: bool = False) -> int:
    """Run the tray until Quit. A second launch brings this one's window forward."""
    from shared.logsetup import configure_file_logging
    from shared.paths import AppPaths

    log_dir = AppPaths.default().log_dir
    configure_file_logging(log_dir)
    app = application()
    single = SingleInstance(server_name(str(config.path)))
    if not single.claim():
        logger.info("market-sync is already running; asked it to show its window")
        return 0
    shell = start_shell(config, demo=demo, log_dir=log_dir)
    single.activated.connect(shell.activate)
    if demo:
        shell.show_status()
    # Ctrl+C in a terminal quits cleanly (Python sees the signal between timer ticks).
    signal.signal(signal.SIGINT, lambda *_: shell.quit())
    heartbeat = QTimer(shell)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(500)
    logger.info("tray started (config %s, tray %s)", config.path, shell.use_tray)
    try:
        return app.exec()
    finally:
        heartbeat.stop()
        single.release()
        shell.dispose()  # children ended, windows and tray deleted before the interpreter exits
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_first_run(path: Path) -> int:
    """No configuration yet: the first-run wizard, then the tray on what it wrote."""
    from shared.config import load_config

    app = application()
    from desktop.ui.wizard import run_wizard

    if not run_wizard(app, path):
        return 1
    return run_tray(load_config(path))
