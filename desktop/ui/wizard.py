"""The first-run wizard: from an AWS account to a provisioned stack and a laptop config.

Pages: AWS credentials → where and what (region, public address, e-mail,
app, instance type with its estimated monthly cost) → the local database
(host, port, database, user, password, with a Test button) → its tables (key,
watermark and mode proposed, editable) → a summary → provisioning with live
progress; the agent gets exactly the tables chosen, and so does the laptop config. Answers are saved
(without secrets) under the platform's state folder after every page and on
close, so the wizard resumes where it was. Work that waits on the network
runs on :class:`desktop.ui.runner.Runner`; only the UI thread touches widgets.

Standalone: ``python -m desktop.ui.wizard``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWidget,
    QWizard,
    QWizardPage,
)

from desktop.ui.jobs import JobFailure
from desktop.ui.runner import Runner
from desktop.ui.settings import region_box
from desktop.ui.wizard_db import DatabasePage, TablesPage
from desktop.ui.wizard_deps import (
    AwsChoice,
    WizardDeps,
    WizardHost,
    default_deps,
    form,
    run_provisioning,
)
from desktop.ui.wizard_provision import ProvisionPage, SummaryPage
from installer import template as tpl
from installer.cost import calendar_year, estimate
from installer.provision import ProvisionRequest, trader_cidr
from installer.wizard_state import WizardState
from shared.calendar import TradingCalendar, today_ist
from shared.errors import MarketSyncError
from shared.secrets import AwsKeys
from shared.validate import check_region

__all__ = ["AwsChoice", "SetupWizard", "WizardDeps", "run_provisioning", "run_wizard"]

logger = logging.getLogger(__name__)


class CredentialsPage(QWizardPage):
    def __init__(self, wizard: WizardHost) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("AWS credentials")
        self.setSubTitle("Administrator credentials, for setting up only: a profile from your "
                         "AWS configuration, or an access key. The key is used for this setup "
                         "and never stored; afterwards this laptop uses its own, weaker "
                         "operator key (kept in the OS keyring).")
        self.use_profile = QRadioButton("A profile from the AWS configuration")
        self.use_keys = QRadioButton("An administrator access key (used once, never stored)")
        group = QButtonGroup(self)
        group.addButton(self.use_profile)
        group.addButton(self.use_keys)
        self.profile = QComboBox()
        self.profile.setEditable(True)
        self.key_id = QLineEdit()
        self.key_id.setPlaceholderText("AKIA…")
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout = form(self)
        layout.addRow(self.use_profile)
        layout.addRow("Profile:", self.profile)
        layout.addRow(self.use_keys)
        layout.addRow("Access key ID:", self.key_id)
        layout.addRow("Secret access key:", self.secret)
        layout.addRow(self.message)
        self.use_profile.toggled.connect(self._enable)
        self.use_keys.toggled.connect(self._enable)

    def initializePage(self) -> None:
        state = self.w.state
        self.profile.clear()
        try:
            self.profile.addItems(self.w.deps.profiles())
        except Exception as exc:  # a broken ~/.aws/config must not stop the wizard
            self.message.setText(f"Could not read the AWS profiles: {exc}")
        if state.profile:
            self.profile.setCurrentText(state.profile)
        (self.use_keys if state.credentials == "keys" else self.use_profile).setChecked(True)
        self._enable()

    @Slot()
    def _enable(self) -> None:
        keys = self.use_keys.isChecked()
        self.profile.setEnabled(not keys)
        self.key_id.setEnabled(keys)
        self.secret.setEnabled(keys)

    def validatePage(self) -> bool:
        if self.use_keys.isChecked():
            key_id, secret = self.key_id.text().strip(), self.secret.text().strip()
            if key_id and secret:
                self.w.admin_keys = AwsKeys(key_id, secret)  # memory only, this run only
                self.secret.clear()
            elif self.w.admin_keys is None:
                self.message.setText("Enter the access key ID and the secret access key.")
                return False
            self.w.update_state(credentials="keys", profile="")
        else:
            if not self.profile.currentText().strip():
                self.message.setText("Choose a profile.")
                return False
            self.w.update_state(credentials="profile", profile=self.profile.currentText().strip())
        return True


class StackPage(QWizardPage):
    def __init__(self, wizard: WizardHost) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Your stack")
        self.setSubTitle("Where it runs, who may reach it, where alarms go, and what it costs.")
        self.region = region_box("ap-south-1")
        self.ip = QLineEdit()
        self.detect = QPushButton("Detect")
        self.email = QLineEdit()
        self.app_source = QLineEdit()
        self.app_source.setPlaceholderText("https://github.com/you/market-app.git or s3://…")
        self.instance_type = QComboBox()
        self.instance_type.addItems(list(tpl.INSTANCE_TYPES))
        self.cost = QLabel()
        self.cost.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)
        ip_row = QHBoxLayout()
        ip_row.addWidget(self.ip)
        ip_row.addWidget(self.detect)
        holder = QWidget()
        holder.setLayout(ip_row)
        layout = form(self)
        layout.addRow("Region:", self.region)
        layout.addRow("Your public IP:", holder)
        layout.addRow("E-mail for alarms:", self.email)
        layout.addRow("Market app:", self.app_source)
        layout.addRow("Instance type:", self.instance_type)
        layout.addRow(self.cost)
        layout.addRow(self.message)
        self.detect.clicked.connect(self.detect_ip)
        self.instance_type.currentTextChanged.connect(self.show_cost)
        self._calendar = TradingCalendar.load()

    def initializePage(self) -> None:
        state = self.w.state
        self.region.setCurrentText(state.region)
        self.ip.setText(state.public_ip)
        self.email.setText(state.email)
        self.app_source.setText(state.app_source)
        self.instance_type.setCurrentText(state.instance_type)
        self.show_cost(self.instance_type.currentText())
        if not state.public_ip:
            self.detect_ip()

    @Slot()
    def detect_ip(self) -> None:
        self.detect.setEnabled(False)
        self.message.setText("Detecting your public address…")
        detect = self.w.deps.detect_ip
        job = self.w.runner.run("detect-ip", lambda _ctx: detect())
        job.succeeded.connect(self._detected)
        job.failed.connect(self._detect_failed)

    @Slot(object)
    def _detected(self, ip: object) -> None:
        self.detect.setEnabled(True)
        if not self.ip.text().strip():
            self.ip.setText(str(ip))
        self.message.setText(f"Detected {ip}; change it if it is not the address your laptop "
                             "uses.")

    @Slot(object)
    def _detect_failed(self, failure: JobFailure) -> None:
        self.detect.setEnabled(True)
        reason = failure.message.rstrip(".")
        self.message.setText(f"Could not detect your public address ({reason}). Type it in: "
                             "search the web for \"what is my IP\" to find it.")

    @Slot(str)
    def show_cost(self, instance_type: str) -> None:
        year = calendar_year(self._calendar, today_ist())
        est = estimate(instance_type, self._calendar, year)
        self.cost.setText(f"Estimated ${est.total_usd:.2f} a month for {instance_type} "
                          f"(instance {est.instance_hours_per_month:.0f} h on "
                          f"{est.trading_days_per_month:.1f} trading days, disk, S3, transfer, "
                          "alarms; list prices — an estimate).")

    def validatePage(self) -> bool:
        problem = check_region(self.region.currentText().strip())
        if problem is not None:
            self.message.setText(f"Region: {problem}.")
            return False
        try:
            trader_cidr(self.ip.text())
        except MarketSyncError as exc:
            self.message.setText(exc.message)
            return False
        request = ProvisionRequest(alert_email=self.email.text().strip(),
                                   trader_ip=self.ip.text().strip(),
                                   app_source=self.app_source.text().strip(),
                                   instance_type=self.instance_type.currentText())
        try:
            request.validate()
        except MarketSyncError as exc:
            self.message.setText(exc.message)
            return False
        if not self.app_source.text().strip():
            self.message.setText("Say where the market app comes from.")
            return False
        self.w.update_state(region=self.region.currentText().strip(),
                            public_ip=self.ip.text().strip(), email=self.email.text().strip(),
                            app_source=self.app_source.text().strip(),
                            instance_type=self.instance_type.currentText())
        return True


class SetupWizard(QWizard):
    """The first-run wizard. Signals: see :class:`ProvisionPage`."""

    PAGES = ("credentials", "stack", "database", "tables", "summary", "provision")

    def __init__(self, deps: WizardDeps, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.deps = deps
        self.state = WizardState.load(deps.state_dir)
        self.runner = Runner(self)
        self.admin_keys: AwsKeys | None = None  # typed on the first page; never stored
        self.setWindowTitle("Set up market-sync on AWS")
        self.credentials_page = CredentialsPage(self)
        self.stack_page = StackPage(self)
        self.database_page = DatabasePage(self)
        self.tables_page = TablesPage(self)
        self.summary_page = SummaryPage(self)
        self.provision_page = ProvisionPage(self)
        self.password: str | None = None  # the database password typed this session
        for index, page in enumerate((self.credentials_page, self.stack_page,
                                      self.database_page, self.tables_page,
                                      self.summary_page, self.provision_page)):
            self.setPage(index, page)
        self.setStartId(min(max(self.state.page, 0), len(self.PAGES) - 1))
        self.currentIdChanged.connect(self._remember_page)

    def update_state(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        self.state.save(self.deps.state_dir)

    @Slot(int)
    def _remember_page(self, page: int) -> None:
        if page >= 0:
            self.update_state(page=page)

    def done(self, result: int) -> None:
        self.state.save(self.deps.state_dir)
        self.runner.shutdown(timeout_ms=2000)
        super().done(result)


def run_wizard(app: QApplication, config_path: Path) -> bool:
    """Show the wizard until the trader finishes or closes it; True once provisioned."""
    del app  # the running QApplication; the wizard's dialog loop uses it
    wizard = SetupWizard(default_deps(config_path))
    finished = wizard.exec() == QWizard.DialogCode.Accepted
    return finished and config_path.exists()


def main(argv: list[str] | None = None) -> int:
    from shared.logsetup import configure_cli_logging

    configure_cli_logging(0)
    app = QApplication.instance() or QApplication(argv or sys.argv)
    wizard = SetupWizard(default_deps())
    wizard.show()
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
