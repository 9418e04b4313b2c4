"""The app's windows and the actions the menu and the status window share.

Windows are made on first use (the idle tray builds none of them); their data
is loaded through the runner, never on the UI thread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon, QWidget

from desktop.ui import services
from desktop.ui.controller import AppController
from desktop.ui.jobs import BaseJob, JobFailure

if TYPE_CHECKING:
    from desktop.system.autostart import Autostart
    from desktop.ui.appsecrets import AccessTokenDialog, AppSecretsDialog
    from desktop.ui.conflicts import ConflictsWindow
    from desktop.ui.history import HistoryWindow
    from desktop.ui.notify import Notifier
    from desktop.ui.progress import SyncWindow
    from desktop.ui.settings import SettingsDialog
    from desktop.ui.statuswindow import StatusWindow
    from desktop.ui.tray import TrayIcon

logger = logging.getLogger(__name__)


class Shell(QObject):
    """Owns the tray (or the fallback status window) and every other window."""

    def __init__(self, controller: AppController, *, log_dir: Path | None = None,
                 demo: bool = False, use_tray: bool | None = None,
                 autostart: Autostart | None = None) -> None:
        super().__init__(controller)
        self.controller, self.log_dir, self.demo = controller, log_dir, demo
        self.autostart = autostart
        if use_tray is None:
            use_tray = QSystemTrayIcon.isSystemTrayAvailable()
        self.use_tray = use_tray
        self.tray: TrayIcon | None = None
        self.status_window: StatusWindow | None = None
        self.sync_window: SyncWindow | None = None
        self.conflicts_window: ConflictsWindow | None = None
        self.history_window: HistoryWindow | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.secret_dialogs: list[AppSecretsDialog | AccessTokenDialog] = []
        self.quitting = False
        self.logs_box: QMessageBox | None = None
        from desktop.ui.notify import Notifier

        if use_tray:
            from desktop.ui.tray import TrayIcon

            self.tray = TrayIcon(controller, self)
            self.tray.show()
        self.notifier: Notifier = Notifier(
            controller.config.ui.notifications, self.tray.icon if self.tray else None,
            self._notice_fallback, self)
        controller.notice.connect(self.notifier.show)
        controller.syncStarted.connect(self._sync_started)
        controller.stopNeedsForce.connect(self._confirm_force_stop)
        controller.message.connect(self._message)
        controller.configChanged.connect(self._config_changed)
        controller.syncFinished.connect(self._sync_finished)
        if not use_tray:
            self.show_status()

    # -- windows ---------------------------------------------------------------------------
    @staticmethod
    def _raise(window: QWidget) -> None:
        window.show()
        window.setWindowState(window.windowState() & ~window.windowState().WindowMinimized)
        window.raise_()
        window.activateWindow()

    @Slot()
    def show_status(self) -> StatusWindow:
        if self.status_window is None:
            from desktop.ui.statuswindow import StatusWindow

            self.status_window = StatusWindow(self.controller, self, fallback=not self.use_tray)
        self._raise(self.status_window)
        return self.status_window

    def _sync_window(self) -> SyncWindow:
        if self.sync_window is None:
            from desktop.ui.progress import SyncWindow

            self.sync_window = SyncWindow()
            self.sync_window.conflictsRequested.connect(self.show_conflicts)
        return self.sync_window

    @Slot()
    def sync_now(self) -> None:
        self.controller.sync_now()
        self.show_progress()

    @Slot(object)
    def _sync_started(self, job: BaseJob) -> None:
        self._sync_window().follow(job)

    @Slot()
    def show_progress(self) -> SyncWindow:
        window = self._sync_window()
        self._raise(window)
        return window

    @Slot()
    def show_conflicts(self) -> ConflictsWindow:
        if self.conflicts_window is None:
            from desktop.ui.conflicts import ConflictsWindow

            self.conflicts_window = ConflictsWindow()
            self.conflicts_window.refreshRequested.connect(self.load_conflicts)
            self.conflicts_window.restoreRequested.connect(self.restore_conflicts)
        self.load_conflicts()
        self.controller.conflicts_opened()
        self._raise(self.conflicts_window)
        return self.conflicts_window

    @Slot()
    def load_conflicts(self) -> BaseJob:
        assert self.conflicts_window is not None
        job = self.controller.runner.spawn(services.load_conflicts(self.controller.config))
        job.succeeded.connect(self.conflicts_window.show_conflicts)
        job.failed.connect(self.conflicts_window.show_failure)
        return job

    @Slot(tuple)
    def restore_conflicts(self, ids: tuple[int, ...]) -> BaseJob:
        assert self.conflicts_window is not None
        job = self.controller.runner.spawn(services.restore_conflicts(self.controller.config,
                                                                      ids))
        job.succeeded.connect(self.load_conflicts)
        job.failed.connect(self.conflicts_window.show_failure)
        job.failed.connect(self.load_conflicts)
        return job

    @Slot()
    def show_history(self) -> HistoryWindow:
        if self.history_window is None:
            from desktop.ui.history import HistoryWindow

            self.history_window = HistoryWindow()
            self.history_window.refreshRequested.connect(self.load_history)
        self.load_history()
        self._raise(self.history_window)
        return self.history_window

    @Slot()
    def load_history(self) -> BaseJob:
        assert self.history_window is not None
        job = self.controller.runner.spawn(services.load_history(self.controller.config))
        job.succeeded.connect(self.history_window.show_history)
        job.failed.connect(self.history_window.show_failure)
        return job

    @Slot()
    def show_settings(self) -> SettingsDialog:
        if self.settings_dialog is None:
            from desktop.ui.settings import SettingsDialog

            self.settings_dialog = SettingsDialog(self.controller.config, self.controller.runner,
                                                  self.autostart)
            self.settings_dialog.saved.connect(self.controller.set_config)
            self.settings_dialog.finished.connect(self._settings_closed)
        self._raise(self.settings_dialog)
        return self.settings_dialog

    @Slot()
    def show_app_secrets(self) -> AppSecretsDialog:
        from desktop.ui.appsecrets import AppSecretsDialog

        dialog = AppSecretsDialog(self.controller.config, self.controller.runner)
        self._keep(dialog)
        dialog.refresh()
        return dialog

    @Slot()
    def set_access_token(self) -> AccessTokenDialog | None:
        """The app's login page at the instance's address where it has one, else the
        token dialog."""
        from desktop.ui import appsecrets

        instance = self.controller.snapshot.instance if self.controller.snapshot else None
        url = appsecrets.login_page(self.controller.config,
                                    instance.public_ip if instance else None)
        if url is not None:
            appsecrets.open_login_page(url)
            return None
        dialog = appsecrets.AccessTokenDialog(self.controller.config, self.controller.runner)
        self._keep(dialog)
        return dialog

    def _keep(self, dialog: AppSecretsDialog | AccessTokenDialog) -> None:
        self.secret_dialogs.append(dialog)
        dialog.finished.connect(lambda _: self._forget_dialog(dialog))
        self._raise(dialog)

    def _forget_dialog(self, dialog: AppSecretsDialog | AccessTokenDialog) -> None:
        if dialog in self.secret_dialogs:
            self.secret_dialogs.remove(dialog)
            dialog.deleteLater()

    @Slot(int)
    def _settings_closed(self, _result: int) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.deleteLater()
            self.settings_dialog = None

    @Slot()
    def open_logs(self) -> bool:
        """Show the log folder in the file manager; where none opens, say where it is."""
        from shared.paths import AppPaths

        folder = self.log_dir or AppPaths.default().log_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._message(f"The logs belong in {folder}, which cannot be made: "
                          f"{exc.strerror or exc}.", True)
            return False
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            return True
        box = QMessageBox(QMessageBox.Icon.Information, "Logs — market-sync",
                          f"No file manager opened. The logs are in\n{folder}\n"
                          "(market-sync.log is the newest).", QMessageBox.StandardButton.Ok,
                          self.status_window)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.logs_box = box
        return False

    # -- reactions -------------------------------------------------------------------------
    @Slot(object)
    def _sync_finished(self, _outcome: object) -> None:
        """What the open windows show may have changed: load it again."""
        if self.conflicts_window is not None and self.conflicts_window.isVisible():
            self.load_conflicts()
        if self.history_window is not None and self.history_window.isVisible():
            self.load_history()

    @Slot(object)
    def _config_changed(self, config: object) -> None:
        from shared.config import Config

        if isinstance(config, Config):
            self.notifier.level = config.ui.notifications

    @Slot(str)
    def _confirm_force_stop(self, reason: str) -> None:
        answer = QMessageBox.question(
            self.status_window, "Stop during market hours?",
            f"{reason}\n\nStop the instance anyway? The collector misses the ticks until it "
            "starts again.")
        if answer == QMessageBox.StandardButton.Yes:
            self.controller.force_stop_instance()

    @Slot(str, bool)
    def _message(self, text: str, error: bool) -> None:
        from desktop.ui.controller import Notice

        self.notifier.show(Notice("message", "market-sync", text, error=error))

    def _notice_fallback(self, notice: object) -> None:
        from desktop.ui.controller import Notice

        if isinstance(notice, Notice):
            self.show_status().show_notice(notice)

    def activate(self) -> None:
        """A second launch asked us to come forward."""
        self.show_status()

    @Slot()
    def quit(self) -> None:
        if self.quitting:
            return
        self.quitting = True
        self.controller.shutdown()
        if self.tray is not None:
            self.tray.hide()
        for window in (self.sync_window, self.conflicts_window, self.history_window,
                       self.settings_dialog, self.status_window, *self.secret_dialogs):
            if window is not None:
                window.close()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    def dispose(self) -> None:
        """Tear everything down now, in order, not whenever the interpreter gets to it:
        the children ended (cancelled, waited for, killed if need be), the tray hidden,
        every window and the controller deleted while the QApplication still exists."""
        from PySide6.QtCore import QCoreApplication, QEvent

        self.quitting = True
        self.controller.shutdown()
        if self.tray is not None:
            self.tray.hide()
        for window in (self.sync_window, self.conflicts_window, self.history_window,
                       self.settings_dialog, self.status_window, *self.secret_dialogs):
            if window is not None:
                window.hide()
                window.deleteLater()
        self.secret_dialogs.clear()
        self.sync_window = self.conflicts_window = self.history_window = None
        self.settings_dialog, self.status_window = None, None
        self.controller.deleteLater()  # the shell, the tray and the runner are its children
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)

    @Slot()
    def on_failure(self, failure: JobFailure) -> None:
        logger.warning("%s", failure)
