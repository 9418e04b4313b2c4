"""The status window: everything the menu says, with buttons. Where the desktop has no
system tray it is the app's main window (and Quit lives here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QCloseEvent, QFont, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.actions import ShellActions
from desktop.ui.icons import COLOURS, state_pixmap
from desktop.ui.viewmodel import STATE_WORDS, TrayState, TrayView

if TYPE_CHECKING:
    from desktop.ui.controller import AppController, Notice


class StatusWindow(QWidget):
    def __init__(self, controller: AppController, shell: ShellActions, fallback: bool) -> None:
        super().__init__()
        self.controller, self.shell, self.fallback = controller, shell, fallback
        title = "market-sync"
        if shell.demo:
            title += " (demo)"
        self.setWindowTitle(title)
        self.setMinimumWidth(480)
        self.picture = QLabel()
        self.headline = QLabel()
        font = QFont(self.headline.font())
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.headline.setFont(font)
        self.state_line = QLabel()
        self.state_line.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.picture)
        words = QVBoxLayout()
        words.addWidget(self.headline)
        words.addWidget(self.state_line)
        top.addLayout(words, 1)

        self.facts = QGridLayout()
        self.fact_labels: dict[str, QLabel] = {}
        for row, name in enumerate(("App", "Schedule", "Backup", "Pending", "Last sync")):
            title_label = QLabel(name)
            title_label.setStyleSheet("color: palette(mid)")
            value = QLabel()
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.facts.addWidget(title_label, row, 0, Qt.AlignmentFlag.AlignTop)
            self.facts.addWidget(value, row, 1)
            self.fact_labels[name] = value
        self.facts.setColumnStretch(1, 1)
        self.attention = QLabel()
        self.attention.setWordWrap(True)
        self.attention.setFrameShape(QFrame.Shape.StyledPanel)
        self.attention.setStyleSheet(
            f"QLabel {{ border: 1px solid {COLOURS[TrayState.ATTENTION]}; border-radius: 4px; "
            "padding: 6px; }")
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)

        self.start_button = QPushButton("Start instance")
        self.stop_button = QPushButton("Stop instance")
        self.sync_button = QPushButton("Sync now")
        self.cancel_button = QPushButton("Cancel sync")
        self.start_button.clicked.connect(controller.start_instance)
        self.stop_button.clicked.connect(controller.stop_instance)
        self.sync_button.clicked.connect(shell.sync_now)
        self.cancel_button.clicked.connect(controller.cancel_sync)
        actions = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.sync_button,
                       self.cancel_button):
            actions.addWidget(button)
        more = QHBoxLayout()
        for text, slot in (("Conflicts…", shell.show_conflicts),
                           ("History…", shell.show_history),
                           ("Settings…", shell.show_settings),
                           ("Open logs", shell.open_logs)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            more.addWidget(button)
        more.addStretch(1)
        self.quit_button = QPushButton("Quit" if fallback else "Close")
        self.quit_button.clicked.connect(shell.quit if fallback else self.close)
        more.addWidget(self.quit_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addLayout(self.facts)
        layout.addWidget(self.attention)
        layout.addLayout(actions)
        layout.addLayout(more)
        controller.viewChanged.connect(self.show_view)
        self.show_view(controller.view)

    @Slot(object)
    def show_view(self, view: TrayView) -> None:
        self.picture.setPixmap(state_pixmap(view.state, 56, view.progress))
        self.headline.setText(STATE_WORDS[view.state].capitalize())
        self.state_line.setText(view.state_line)
        facts = self.fact_labels
        facts["App"].setText(view.health_line.removeprefix("App ") or "—")
        facts["Schedule"].setText("\n".join(view.schedule_lines) or "—")
        facts["Backup"].setText(view.backup_line.removeprefix("Newest backup: ") or "—")
        facts["Pending"].setText(view.pending_line or "—")
        facts["Last sync"].setText(view.last_sync_line.removeprefix("Last sync: ")
                                   .removeprefix("Last sync ") or "—")
        self.attention.setText("\n".join(f"⚠ {line}" for line in view.attention))
        self.attention.setVisible(bool(view.attention))
        self.start_button.setEnabled(view.can_start)
        self.stop_button.setEnabled(view.can_stop)
        self.sync_button.setEnabled(not view.syncing)
        pending_text = "" if view.pending is None else f" ({view.pending} pending)"
        self.sync_button.setText("Cancelling…" if view.cancelling else
                                 f"Syncing… {view.progress or 0:.0%}" if view.syncing
                                 else f"Sync now{pending_text}")
        self.cancel_button.setVisible(view.syncing and not view.cancelling)
        self.fit()

    def fit(self) -> None:
        """Grow to what the wrapped lines need at this width: nothing drawn over another."""
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        need = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() \
            else layout.totalSizeHint().height()
        if self.height() < need:
            self.resize(self.width(), need)

    @Slot(object)
    def show_notice(self, notice: Notice) -> None:
        """Where there is no tray to show a bubble, notices appear here."""
        self.banner.setText(f"<b>{notice.title}</b>: {notice.message}")
        self.banner.setVisible(True)
        self.fit()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self.fit()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.fallback:
            self.shell.quit()
        event.accept()
