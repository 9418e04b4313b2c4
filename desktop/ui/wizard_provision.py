"""The wizard's last pages: a summary of every choice, then provisioning with live
progress (the agent and the laptop config get the same tables)."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWizardPage,
)

from desktop.ui.configfile import write_wizard_choices
from desktop.ui.jobs import JobFailure
from desktop.ui.runner import JobContext
from desktop.ui.wizard_db import MODE_TEXT, table_specs
from desktop.ui.wizard_deps import AwsChoice, WizardHost
from installer.provision import ProvisionProgress, ProvisionRequest, ProvisionResult
from installer.wizard_state import WizardState
from shared.errors import MarketSyncError
from shared.tables import MergeMode

logger = logging.getLogger(__name__)


class SummaryPage(QWizardPage):
    """Everything chosen, on one page, before anything is created."""

    def __init__(self, wizard: WizardHost) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Check before provisioning")
        self.setSubTitle("This is what Provision creates on AWS and writes on this laptop. "
                         "Go Back to change anything.")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addStretch(1)

    def initializePage(self) -> None:
        self.text.setText("\n".join(summary_lines(self.w.state)))


def summary_lines(state: WizardState) -> list[str]:
    how = "access key in the OS keyring" if state.credentials == "keys" \
        else f"AWS profile {state.profile or 'default'}"
    lines = [f"AWS: {how}, region {state.region}",
             f"Instance: {state.instance_type}; only {state.public_ip} may reach the app",
             f"Alarms go to: {state.email}",
             f"Market app: {state.app_source}",
             f"Laptop database: {state.conninfo}"
             + (" (password in a plaintext keyring file)" if state.allow_insecure_keyring
                else ""),
             f"Tables backed up ({len(state.tables)}):"]
    for t in state.tables:
        key = ", ".join(t.get("key") or ()) or "primary key"
        by = f"by {t['watermark']}, " if t.get("watermark") else ""
        lines.append(f"    {t['name']}: {by}key {key}, {MODE_TEXT[MergeMode(t['mode'])]}")
    return lines


class ProvisionPage(QWizardPage):
    """Signals:
        provisioned(object): the ProvisionResult, when the stack is ready.
    """

    provisioned = Signal(object)

    def __init__(self, wizard: WizardHost) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Provision")
        self.setSubTitle("Creates or updates the stack; this takes a few minutes. You can close "
                         "the wizard and run it again: it picks up where AWS is.")
        self.start = QPushButton("Provision")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.start)
        layout.addWidget(self.log)
        layout.addWidget(self.status)
        self.start.clicked.connect(self.run)
        self.result: ProvisionResult | None = None
        self.setCommitPage(True)

    def isComplete(self) -> bool:
        return self.result is not None

    @Slot()
    def run(self) -> None:
        state = self.w.state
        request = ProvisionRequest(alert_email=state.email, trader_ip=state.public_ip,
                                   app_source=state.app_source, region=state.region,
                                   instance_type=state.instance_type,
                                   database_conninfo=state.conninfo,
                                   tables=table_specs(state))
        if state.credentials == "keys" and self.w.admin_keys is None:
            self.status.setText("Enter the administrator access key again on the first page: "
                                "it is never stored, so a reopened wizard asks for it anew.")
            return
        choice = AwsChoice(region=state.region, profile=state.profile or None,
                           admin_keys=self.w.admin_keys if state.credentials == "keys"
                           else None)
        provision = self.w.deps.provision
        self.start.setEnabled(False)
        self.status.setText("Working…")

        def work(ctx: JobContext) -> ProvisionResult:
            return provision(request, choice, ctx.report)

        job = self.w.runner.run("provision", work)
        job.progressed.connect(self._progress)
        job.succeeded.connect(self._done)
        job.failed.connect(self._failed)

    @Slot(object)
    def _progress(self, step: ProvisionProgress) -> None:
        self.log.appendPlainText(step.message)
        for change in step.changes:
            self.log.appendPlainText("  " + change.describe())

    @Slot(object)
    def _done(self, result: ProvisionResult) -> None:
        state = self.w.state
        try:  # the laptop gets the same [[tables]] as the agent
            write_wizard_choices(self.w.deps.config_path, table_specs(state),
                                 state.allow_insecure_keyring)
        except MarketSyncError as exc:
            self.start.setEnabled(True)
            self.status.setText(f"The stack is ready, but the config could not be "
                                f"completed: {exc}")
            return
        self.result = result
        self.w.update_state(provisioned=True)
        self.status.setText(f"Ready: bucket {result.bucket}, instance "
                            f"{result.instance_id or '-'}. Confirm the e-mail AWS sent to "
                            "get alarms.")
        self.completeChanged.emit()
        self.provisioned.emit(result)

    @Slot(object)
    def _failed(self, failure: JobFailure) -> None:
        self.start.setEnabled(True)
        self.status.setText(f"{failure.message}\n{failure.hint}".strip())
