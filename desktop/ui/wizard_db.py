"""The wizard's laptop pages: the database (host, port, database, user, password, Test)
and its tables (key, watermark and mode proposed from each table, editable)."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from desktop.engine.discover import TableProposal
from desktop.ui.jobs import JobFailure
from desktop.ui.wizard_deps import WizardHost, form
from installer.wizard_state import DatabaseCheck, WizardState
from shared.errors import MarketSyncError
from shared.secrets import DATABASE_PASSWORD, SecretStore
from shared.tables import MergeMode, TableSpec, parse_qualified_name
from shared.validate import build_conninfo, check_conninfo, parse_conninfo
from shared.words import plural

logger = logging.getLogger(__name__)


class DatabasePage(QWizardPage):
    def __init__(self, wizard: WizardHost) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("This laptop's database")
        self.setSubTitle("The PostgreSQL on this laptop where the daily data is merged. "
                         "The password goes to the OS keyring, never into a file.")
        self.host = QLineEdit()
        self.host.setPlaceholderText("localhost")
        self.port = QLineEdit()
        self.port.setPlaceholderText("5432")
        self.database = QLineEdit()
        self.database.setPlaceholderText("market")
        self.user = QLineEdit()
        self.user.setPlaceholderText("postgres")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.insecure = QCheckBox("Allow a keyring that is not encrypted (plaintext file)")
        self.insecure.setToolTip("This machine has no encrypted keyring: the password would "
                                 "be kept in a file only you can read.")
        self.test = QPushButton("Test")
        self.result = QLabel()
        self.result.setWordWrap(True)
        layout = form(self)
        layout.addRow("Host:", self.host)
        layout.addRow("Port:", self.port)
        layout.addRow("Database:", self.database)
        layout.addRow("User:", self.user)
        layout.addRow("Password:", self.password)
        layout.addRow(self.insecure)
        layout.addRow(self.test)
        layout.addRow(self.result)
        self.test.clicked.connect(self.run_test)

    @property
    def conninfo(self) -> str:
        return build_conninfo(self.host.text(), self.port.text(), self.database.text(),
                              self.user.text())

    def initializePage(self) -> None:
        try:
            parts = parse_conninfo(self.w.state.conninfo)
        except ValueError:
            parts = {}
        self.host.setText(parts.get("host", ""))
        self.port.setText(parts.get("port", ""))
        self.database.setText(parts.get("dbname", ""))
        self.user.setText(parts.get("user", ""))
        self.insecure.setVisible(self.w.deps.secrets is None)
        self.insecure.setChecked(self.w.state.allow_insecure_keyring)

    def check(self) -> str | None:
        """What is wrong with the fields, in a sentence, or None."""
        if not self.database.text().strip():
            return "Say which database: its name, e.g. market."
        port = self.port.text().strip()
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            return f"Port {port!r} is not a port number (1–65535, usually 5432)."
        problem = check_conninfo(self.conninfo)
        return f"{problem}." if problem else None

    @Slot()
    def run_test(self) -> None:
        problem = self.check()
        if problem:
            self.result.setText("✗ " + problem)
            return
        self.test.setEnabled(False)
        self.result.setText("Connecting…")
        check, conninfo = self.w.deps.check_database, self.conninfo
        password = self.password.text() or None
        job = self.w.runner.run("test-database", lambda _ctx: check(conninfo, password))
        job.succeeded.connect(self._tested)
        job.failed.connect(self._test_failed)

    @Slot(object)
    def _tested(self, check: DatabaseCheck) -> None:
        self.test.setEnabled(True)
        self.result.setText(("✓ " if check.ok else "✗ ") + check.message)

    @Slot(object)
    def _test_failed(self, failure: JobFailure) -> None:
        self.test.setEnabled(True)
        self.result.setText("✗ " + failure.message)

    def secrets(self) -> SecretStore | None:
        if self.w.deps.secrets is not None:
            return self.w.deps.secrets
        return self.w.deps.insecure_secrets() if self.insecure.isChecked() else None

    def validatePage(self) -> bool:
        problem = self.check()
        if problem:
            self.result.setText("✗ " + problem)
            return False
        if self.password.text():
            store = self.secrets()
            if store is None:
                self.result.setText("✗ There is no encrypted keyring here to keep the password: "
                                    "tick the box to keep it in a file only you can read, or "
                                    "leave the password empty (PGPASSWORD or .pgpass then "
                                    "apply).")
                return False
            try:
                store.set(DATABASE_PASSWORD, self.password.text())
            except MarketSyncError as exc:
                self.result.setText("✗ " + exc.message)
                return False
            self.w.password = self.password.text()
            self.password.clear()
        self.w.update_state(conninfo=self.conninfo,
                            allow_insecure_keyring=self.insecure.isChecked()
                            and self.w.deps.secrets is None)
        return True


TABLE_HEADERS = ("Back up", "Table", "Key columns", "Watermark (day column)", "Mode")


class TablesPage(QWizardPage):
    """The laptop database's tables, each with its key, watermark and mode proposed."""

    def __init__(self, wizard: WizardHost) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Tables to back up")
        self.setSubTitle("The tables found in the laptop's database. The instance backs up "
                         "exactly the ticked ones, one day at a time by the watermark column; "
                         "a snapshot table is copied whole every day.")
        self.table = QTableWidget(0, len(TABLE_HEADERS))
        self.table.setHorizontalHeaderLabels(list(TABLE_HEADERS))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.find_button = QPushButton("Find tables again")
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(self.message, 1)
        row.addWidget(self.find_button)
        layout.addLayout(row)
        self.find_button.clicked.connect(self.discover)
        self.proposals: list[TableProposal] = []

    def initializePage(self) -> None:
        if self.w.state.tables:
            self.show_tables([_proposal(t) for t in self.w.state.tables], chosen=True)
        self.discover()

    @Slot()
    def discover(self) -> None:
        self.find_button.setEnabled(False)
        self.message.setText("Looking at the laptop's database…")
        find, conninfo, password = self.w.deps.find_tables, self.w.state.conninfo, \
            self.w.password or _stored_password(self.w.deps.secrets)
        job = self.w.runner.run("find-tables", lambda _ctx: find(conninfo, password))
        job.succeeded.connect(self._found)
        job.failed.connect(self._not_found)

    @Slot(object)
    def _found(self, found: object) -> None:
        self.find_button.setEnabled(True)
        proposals = list(found) if isinstance(found, list) else []
        chosen = {t.get("name") for t in self.w.state.tables}
        if chosen:  # keep the trader's edits for tables already chosen
            mine = {p.qualified: p for p in (_proposal(t) for t in self.w.state.tables)}
            proposals = [mine.get(p.qualified, p) for p in proposals]
        self.show_tables(proposals, chosen=bool(chosen), ticked=chosen)
        self.message.setText(
            f"Found {plural(len(proposals), 'table')}; keys and day columns are proposed "
            "from each table's primary key and date columns: check them." if proposals else
            "The laptop's database has no tables yet: create the app's schema there (the "
            "same tables as on the instance), then press Find tables again.")

    @Slot(object)
    def _not_found(self, failure: JobFailure) -> None:
        self.find_button.setEnabled(True)
        self.message.setText(f"Could not read the laptop's tables: {failure.message}")

    def show_tables(self, proposals: list[TableProposal], chosen: bool = False,
                    ticked: set[Any] | None = None) -> None:
        self.proposals = proposals
        self.table.setRowCount(len(proposals))
        for row, p in enumerate(proposals):
            check = QTableWidgetItem()
            on = p.qualified in ticked if chosen and ticked else True
            check.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.table.setItem(row, 0, check)
            name = QTableWidgetItem(p.qualified)
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, 1, name)
            self.table.setItem(row, 2, QTableWidgetItem(", ".join(p.key)))
            watermark = QComboBox()
            watermark.setEditable(True)
            watermark.addItems(["", *p.date_columns])
            watermark.setCurrentText(p.watermark or "")
            self.table.setCellWidget(row, 3, watermark)
            mode = QComboBox()
            for m in MergeMode:
                mode.addItem(MODE_TEXT[m], str(m))
            mode.setCurrentIndex(mode.findData(str(p.mode)))
            self.table.setCellWidget(row, 4, mode)
        self.table.resizeColumnsToContents()
        for column in (3, 4):  # the choosers' own width, not only their header's
            widths = [w.sizeHint().width() for r in range(self.table.rowCount())
                      if (w := self.table.cellWidget(r, column)) is not None]
            self.table.setColumnWidth(column, max([self.table.columnWidth(column), *widths]))

    def chosen(self) -> tuple[list[TableSpec], list[str]]:
        """The ticked tables as specs, and a sentence for each row that cannot be one."""
        specs: list[TableSpec] = []
        problems: list[str] = []
        for row in range(self.table.rowCount()):
            check, name = self.table.item(row, 0), self.table.item(row, 1)
            if check is None or name is None or check.checkState() != Qt.CheckState.Checked:
                continue
            key_item = self.table.item(row, 2)
            key = tuple(k.strip() for k in (key_item.text() if key_item else "").split(",")
                        if k.strip())
            watermark_box, mode_box = self.table.cellWidget(row, 3), self.table.cellWidget(row, 4)
            assert isinstance(watermark_box, QComboBox) and isinstance(mode_box, QComboBox)
            mode = MergeMode(mode_box.currentData())
            watermark = watermark_box.currentText().strip() or None
            try:
                spec = TableSpec(parse_qualified_name(name.text()), mode, key,
                                 None if mode is MergeMode.SNAPSHOT else watermark)
            except MarketSyncError as exc:
                problems.append(f"{name.text()}: {exc.message}")
                continue
            if mode is not MergeMode.SNAPSHOT and not key:
                problems.append(f"{name.text()}: {MODE_TEXT[mode]} needs its key columns "
                                "(or choose a snapshot)")
                continue
            specs.append(spec)
        return specs, problems

    def validatePage(self) -> bool:
        specs, problems = self.chosen()
        if problems:
            self.message.setText("; ".join(problems) + ".")
            return False
        if not specs:
            self.message.setText("Tick at least one table: the instance backs up only what "
                                 "is ticked here.")
            return False
        self.w.update_state(tables=tuple(_table_state(s) for s in specs))
        return True


