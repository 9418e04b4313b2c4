"""Notifications, honouring the trader's level (all / errors only / off)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QSystemTrayIcon

from desktop.ui.controller import Notice
from shared.config import NotificationLevel


def passes(notice: Notice, level: NotificationLevel) -> bool:
    if level is NotificationLevel.OFF:
        return False
    return level is NotificationLevel.ALL or notice.error


class Notifier(QObject):
    """Shows a notice as a tray bubble, or through ``fallback`` where there is no tray."""

    def __init__(self, level: NotificationLevel, tray: QSystemTrayIcon | None,
                 fallback: Callable[[Notice], None] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.level, self.tray, self.fallback = level, tray, fallback
        self.shown: list[Notice] = []

    @Slot(object)
    def show(self, notice: Notice) -> None:
        if not passes(notice, self.level):
            return
        self.shown.append(notice)
        if self.tray is not None and self.tray.isVisible():
            icon = QSystemTrayIcon.MessageIcon.Warning if notice.error \
                else QSystemTrayIcon.MessageIcon.Information
            self.tray.showMessage(notice.title, notice.message, icon, 8000)
        elif self.fallback is not None:
            self.fallback(notice)
