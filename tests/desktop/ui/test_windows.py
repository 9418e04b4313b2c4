"""The windows over the real engine: a sync with progress and cancel, conflicts (filter,
export, put back), history. moto S3 + EC2 and throwaway PostgreSQL underneath."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from desktop.engine.progress import SyncProgress
from desktop.ui.shell import Shell
from desktop.ui.viewmodel import TrayState
from tests.desktop.ui.conftest import (
    OFFSCREEN_LIMITS,
    TrayWorld,
    open_shell,
)

WAIT = 30_000
pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS)


@pytest.fixture
def shell(qtbot: QtBot, tray_world: TrayWorld) -> Iterator[Shell]:
    yield from open_shell(tray_world, use_tray=False)


def three_days(world: TrayWorld, rows: int = 300) -> None:
    for day in ("2025-06-11", "2025-06-12", "2025-06-13"):
        world.ticks(day, rows)
        world.backup(day)


def run_sync(qtbot: QtBot, shell: Shell) -> Any:
    with qtbot.waitSignal(shell.controller.syncFinished, timeout=WAIT) as blocker:
        shell.sync_now()
    return blocker.args[0]


def test_sync_now_shows_progress_and_the_report(qtbot: QtBot, tray_world: TrayWorld,
                                                shell: Shell) -> None:
    three_days(tray_world)
    states: list[TrayState] = []
    shell.controller.viewChanged.connect(lambda v: states.append(v.state))
    progress: list[SyncProgress] = []

    with qtbot.waitSignal(shell.controller.syncStarted, timeout=WAIT) as started:
        shell.sync_now()
    started.args[0].progressed.connect(progress.append)
    with qtbot.waitSignal(shell.controller.syncFinished, timeout=WAIT) as finished:
        pass

    window = shell.sync_window
    assert window is not None and window.isVisible()
    assert finished.args[0].ok and finished.args[0].applied == 3
    assert tray_world.laptop_count() == 900
    assert TrayState.SYNCING in states
    assert {p.phase for p in progress} >= {"downloading", "applying"}
    assert window.heading.text() == "Sync finished"
    assert window.summary.text().startswith("3 dumps of 3 applied · 900 new rows · ")
    assert window.table.rowCount() == 3  # a table of the dumps, not CLI text
    headers = [window.table.horizontalHeaderItem(c).text()
               for c in range(window.table.columnCount())]
    assert headers == ["Dump", "Days", "Result", "New", "Unchanged", "Diverged", "Downloaded",
                       "Seconds"]
    first = [window.table.item(0, c).text() for c in range(window.table.columnCount())]
    assert first[1] == "11 Jun 2025" and first[2] == "applied" and first[3] == "300"
    assert first[6].endswith(" kB") and float(first[6].split()[0]) > 0  # really downloaded
    assert "`" not in window.summary.text()
    assert window.total_bar.value() == 1000
    assert "rows" in window.total_detail.text() and "kB" in window.total_detail.text()
    assert not window.cancel_button.isEnabled()
    assert any(n.title == "Sync finished" for n in shell.notifier.shown)
    assert "3 dumps applied, 900 new rows" in shell.controller.view.last_sync_line


def test_cancel_rolls_the_dump_in_flight_back(qtbot: QtBot, tray_world: TrayWorld,
                                              shell: Shell) -> None:
    tray_world.ticks("2025-06-12", 200)
    tray_world.backup("2025-06-12")
    tray_world.ticks("2025-06-13", 200)
    tray_world.backup("2025-06-13")
    # The child merges the 13th's dump slowly: time for the trader to press Cancel mid-merge.
    shell.controller.runner.worker = (sys.executable, "-m", "tests.desktop.ui.slow_worker")

    def press_cancel(p: SyncProgress) -> None:
        window = shell.sync_window
        if window is not None and p.dump_index == 2 and p.phase == "applying" and \
                window.cancel_button.isEnabled():
            window.cancel_button.click()

    with qtbot.waitSignal(shell.controller.syncStarted, timeout=WAIT) as started:
        shell.sync_now()
    started.args[0].progressed.connect(press_cancel)
    with qtbot.waitSignal(shell.controller.syncFinished, timeout=WAIT) as finished:
        pass

    assert finished.args[0].cancelled
    window = shell.sync_window
    assert window is not None and window.heading.text() == "Sync cancelled"
    applied = tray_world.world.laptop("SELECT dump_id FROM market_sync.applied_dumps")
    assert [row[0][:8] for row in applied] == ["20250612"]
    days = tray_world.world.laptop("SELECT DISTINCT run_date::text FROM my_schema.ticks")
    assert days == [("2025-06-12",)]  # nothing of the 13th's dump was kept
    assert tray_world.laptop_count() == 200
    assert not any(n.title == "Sync failed" for n in shell.notifier.shown)
    assert shell.controller.view.state is not TrayState.SYNCING


def make_conflicts(world: TrayWorld) -> None:
    world.ticks("2025-06-12", 10)
    world.ticks("2025-06-12", 10, token=738561)
    world.backup("2025-06-12")
    world.world.sync()
    world.world.laptop("UPDATE my_schema.ticks SET last_price = 999 WHERE volume IN (1, 2)")
    world.world.instance("UPDATE my_schema.ticks SET volume = volume + 1000 "
                         "WHERE volume IN (1, 2) AND instrument_token = 256265")
    world.backup("2025-06-13")


def test_conflicts_window_filters_exports_and_puts_the_local_version_back(
        qtbot: QtBot, tray_world: TrayWorld, shell: Shell, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    make_conflicts(tray_world)
    outcome = run_sync(qtbot, shell)
    assert outcome.conflicts == 4  # every laptop edit; two also changed on the server
    assert any(n.key == "conflicts" for n in shell.notifier.shown)
    assert shell.controller.view.state is TrayState.ATTENTION

    window = shell.show_conflicts()
    qtbot.waitUntil(lambda: len(window.records) == 4, timeout=WAIT)
    assert shell.controller.view.state is not TrayState.ATTENTION  # seen
    columns = {line.column for line in window.model.lines}
    assert columns == {"last_price", "volume"}
    by_column = {(line.conflict_id, line.column): line for line in window.model.lines}
    some = next(line for line in window.model.lines if line.column == "last_price")
    assert float(some.local) == 999 and float(some.incoming) != 999 and some.winner == "incoming"
    assert len(by_column) == 6

    window.set_filter(table="my_schema.ticks")
    assert len(window.visible_rows()) == 6
    dump = window.records[0].dump_id
    window.set_filter(dump=dump)
    assert all(row[1] == dump for row in window.visible_rows())
    assert window.dump_box.count() == 2  # All + the one dump that had conflicts

    assert window.model.key_names == ["instrument_token", "exchange_timestamp"]
    assert "instrument_token" in window.model.headers  # one column per key part
    exported = tmp_path / "conflicts.csv"
    assert window.export_csv(exported) == 4  # one row per conflict
    with exported.open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["instrument_token"] for r in rows} == {"256265", "738561"}
    assert {float(r["laptop:last_price"]) for r in rows} == {999}
    assert all(float(r["incoming:last_price"]) != 999 for r in rows)
    assert all(r["detected_at_ist"] for r in rows)
    assert window.export_start_path() == str(Path.home() / "conflicts.csv")

    target = some.conflict_id
    row = next(r for r in range(window.proxy.rowCount())
               if window.proxy.index(r, 0).data() == str(target))
    window.view.selectionModel().select(
        window.proxy.index(row, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
    assert window.selected_ids() == (target,)
    assert window.restore_button.isEnabled()
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **_k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    window.restore_button.click()  # the trader says No: nothing is written
    assert asked == ["Write the laptop's version of 1 row back over what the sync wrote?"]
    assert tray_world.world.laptop("SELECT count(*) FROM my_schema.ticks "
                                   "WHERE last_price = 999") == [(0,)]
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *_a, **_k: QMessageBox.StandardButton.Yes)
    window.restore_button.click()
    qtbot.waitUntil(lambda: any(r.id == target and r.restored_at for r in window.records),
                    timeout=WAIT)
    kept = tray_world.world.laptop("SELECT count(*) FROM my_schema.ticks WHERE last_price = 999")
    assert kept == [(1,)]  # the one put back; the other three stay the server's
    assert any(line.restored for line in window.model.lines if line.conflict_id == target)


def test_history_lists_applied_dumps_with_counts(qtbot: QtBot, tray_world: TrayWorld,
                                                 shell: Shell) -> None:
    window = shell.show_history()
    qtbot.waitUntil(lambda: "No dumps applied yet" in window.summary.text(), timeout=WAIT)
    three_days(tray_world, rows=40)
    run_sync(qtbot, shell)

    window.refreshRequested.emit()
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=WAIT)
    newest = window.model.rows[0]
    assert newest[0].startswith("20250613")
    assert newest[4] == "40"  # new rows of the newest dump (the overlap day is unchanged)
    assert "3 dumps applied" in window.summary.text()
    assert "120 new rows" in window.summary.text()


def test_a_laptop_column_the_dump_lacks_stops_the_sync_until_settings_keep_it(
        qtbot: QtBot, tray_world: TrayWorld, shell: Shell) -> None:
    """The trader's own column on the laptop (or one dropped on the instance): the tray's
    sync stops and says where to allow it; ticked in Settings, the next sync keeps it."""
    three_days(tray_world, rows=10)
    assert run_sync(qtbot, shell).ok
    tray_world.world.laptop("ALTER TABLE my_schema.ticks ADD COLUMN my_note text")
    tray_world.world.laptop("UPDATE my_schema.ticks SET my_note = 'checked'")
    tray_world.ticks("2025-06-16", 10)
    tray_world.backup("2025-06-16")

    refused = run_sync(qtbot, shell)
    assert not refused.ok and "'my_note' is not in the dump" in refused.line
    window = shell.sync_window
    assert window is not None and "Settings → Keep laptop columns" in window.summary.text()
    assert tray_world.laptop_count() == 30

    dialog = shell.show_settings()
    assert not dialog.keep_dropped.isChecked()
    dialog.keep_dropped.setChecked(True)
    with qtbot.waitSignal(dialog.saved):
        dialog.save()
    assert run_sync(qtbot, shell).ok
    assert tray_world.laptop_count() == 40
    assert tray_world.world.laptop("SELECT count(my_note) FROM my_schema.ticks") == [(30,)]
