"""The sync progress window: per dump and overall, bytes and rows, speed, cancel."""

from __future__ import annotations

import collections
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialogButtonBox,
    QGridLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.fit import fit_table_width
from desktop.ui.jobs import BaseJob, JobFailure
from desktop.ui.viewmodel import sync_fraction
from shared.words import plural

if TYPE_CHECKING:
    from desktop.engine.progress import SyncProgress
    from desktop.engine.report import DumpReport, SyncReport

PHASES = {"listing": "Looking for new dumps in S3", "downloading": "Downloading",
          "verifying": "Verifying", "applying": "Merging", "done": "Finishing"}


def megabytes(n: int) -> str:
    """A size a trader reads: MB, or kB below one MB (never "0.0 MB" for a small dump)."""
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 or n == 0 else f"{n / 1e3:,.1f} kB"


REPORT_HEADERS = ("Dump", "Days", "Result", "New", "Unchanged", "Diverged", "Downloaded",
                  "Seconds")
NUMERIC = {3, 4, 5, 6, 7}


def days_text(d: DumpReport) -> str:
    if d.first_day and d.last_day:
        return (f"{d.last_day:%d %b %Y}" if d.first_day == d.last_day
                else f"{d.first_day:%d %b} – {d.last_day:%d %b %Y}")
    return "snapshot"


def report_row(d: DumpReport) -> tuple[str, ...]:
    """One dump of the finished sync, as the table shows it."""
    downloaded = (megabytes(d.downloaded_bytes) if d.downloaded_bytes == d.bytes
                  else f"{megabytes(d.downloaded_bytes)} of {megabytes(d.bytes)}")
    return (d.dump_id, days_text(d), d.status, f"{d.new:,}", f"{d.unchanged:,}",
            f"{d.diverged:,}", downloaded, f"{d.download_seconds + d.apply_seconds:,.1f}")


