"""The conflicts window: the laptop's value next to the incoming one, per differing column.

Filter by table and dump, export what is shown as CSV, and put the laptop's
version of the selected rows back (the engine's ``restore_conflict``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop.engine.conflict_table import conflict_table, in_ist, key_columns
from desktop.ui.fit import fit_table_width
from desktop.ui.jobs import JobFailure
from shared.calendar import IST
from shared.words import plural

if TYPE_CHECKING:
    from desktop.engine.records import ConflictRecord
    from desktop.proc.protocol import ConflictList

ALL = "All"
_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class ConflictLine:
    """One differing column of one conflict (a whole row when one side is missing)."""

    conflict_id: int
    dump_id: str
    table: str
    key: dict[str, Any]
    column: str
    local: str
    incoming: str
    winner: str
    restored: str


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return in_ist(str(value))


def conflict_lines(record: ConflictRecord) -> list[ConflictLine]:
    restored = f"{record.restored_at.astimezone(IST):%d %b %H:%M} IST" \
        if record.restored_at else ""
    local, incoming = record.local_row, record.incoming_row

    def line(column: str, a: str, b: str) -> ConflictLine:
        return ConflictLine(record.id, record.dump_id, record.table_name, dict(record.key or {}),
                            column, a, b, record.winner, restored)

    if local is None or incoming is None:
        return [line("(whole row)", _text(local) if local else "(none)",
                     _text(incoming) if incoming else "(none)")]
    columns = [c for c in dict.fromkeys([*local, *incoming]) if local.get(c) != incoming.get(c)]
    return [line(c, _text(local.get(c)), _text(incoming.get(c))) for c in columns] or \
        [line("(none)", "", "")]


BEFORE_KEY = ("#", "Dump", "Table")
AFTER_KEY = ("Column", "Laptop value", "Incoming value", "Won", "Restored")


class ConflictsModel(QAbstractTableModel):
    """One row per differing column; the key's parts each in a column of their own."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[ConflictLine] = []
        self.key_names: list[str] = []

    @property
    def headers(self) -> tuple[str, ...]:
        return (*BEFORE_KEY, *self.key_names, *AFTER_KEY)

    def column_of(self, header: str) -> int:
        return self.headers.index(header)

    def set_records(self, records: tuple[ConflictRecord, ...]) -> None:
        self.beginResetModel()
        self.key_names = key_columns(records)
        self.lines = [line for r in records for line in conflict_lines(r)]
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.lines)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers)

    def row_values(self, row: int) -> tuple[str, ...]:
        x = self.lines[row]
        keys = tuple(_text(x.key[k]) if k in x.key else "" for k in self.key_names)
        return (str(x.conflict_id), x.dump_id, x.table, *keys, x.column, x.local, x.incoming,
                x.winner, x.restored)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        line = self.lines[index.row()]
        local_col = self.column_of("Laptop value")
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self.row_values(index.row())[index.column()]
        if role == Qt.ItemDataRole.UserRole:
            return line.conflict_id
        if role == Qt.ItemDataRole.BackgroundRole and index.column() in (local_col,
                                                                         local_col + 1):
            won = (index.column() == local_col) == (line.winner in ("local", "local-wins"))
            return QBrush(QColor(46, 160, 67, 45) if won else QColor(207, 34, 46, 35))
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.headers[section]
        return None


class ConflictsFilter(QSortFilterProxyModel):
    def __init__(self) -> None:
        super().__init__()
        self.table, self.dump = ALL, ALL

    def set_filter(self, table: str, dump: str) -> None:
        self.beginFilterChange()
        self.table, self.dump = table, dump
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        model = self.sourceModel()
        assert isinstance(model, ConflictsModel)
        line = model.lines[source_row]
        return self.table in (ALL, line.table) and self.dump in (ALL, line.dump_id)


