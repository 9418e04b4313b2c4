"""The history window: every applied dump with its counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.fit import fit_table_width
from desktop.ui.jobs import JobFailure
from shared.calendar import IST
from shared.words import plural

if TYPE_CHECKING:
    from desktop.engine.records import AppliedDump
    from desktop.proc.protocol import HistoryList

_Index = QModelIndex | QPersistentModelIndex
HEADERS = ("Dump", "Days", "Kind", "Policy", "New", "Unchanged", "Diverged", "Size",
           "Download", "Merge", "Applied (IST)")
NUMERIC = {4, 5, 6, 7, 8, 9}


def history_row(d: AppliedDump) -> tuple[str, ...]:
    if d.first_day and d.last_day:
        days = (f"{d.last_day:%d %b %Y}" if d.first_day == d.last_day
                else f"{d.first_day:%d %b} … {d.last_day:%d %b %Y}")
    else:
        days = "snapshot"
    return (d.dump_id, days, d.kind, d.policy, f"{d.rows_new:,}", f"{d.rows_unchanged:,}",
            f"{d.rows_diverged:,}", f"{d.bytes / 1e6:,.1f} MB", f"{d.download_seconds:.1f} s",
            f"{d.apply_seconds:.1f} s", f"{d.applied_at.astimezone(IST):%d %b %Y %H:%M}")


class HistoryModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.dumps: tuple[AppliedDump, ...] = ()
        self.rows: list[tuple[str, ...]] = []

    def set_dumps(self, dumps: tuple[AppliedDump, ...]) -> None:
        self.beginResetModel()
        self.dumps = tuple(reversed(dumps))  # newest first
        self.rows = [history_row(d) for d in self.dumps]
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            d = self.dumps[index.row()]
            return "\n".join(f"{name}: {counts}" for name, counts in d.counts.items())
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None


class HistoryWindow(QWidget):
    """Applied dumps, newest first.

    Signals:
        refreshRequested(): load the ledger again (the shell runs it in the background).
    """

    refreshRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("History — market-sync")
        self.resize(1000, 380)
        self.model = HistoryModel()
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.verticalHeader().setVisible(False)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.summary = QLabel("Loading…")
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refreshRequested)
        bottom = QHBoxLayout()
        bottom.addWidget(self.summary, 1)
        bottom.addWidget(refresh)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addLayout(bottom)

    @Slot(object)
    def show_history(self, history: HistoryList) -> None:
        self.model.set_dumps(history.dumps)
        self.view.resizeColumnsToContents()
        self.fit_columns()
        dumps = history.dumps
        if not dumps:
            self.summary.setText("No dumps applied yet: press Sync now.")
            return
        rows = sum(d.rows_new for d in dumps)
        diverged = sum(d.rows_diverged for d in dumps)
        self.summary.setText(f"{plural(len(dumps), 'dump')} applied · "
                             f"{plural(rows, 'new row')} · {plural(diverged, 'conflict')} · "
                             f"{sum(d.bytes for d in dumps) / 1e6:,.1f} MB")

    def fit_columns(self) -> None:
        """Wide enough that no column is cut off (within the screen)."""
        fit_table_width(self, self.view)

    @Slot(object)
    def show_failure(self, failure: JobFailure) -> None:
        self.summary.setText(f"Could not read the history: {failure.message}")
