"""The Settings dialog: AWS, the laptop database (with Test), the keyring password,
the conflict policy, what a sync does when the instance's tables change shape,
notifications and start at login."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui import services
from desktop.ui.configfile import SettingsValues, check_settings, save_settings
from desktop.ui.jobs import JobFailure
from desktop.ui.runner import Runner
from shared.config import Config, ConflictPolicy, NotificationLevel
from shared.errors import MarketSyncError

if TYPE_CHECKING:
    from desktop.system.autostart import Autostart

logger = logging.getLogger(__name__)

POLICY_TEXT = {
    ConflictPolicy.SERVER_WINS: "The instance wins (server-wins)",
    ConflictPolicy.LOCAL_WINS: "The laptop wins (local-wins)",
    ConflictPolicy.ABORT: "Stop the sync (abort)",
}
NOTIFY_TEXT = {
    NotificationLevel.ALL: "All",
    NotificationLevel.ERRORS_ONLY: "Errors and warnings only",
    NotificationLevel.OFF: "Off",
}


def region_box(current: str) -> QComboBox:
    """AWS's regions as a list (botocore's), still typeable for a region newer than it."""
    from shared.validate import aws_regions

    box = QComboBox()
    box.setEditable(True)
    box.addItems(list(aws_regions()))
    box.setCurrentText(current or "ap-south-1")
    return box


class SettingsDialog(QDialog):
    """Edits the config file and the keyring; ``saved`` carries the new Config.

    Signals:
        saved(Config): the file was written and re-read.
    """

    saved = Signal(object)

    def __init__(self, config: Config, runner: Runner, autostart: Autostart | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — market-sync")
        self.setMinimumWidth(560)
        self.config, self.runner = config, runner
        if autostart is None:
            from desktop.system.autostart import autostart_for

            autostart = autostart_for()
        self.autostart = autostart
        values = SettingsValues.from_config(config)

        self.profile = QLineEdit(values.profile)
        self.profile.setPlaceholderText("default credential chain")
        self.region = region_box(values.region)
        self.bucket = QLineEdit(values.bucket)
        self.instance = QLineEdit(values.instance_id)
        self.instance.setPlaceholderText("i-0123456789abcdef0")
        aws = QGroupBox("AWS")
        form = QFormLayout(aws)
        form.addRow("Profile", self.profile)
        form.addRow("Region", self.region)
        form.addRow("Bucket", self.bucket)
        form.addRow("Instance", self.instance)

        self.conninfo = QLineEdit(values.conninfo)
        self.conninfo.setPlaceholderText("host=localhost port=5432 dbname=market user=postgres")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("unchanged (kept in the OS keyring)")
        self.insecure = QCheckBox("Allow a keyring that is not encrypted (plaintext file)")
        self.insecure.setChecked(values.allow_insecure_keyring)
        self.test_button = QPushButton("Test")
        self.test_button.clicked.connect(self.test_database)
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        db = QGroupBox("Laptop database")
        form = QFormLayout(db)
        row = QHBoxLayout()
        row.addWidget(self.conninfo, 1)
        row.addWidget(self.test_button)
        form.addRow("Connection", row)
        form.addRow("Password", self.password)
        form.addRow("", self.insecure)
        form.addRow("", self.test_result)

        self.policy = QComboBox()
        for policy, text in POLICY_TEXT.items():
            self.policy.addItem(text, str(policy))
        self.policy.setCurrentIndex(list(POLICY_TEXT).index(values.policy))
        self.notifications = QComboBox()
        for level, text in NOTIFY_TEXT.items():
            self.notifications.addItem(text, str(level))
        self.notifications.setCurrentIndex(list(NOTIFY_TEXT).index(values.notifications))
        self.login = QCheckBox("Start market-sync when I log in")
        try:
            self.login.setChecked(self.autostart.is_enabled())
        except OSError as exc:
            logger.warning("cannot read the login item: %s", exc)
        # When the instance's tables change shape: off, a sync stops and says what changed.
        self.add_columns = QCheckBox("Add columns the instance added")
        self.add_columns.setChecked(values.add_missing_columns)
        self.keep_dropped = QCheckBox("Keep laptop columns the instance dropped")
        self.keep_dropped.setChecked(values.keep_dropped_columns)
        self.add_columns.setToolTip("The laptop's rows get the value the instance's rows "
                                    "got when the column was added.")
        self.keep_dropped.setToolTip("The laptop keeps the column and its values; rows a "
                                     "sync adds get the column's default.")
        self.schema_note = QLabel("Off: such a sync stops, changes nothing and names the column.")
        behaviour = QGroupBox("Behaviour")
        form = QFormLayout(behaviour)
        form.addRow("When a row differs", self.policy)
        form.addRow("Notifications", self.notifications)
        form.addRow("", self.login)
        form.addRow("Table changes", self.add_columns)
        form.addRow("", self.keep_dropped)
        form.addRow("", self.schema_note)

        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #cf222e")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for box in (aws, db, behaviour):
            layout.addWidget(box)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def values(self) -> SettingsValues:
        return SettingsValues(
            profile=self.profile.text(), region=self.region.currentText(),
            bucket=self.bucket.text(),
            instance_id=self.instance.text(), conninfo=self.conninfo.text(),
            policy=ConflictPolicy(self.policy.currentData()),
            notifications=NotificationLevel(self.notifications.currentData()),
            allow_insecure_keyring=self.insecure.isChecked(),
            add_missing_columns=self.add_columns.isChecked(),
            keep_dropped_columns=self.keep_dropped.isChecked())

    @Slot()
    def test_database(self) -> None:
        conninfo, password = self.conninfo.text(), self.password.text()
        self.test_button.setEnabled(False)
        self.test_result.setText("Connecting…")
        job = self.runner.spawn(services.check_database(self.config, conninfo, password))
        job.succeeded.connect(self._tested)
        job.failed.connect(self._test_failed)

    @Slot(object)
    def _tested(self, check: services.DatabaseCheck) -> None:
        self.test_button.setEnabled(True)
        mark = "✔" if check.ok else "✘"
        self.test_result.setText(f"{mark} {check.message}")

    @Slot(object)
    def _test_failed(self, failure: JobFailure) -> None:
        self.test_button.setEnabled(True)
        self.test_result.setText(f"✘ {failure.message}")

    @Slot()
    def save(self) -> None:
        """Validate, store the password, write the file, switch the login item."""
        from shared.secrets import DATABASE_PASSWORD, SecretStore

        values = self.values()
        problems = check_settings(values)
        if problems:
            labels = {"region": "Region", "bucket": "Bucket", "instance_id": "Instance",
                      "conninfo": "Connection"}
            self.error.setText("Not saved: " + "; ".join(
                f"{labels[name]}: {problem}" for name, problem in problems) + ".")
            return
        try:
            if self.password.text():
                store = SecretStore.default(values.allow_insecure_keyring)
                store.set(DATABASE_PASSWORD, self.password.text())
            config = save_settings(self.config.path, values)
        except MarketSyncError as exc:
            self.error.setText(str(exc))
            return
        try:
            if self.login.isChecked() != self.autostart.is_enabled():
                (self.autostart.enable if self.login.isChecked() else self.autostart.disable)()
        except OSError as exc:
            self.error.setText(f"Saved, but the login item could not be changed: {exc}")
            self.config = config
            self.saved.emit(config)
            return
        self.config = config
        self.password.clear()
        self.saved.emit(config)
        self.accept()
