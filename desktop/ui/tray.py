"""The tray icon and its menu, rebuilt each time it opens (Vorta's tray_menu.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop.ui.actions import ShellActions
from desktop.ui.icons import state_icon
from desktop.ui.viewmodel import TrayState, TrayView

if TYPE_CHECKING:
    from desktop.ui.controller import AppController


class TrayMenu(QMenu):
    """The menu: a fresh set of actions from the controller's view on every aboutToShow."""

    def __init__(self, controller: AppController, shell: ShellActions) -> None:
        super().__init__()
        self.controller, self.shell = controller, shell
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    @Slot()
    def rebuild(self) -> None:
        self.clear()
        view = self.controller.view
        c, s = self.controller, self.shell
        self._info(view.state_line, state_icon(view.state))
        for line in (view.health_line, *view.schedule_lines):
            if line:
                self._info(line)
        self.addSeparator()
        start = self.addAction("Start instance", c.start_instance)
        start.setEnabled(view.can_start)
        stop = self.addAction("Stop instance", c.stop_instance)
        stop.setEnabled(view.can_stop)
        self.addSeparator()
        if view.syncing:
            done = f" {view.progress:.0%}" if view.progress is not None else ""
            self.addAction(f"Syncing…{done}", s.show_progress)
            self.addAction("Cancel sync", c.cancel_sync)
        else:
            pending = "" if view.pending is None else f" ({view.pending} pending)"
            self.addAction(f"Sync now{pending}", s.sync_now)
        last = self.addAction(view.last_sync_line, s.show_progress)
        last.setEnabled(c.last_sync is not None)
        for line in view.attention[:4]:
            self._info(line, state_icon(TrayState.ATTENTION))
        self.addSeparator()
        self.addAction("Conflicts…", s.show_conflicts)
        self.addAction("History…", s.show_history)
        self.addAction("App secrets…", s.show_app_secrets)
        self.addAction("Set today's access token…", s.set_access_token)
        self.addAction("Settings…", s.show_settings)
        self.addAction("Status window…", s.show_status)
        self.addAction("Open logs", s.open_logs)
        self.addSeparator()
        self.addAction("Quit", s.quit)

    def _info(self, text: str, icon: QIcon | None = None) -> QAction:
        action = self.addAction(text)
        if icon is not None:
            action.setIcon(icon)
        action.setEnabled(False)
        return action

    def texts(self) -> list[str]:
        """The visible entries, separators as "-" (what the tests read)."""
        return ["-" if a.isSeparator() else a.text() for a in self.actions()]


class TrayIcon(QObject):
    """The system tray icon: its picture and tooltip follow the controller's view."""

    def __init__(self, controller: AppController, shell: ShellActions) -> None:
        super().__init__(controller)
        self.controller = controller
        self.menu = TrayMenu(controller, shell)
        self.icon = QSystemTrayIcon(self)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.shell = shell
        self._key: tuple[TrayState, int] | None = None
        controller.viewChanged.connect(self.show_view)
        self.show_view(controller.view)

    @Slot(object)
    def show_view(self, view: TrayView) -> None:
        step = round(view.progress * 20) if view.progress is not None else -1
        key = (view.state, step)
        if key != self._key:
            self._key = key
            self.icon.setIcon(state_icon(view.state, None if step < 0 else step / 20))
        self.icon.setToolTip(view.tooltip)

    @Slot(QSystemTrayIcon.ActivationReason)
    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger,
                      QSystemTrayIcon.ActivationReason.DoubleClick):
            self.shell.show_status()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    @property
    def state(self) -> TrayState:
        return self._key[0] if self._key else TrayState.UNKNOWN
