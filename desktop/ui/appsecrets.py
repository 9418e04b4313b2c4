"""The tray's "App secrets…" and "Set today's access token…" (issue 11).

Both write SSM SecureString parameters under ``/market-sync/<stack>/app-env/`` through
the worker (shared/appsecrets.py): the tray lists the *names* stored, and sends a typed
value once, on the child's stdin. A stored value is never read, so never shown; the
value field is a password field and is cleared after each save.

"Set today's access token…" writes ``KITE_ACCESS_TOKEN``; where the app has its own
login page (``[app] login_path``), it opens that page at the instance's current
address instead — the app then stores the token itself.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.proc.protocol import AppSecretChange, AppSecretNames
from desktop.ui import services
from desktop.ui.jobs import BaseJob, JobFailure
from desktop.ui.runner import Runner
from shared.appsecrets import ACCESS_TOKEN
from shared.config import Config

logger = logging.getLogger(__name__)

_NEVER_SHOWN = "new value (stored values are never shown)"


class _SecretForm(QDialog):
    """What both dialogs share: a status line and one worker call at a time."""

    changed = Signal(object)  # AppSecretChange, once AWS has it

    def __init__(self, config: Config, runner: Runner, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.config, self.runner = config, runner
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.value = QLineEdit()
        self.value.setEchoMode(QLineEdit.EchoMode.Password)
        self.value.setPlaceholderText(_NEVER_SHOWN)

    def _store(self, name: str) -> BaseJob | None:
        value = self.value.text()
        if not value.strip():
            self.status.setText("Type or paste the value first.")
            return None
        self.value.clear()  # the typed value lives no longer than it must
        self.status.setText(f"Storing {name}…")
        job = self.runner.spawn(services.set_app_secret(self.config, name, value.strip()))
        job.succeeded.connect(self._stored)
        job.failed.connect(self._failed)
        return job

    @Slot(object)
    def _stored(self, change: AppSecretChange) -> None:
        verb = "Deleted" if change.deleted else "Stored"
        self.status.setText(f"{verb} {change.name}. The instance reads it at its next start.")
        self.changed.emit(change)

    @Slot(object)
    def _failed(self, failure: JobFailure) -> None:
        self.status.setText(f"✗ {failure}")


class AppSecretsDialog(_SecretForm):
    """Names of the stored secrets; add or replace one (name + value), or delete one."""

    def __init__(self, config: Config, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(config, runner, parent)
        self.setWindowTitle("App secrets — market-sync")
        self.setMinimumWidth(480)
        self.names = QListWidget()
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. KITE_API_SECRET")
        self.save = QPushButton("Save")
        self.delete = QPushButton("Delete selected")
        note = QLabel("Each entry of your app's .env, kept encrypted in AWS (SSM Parameter "
                      "Store). You can replace or delete a value; nobody can read it back "
                      "here.")
        note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Value", self.value)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save)
        buttons.addWidget(self.delete)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.names)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self.names.currentTextChanged.connect(self.name.setText)
        self.save.clicked.connect(self.store)
        self.delete.clicked.connect(self.remove)
        self.changed.connect(self.refresh)

    @Slot()
    def refresh(self) -> BaseJob:
        job = self.runner.spawn(services.list_app_secrets(self.config))
        job.succeeded.connect(self._show_names)
        job.failed.connect(self._failed)
        return job

    @Slot(object)
    def _show_names(self, names: AppSecretNames) -> None:
        self.names.clear()
        self.names.addItems(list(names.names))
        if not names.names:
            self.status.setText("No secrets stored yet.")

    @Slot()
    def store(self) -> BaseJob | None:
        name = self.name.text().strip().upper()
        if not name:
            self.status.setText("Type the name first, e.g. KITE_API_SECRET.")
            return None
        return self._store(name)

    @Slot()
    def remove(self) -> BaseJob | None:
        if self.names.currentRow() < 0:
            self.status.setText("Select a name to delete.")
            return None
        name = self.names.currentItem().text()
        job = self.runner.spawn(services.delete_app_secret(self.config, name))
        job.succeeded.connect(self._stored)
        job.failed.connect(self._failed)
        return job


class AccessTokenDialog(_SecretForm):
    """Today's KiteConnect access token, written to ``KITE_ACCESS_TOKEN``."""

    def __init__(self, config: Config, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(config, runner, parent)
        self.setWindowTitle("Today's access token — market-sync")
        self.setMinimumWidth(420)
        self.save = QPushButton("Save")
        note = QLabel("KiteConnect's access token expires every day. Paste today's token: it "
                      f"is stored encrypted as {ACCESS_TOKEN} and never shown again.")
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.value)
        layout.addWidget(self.save)
        layout.addWidget(self.status)
        self.save.clicked.connect(self.store)
        self.value.returnPressed.connect(self.store)

    @Slot()
    def store(self) -> BaseJob | None:
        return self._store(ACCESS_TOKEN)


def login_page(config: Config, public_ip: str | None) -> QUrl | None:
    """The app's own login page at the instance's current address, where the app has one."""
    path = config.app.login_path
    if not path or not public_ip:
        return None
    return QUrl(f"http://{public_ip}:{config.app.port}/{path.lstrip('/')}")


def open_login_page(url: QUrl) -> bool:
    logger.info("opening the app's login page %s", url.toString())
    return QDesktopServices.openUrl(url)
