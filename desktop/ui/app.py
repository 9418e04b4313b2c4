"""``market-sync tray``: the GUI entry point."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop.ui.controller import AppController
from desktop.ui.icons import state_icon
from desktop.ui.refcounts import guard_singletons
from desktop.ui.shell import Shell
from desktop.ui.single import SingleInstance, server_name
from desktop.ui.viewmodel import TrayState
from shared.config import Config
from shared.errors import MarketSyncError

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
    # Ctrl+C in a terminal, SIGTERM (kill, logout) and SIGHUP (the terminal closed) quit
    # cleanly, like Quit (Python sees the signal between timer ticks).
    previous = {signum: signal.signal(signum, lambda *_: shell.quit()) for signum in QUIT_SIGNALS}
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
        for signum, handler in previous.items():
            signal.signal(signum, handler)


QUIT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


def config_error_dialog(path: Path, error: MarketSyncError) -> QMessageBox:
    """The tray cannot start on this config: what is wrong, where, and what to do."""
    box = QMessageBox(QMessageBox.Icon.Critical, "market-sync cannot start",
                      f"The configuration {path} cannot be used.")
    box.setInformativeText(error.message + (f"\n\n→ {error.hint}" if error.hint else ""))
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.setDefaultButton(QMessageBox.StandardButton.Close)
    opener = box.addButton("Open the file", QMessageBox.ButtonRole.ActionRole)
    opener.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))))
    return box


def run_config_error(path: Path, error: MarketSyncError) -> int:
    """Show :func:`config_error_dialog` until closed; exit code 1."""
    logger.error("cannot start: %s", error)
    application()
    config_error_dialog(path, error).exec()
    return 1


def run_first_run(path: Path) -> int:
    """No configuration yet: the first-run wizard, then the tray on what it wrote."""
    from shared.config import load_config

    app = application()
    from desktop.ui.wizard import run_wizard

    if not run_wizard(app, path):
        return 1
    return run_tray(load_config(path))