def report_lines(report: SyncReport) -> list[str]:
    """The finished sync in a few sentences (the table has the numbers)."""
    applied = sum(1 for d in report.dumps if d.status == "applied")
    lines = []
    if not report.dumps and report.error is None:
        lines.append("Up to date: no new dumps in S3.")
    elif report.dumps:
        rows = sum(d.new for d in report.dumps)
        lines.append(f"{plural(applied, 'dump')} of {report.pending} applied · "
                     f"{plural(rows, 'new row')} · "
                     f"{megabytes(sum(d.downloaded_bytes for d in report.dumps))} downloaded")
    if report.conflicts and report.policy != "abort":
        lines.append(f"{plural(report.conflicts, 'row')} differed: the conflicts are saved; "
                     "press Conflicts… to review them.")
    if report.gaps:
        lines.append("Gap: no dump covers " + ", ".join(f"{g:%a %d %b}" for g in report.gaps)
                     + "; the instance's next full backup fills it.")
    lines.extend(f"Skipped {d}: older than the newest applied dump." for d in report.superseded)
    if report.error:
        lines.append(report.error + (f" ({report.error_hint})" if report.error_hint else ""))
    return lines


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class SyncWindow(QWidget):
    """Follows one sync job at a time.

    Signals:
        cancelRequested(): the Cancel button; the job's token is cancelled too.
        conflictsRequested(): the Conflicts… button after a sync that saved conflicts.
    """

    cancelRequested = Signal()
    conflictsRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sync — market-sync")
        self.setMinimumWidth(520)
        self.job: BaseJob | None = None
        self.last: SyncProgress | None = None
        self.report: SyncReport | None = None
        self.cancelling = False
        self._samples: collections.deque[tuple[float, int, int]] = collections.deque(maxlen=40)

        self.heading = QLabel("No sync running.")
        font = QFont(self.heading.font())
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.heading.setFont(font)
        self.step = QLabel("")
        self.step.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dump_bar, self.total_bar = QProgressBar(), QProgressBar()
        for bar in (self.dump_bar, self.total_bar):
            bar.setRange(0, 1000)
            bar.setValue(0)
            bar.setTextVisible(True)
        self.dump_detail, self.total_detail, self.speed = QLabel(""), QLabel(""), QLabel("")
        grid = QGridLayout()
        grid.addWidget(QLabel("This dump"), 0, 0)
        grid.addWidget(self.dump_bar, 0, 1)
        grid.addWidget(self.dump_detail, 1, 1)
        grid.addWidget(QLabel("Overall"), 2, 0)
        grid.addWidget(self.total_bar, 2, 1)
        grid.addWidget(self.total_detail, 3, 1)
        grid.setColumnStretch(1, 1)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setVisible(False)
        self.table = QTableWidget(0, len(REPORT_HEADERS))
        self.table.setHorizontalHeaderLabels(list(REPORT_HEADERS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.setVisible(False)
        self.table.setMinimumHeight(110)
        buttons = QDialogButtonBox()
        self.cancel_button = QPushButton("Cancel sync")
        self.cancel_button.setToolTip("Stops the sync; the dump being merged is rolled back, "
                                      "dumps already applied stay.")
        self.conflicts_button = QPushButton("Conflicts…")
        self.conflicts_button.setVisible(False)
        self.close_button = QPushButton("Close")
        buttons.addButton(self.conflicts_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        buttons.addButton(self.close_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button.clicked.connect(self.cancel)
        self.conflicts_button.clicked.connect(self.conflictsRequested)
        self.close_button.clicked.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.step)
        layout.addLayout(grid)
        layout.addWidget(self.speed)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.cancel_button.setEnabled(False)

    def follow(self, job: BaseJob) -> None:
        self.job, self.last, self.report = job, None, None
        self.cancelling = False
        self._samples.clear()
        self.heading.setText("Syncing…")
        self.step.setText(PHASES["listing"] + "…")
        self.dump_bar.setValue(0)
        self.total_bar.setValue(0)
        self.dump_detail.setText("")
        self.total_detail.setText("")
        self.speed.setText("")
        self.summary.clear()
        self.summary.setVisible(False)
        self.table.setRowCount(0)
        self.table.setVisible(False)
        self.conflicts_button.setVisible(False)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel sync")
        job.progressed.connect(self.show_progress)
        job.succeeded.connect(self.show_report)
        job.failed.connect(self.show_failure)

    @Slot()
    def cancel(self) -> None:
        if self.job is not None and not self.job.done:
            self.cancelling = True
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")
            self.step.setText("Cancelling: rolling back the dump in flight…")
        self.cancelRequested.emit()

    @Slot(object)
    def show_progress(self, p: SyncProgress) -> None:
        if self.cancelling:  # the bars stay where the trader pressed Cancel, never "100%"
            return
        self.last = p
        now = time.monotonic()
        self._samples.append((now, p.bytes_done, p.rows_done))
        if p.dump_count:
            self.heading.setText(f"Syncing dump {max(p.dump_index, 1)} of {p.dump_count}")
        phase = PHASES.get(p.phase, p.phase)
        where = f" {p.table}" if p.table and p.phase in ("downloading", "applying") else ""
        self.step.setText(f"{phase}{where}" + (f" · {p.dump_id}" if p.dump_id else ""))
        if p.phase == "downloading" and p.dump_bytes_total:
            self.dump_bar.setValue(int(1000 * p.dump_bytes_done / p.dump_bytes_total))
            self.dump_bar.setFormat("downloading %p%")
        elif p.dump_rows_total:
            self.dump_bar.setValue(int(1000 * p.dump_rows_done / p.dump_rows_total))
            self.dump_bar.setFormat("merging %p%")
        self.dump_detail.setText(
            f"{megabytes(p.dump_bytes_done)} of {megabytes(p.dump_bytes_total)} · "
            f"{p.dump_rows_done:,} of {p.dump_rows_total:,} rows")
        fraction = sync_fraction(p) or 0.0
        self.total_bar.setValue(int(1000 * fraction))
        self.total_detail.setText(
            f"{megabytes(p.bytes_done)} of {megabytes(p.bytes_total)} · "
            f"{p.rows_done:,} of {p.rows_total:,} rows")
        self.speed.setText(self._speed_text(fraction))

    def _speed_text(self, fraction: float) -> str:
        if len(self._samples) < 2:
            return ""
        t0, b0, r0 = self._samples[0]
        t1, b1, r1 = self._samples[-1]
        span = t1 - t0
        if span <= 0.2:
            return ""
        parts = [f"{(b1 - b0) / span / 1e6:,.1f} MB/s", f"{(r1 - r0) / span:,.0f} rows/s"]
        started = self._samples[0][0]
        if 0.02 < fraction < 1:
            elapsed = t1 - started
            parts.append(f"about {duration(elapsed / fraction * (1 - fraction))} left")
        return " · ".join(parts)

    @Slot(object)
    def show_report(self, report: SyncReport) -> None:
        self.report = report
        self._finish()
        cancelled = any(d.status == "cancelled" for d in report.dumps)
        if cancelled:
            self.heading.setText("Sync cancelled")
        elif report.error:
            self.heading.setText("Sync failed")
        elif not report.dumps:
            self.heading.setText("Up to date")
        else:
            self.heading.setText("Sync finished")
            self.dump_bar.setValue(1000)
            self.total_bar.setValue(1000)
        self.step.setText("Nothing of the cancelled dump was kept; dumps applied before it "
                          "stay." if cancelled else "")
        self.summary.setText("\n".join(report_lines(report)))
        self.summary.setVisible(bool(self.summary.text()))
        self.table.setRowCount(len(report.dumps))
        for row, dump in enumerate(report.dumps):
            for column, text in enumerate(report_row(dump)):
                item = QTableWidgetItem(text)
                if column in NUMERIC:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self.table.setVisible(bool(report.dumps))
        self.table.resizeColumnsToContents()
        fit_table_width(self, self.table)
        self.conflicts_button.setVisible(report.conflicts > 0)

    @Slot(object)
    def show_failure(self, failure: JobFailure) -> None:
        self._finish()
        self.heading.setText("Sync cancelled" if failure.cancelled else "Sync failed")
        self.step.setText("")
        self.summary.setText(failure.message + (f" ({failure.hint})" if failure.hint else ""))
        self.summary.setVisible(True)

    def _finish(self) -> None:
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancel sync")
        self.speed.setText("")