def _stored_password(secrets: SecretStore | None) -> str | None:
    """The password a former session of the wizard put in the keyring, if any."""
    try:
        return secrets.get(DATABASE_PASSWORD) if secrets is not None else None
    except MarketSyncError:
        return None


MODE_TEXT = {MergeMode.UPSERT: "by day, rows by key (upsert)",
             MergeMode.REPLACE_RANGE: "by day, whole days (replace-range)",
             MergeMode.SNAPSHOT: "whole table (snapshot)"}


def _table_state(spec: TableSpec) -> dict[str, Any]:
    return {"name": str(spec.name), "key": list(spec.key), "watermark": spec.watermark,
            "mode": str(spec.mode)}


def _proposal(data: dict[str, Any]) -> TableProposal:
    schema, _, name = str(data.get("name", "")).partition(".")
    watermark = data.get("watermark")
    return TableProposal(schema, name, tuple(data.get("key") or ()), watermark,
                         MergeMode(data.get("mode", "snapshot")),
                         (watermark,) if watermark else ())


def table_specs(state: WizardState) -> tuple[TableSpec, ...]:
    return tuple(TableSpec(parse_qualified_name(t["name"]), MergeMode(t["mode"]),
                           tuple(t.get("key") or ()), t.get("watermark"))
                 for t in state.tables)