class ConflictsWindow(QWidget):
    """Conflicts saved by past syncs.

    Signals:
        refreshRequested(): load the conflicts again (the shell runs it in the background).
        restoreRequested(tuple): put the laptop's version back for these conflict ids.
    """

    refreshRequested = Signal()
    restoreRequested = Signal(tuple)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Conflicts — market-sync")
        self.resize(1180, 440)
        self.model = ConflictsModel()
        self.proxy = ConflictsFilter()
        self.proxy.setSourceModel(self.model)
        self.records: tuple[ConflictRecord, ...] = ()
        self.table_box, self.dump_box = QComboBox(), QComboBox()
        self.table_box.setMinimumContentsLength(18)
        self.dump_box.setMinimumContentsLength(26)
        self.table_box.currentTextChanged.connect(self._filter)
        self.dump_box.currentTextChanged.connect(self._filter)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setAlternatingRowColors(True)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setVisible(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.view.selectionModel().selectionChanged.connect(self._selection)
        self.summary = QLabel("Loading…")
        self.refresh_button = QPushButton("Refresh")
        self.export_button = QPushButton("Export CSV…")
        self.restore_button = QPushButton("Put local version back")
        self.restore_button.setToolTip("Writes the laptop's version of the selected rows back "
                                       "over what the sync wrote.")
        self.restore_button.setEnabled(False)
        self.refresh_button.clicked.connect(self.refreshRequested)
        self.export_button.clicked.connect(self._export_clicked)
        self.restore_button.clicked.connect(self._restore_clicked)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Table"))
        filters.addWidget(self.table_box)
        filters.addWidget(QLabel("Dump"))
        filters.addWidget(self.dump_box)
        filters.addStretch(1)
        filters.addWidget(self.refresh_button)
        actions = QHBoxLayout()
        actions.addWidget(self.summary, 1)
        actions.addWidget(self.export_button)
        actions.addWidget(self.restore_button)
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.view, 1)
        layout.addLayout(actions)

    @Slot(object)
    def show_conflicts(self, conflicts: ConflictList) -> None:
        self.records = conflicts.records
        table, dump = self.table_box.currentText(), self.dump_box.currentText()
        self.model.set_records(conflicts.records)
        for box, values, keep in (
                (self.table_box, sorted({r.table_name for r in self.records}), table),
                (self.dump_box, sorted({r.dump_id for r in self.records}, reverse=True), dump)):
            box.blockSignals(True)
            box.clear()
            box.addItems([ALL, *values])
            box.setCurrentText(keep if keep in values else ALL)
            box.blockSignals(False)
        self._filter()
        self.view.resizeColumnsToContents()
        for header in ("Dump", "Laptop value", "Incoming value"):
            column = self.model.column_of(header)
            self.view.setColumnWidth(column, min(self.view.columnWidth(column), 240))
        fit_table_width(self, self.view)

    @Slot(object)
    def show_failure(self, failure: JobFailure) -> None:
        self.summary.setText(f"Could not load the conflicts: {failure.message}")

    def set_filter(self, table: str = ALL, dump: str = ALL) -> None:
        self.table_box.setCurrentText(table)
        self.dump_box.setCurrentText(dump)

    @Slot()
    def _filter(self) -> None:
        self.proxy.set_filter(self.table_box.currentText() or ALL,
                              self.dump_box.currentText() or ALL)
        shown = {self.proxy.data(self.proxy.index(r, 0), Qt.ItemDataRole.UserRole)
                 for r in range(self.proxy.rowCount())}
        open_ = sum(1 for r in self.records if r.restored_at is None)
        self.summary.setText(f"{plural(len(self.records), 'conflict')} ({open_} not put back); "
                             f"{len(shown)} shown")
        self._selection()

    def selected_ids(self) -> tuple[int, ...]:
        ids = {self.proxy.data(i, Qt.ItemDataRole.UserRole)
               for i in self.view.selectionModel().selectedRows()}
        return tuple(sorted(int(i) for i in ids))

    @Slot()
    def _selection(self) -> None:
        self.restore_button.setEnabled(bool(self.selected_ids()))

    def visible_rows(self) -> list[tuple[str, ...]]:
        rows = []
        for r in range(self.proxy.rowCount()):
            source = self.proxy.mapToSource(self.proxy.index(r, 0)).row()
            rows.append(self.model.row_values(source))
        return rows

    def visible_records(self) -> list[ConflictRecord]:
        shown = {int(self.proxy.data(self.proxy.index(r, 0), Qt.ItemDataRole.UserRole))
                 for r in range(self.proxy.rowCount())}
        return [r for r in self.records if r.id in shown]

    def export_csv(self, path: Path) -> int:
        """Write the conflicts shown (after filters) to ``path``, one row each with a column
        per key part and each field twice (laptop, incoming); returns how many."""
        header, rows = conflict_table(self.visible_records())
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        return len(rows)

    def export_start_path(self) -> str:
        return str(Path.home() / "conflicts.csv")

    @Slot()
    def _export_clicked(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export conflicts", self.export_start_path(),
                                              "CSV files (*.csv)")
        if name:
            try:
                count = self.export_csv(Path(name))
            except OSError as exc:
                self.summary.setText(f"Could not write {name}: {exc.strerror or exc}")
                return
            self.summary.setText(f"Exported {plural(count, 'conflict')} to {name}")

    @Slot()
    def _restore_clicked(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        answer = QMessageBox.question(
            self, "Put the local version back",
            f"Write the laptop's version of {plural(len(ids), 'row')} back over what the sync "
            "wrote?")
        if answer == QMessageBox.StandardButton.Yes:
            self.restore_button.setEnabled(False)
            self.summary.setText("Putting the local version back…")
            self.restoreRequested.emit(ids)
