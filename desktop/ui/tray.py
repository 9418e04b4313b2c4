"""The tray icon and its menu, rebuilt each time it opens (Vorta's tray_menu.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop.ui.actions import ShellActions
from desktop.ui.icons import state_icon
from desktop.ui.viewmodel import TrayState, TrayView

if TYPE_CHECKING:
    from desktop.ui.controller import AppController


MENU_TEXT_WIDTH = 420  # px: longer entries are elided; the tooltip has the whole line
MENU_MAX_WIDTH = 520  # px: what the tests hold the menu to, icons and margins included


class TrayMenu(QMenu):
    """The menu: a fresh set of actions from the controller's view on every aboutToShow.

    Entries never grow the menu past :data:`MENU_TEXT_WIDTH`: a long error is elided
    with the full sentence in the entry's tooltip (and in the status window).
    """

    def __init__(self, controller: AppController, shell: ShellActions) -> None:
        super().__init__()
        self.controller, self.shell = controller, shell
        self.setToolTipsVisible(True)
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
        self._entry("Start instance", c.start_instance).setEnabled(view.can_start)
        self._entry("Stop instance", c.stop_instance).setEnabled(view.can_stop)
        self.addSeparator()
        if view.syncing and view.cancelling:
            self._entry("Cancelling sync…", s.show_progress)
        elif view.syncing:
            done = f" {view.progress:.0%}" if view.progress is not None else ""
            self._entry(f"Syncing…{done}", s.show_progress)
            self._entry("Cancel sync", c.cancel_sync)
        else:
            pending = "" if view.pending is None else f" ({view.pending} pending)"
            self._entry(f"Sync now{pending}", s.sync_now)
        last = self._entry(view.last_sync_line, s.show_progress)
        last.setEnabled(c.last_sync is not None)
        for line in view.attention[:4]:
            self._info(line, state_icon(TrayState.ATTENTION))
        if len(view.attention) > 4:
            self._info(f"… {len(view.attention) - 4} more in the status window")
        self.addSeparator()
        self._entry("Conflicts…", s.show_conflicts)
        self._entry("History…", s.show_history)
        self._entry("App secrets…", s.show_app_secrets)
        self._entry("Set today's access token…", s.set_access_token)
        self._entry("Settings…", s.show_settings)
        self._entry("Status window…", s.show_status)
        self._entry("Open logs", s.open_logs)
        self.addSeparator()
        self._entry("Quit", s.quit)

    def _entry(self, text: str, slot: Callable[[], object] | None = None) -> QAction:
        shown = self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight,
                                              MENU_TEXT_WIDTH)
        action = self.addAction(shown.replace("&", "&&"))
        action.setData(text)
        if shown != text:
            action.setToolTip(text)
        if slot is not None:
            action.triggered.connect(slot)
        return action

    def _info(self, text: str, icon: QIcon | None = None) -> QAction:
        action = self._entry(text)
        if icon is not None:
            action.setIcon(icon)
        action.setEnabled(False)
        return action

    def texts(self) -> list[str]:
        """The entries' full texts, separators as "-" (what the tests read)."""
        return ["-" if a.isSeparator() else str(a.data() or a.text()) for a in self.actions()]

    def shown_texts(self) -> list[str]:
        """What the menu draws (elided where too long)."""
        return ["-" if a.isSeparator() else a.text().replace("&&", "&")
                for a in self.actions()]


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
