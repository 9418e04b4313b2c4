"""Layouts that hold, seen as the trader sees them: no label cut off or drawn over
another, table columns not clipped at the default size, and a tray menu that stays
narrow when the errors are long (elided, the whole sentence in the tooltip).

The facts come from the real engine through the worker (moto, PostgreSQL); the long
errors from a configuration that names a bucket and an instance that do not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QLabel,
    QTableView,
    QWidget,
)
from pytestqt.qtbot import QtBot

from desktop.ui.controller import AppController
from desktop.ui.shell import Shell
from desktop.ui.tray import MENU_MAX_WIDTH, MENU_TEXT_WIDTH
from desktop.ui.viewmodel import TrayState
from tests.desktop.ui.conftest import (
    OFFSCREEN_LIMITS,
    TrayWorld,
    dispose,
    fixed_clock,
    open_shell,
    poll,
)

WAIT = 30_000
pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS)


@pytest.fixture
def shell(qtbot: QtBot, tray_world: TrayWorld) -> Iterator[Shell]:
    yield from open_shell(tray_world, use_tray=True)


def settle(qtbot: QtBot, window: QWidget) -> None:
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()


def clipped(window: QWidget) -> list[str]:
    """Every visible label or button that cannot show all of its text, and every two
    visible labels that overlap."""
    found: list[str] = []
    boxes: list[tuple[QRect, QWidget]] = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisibleTo(window) or widget.width() <= 0:
            continue
        if isinstance(widget, QLabel) and widget.text():
            if widget.wordWrap():
                need = widget.heightForWidth(widget.width())
                if widget.height() < need:
                    found.append(f"{widget.text()[:40]!r}: {widget.height()} < {need} high")
            elif widget.width() < widget.minimumSizeHint().width() or \
                    widget.width() < widget.sizeHint().width():
                found.append(f"{widget.text()[:40]!r}: {widget.width()} < "
                             f"{widget.sizeHint().width()} wide")
            boxes.append((QRect(widget.mapTo(window, widget.rect().topLeft()),
                                widget.size()), widget))
        elif isinstance(widget, QAbstractButton) and widget.text():
            if widget.width() < widget.minimumSizeHint().width():
                found.append(f"button {widget.text()!r}: {widget.width()} < "
                             f"{widget.minimumSizeHint().width()} wide")
    for i, (a, wa) in enumerate(boxes):
        for b, wb in boxes[i + 1:]:
            if a.intersects(b) and not (wa.isAncestorOf(wb) or wb.isAncestorOf(wa)):
                found.append(f"{wa.text()[:30]!r} overlaps {wb.text()[:30]!r}")  # type: ignore[attr-defined]
    return found


def columns_cut(view: QTableView) -> list[str]:
    header = view.horizontalHeader()
    model = view.model()
    cut = []
    total = 0
    for column in range(header.count()):
        width = header.sectionSize(column)
        total += width
        title = str(model.headerData(column, header.orientation()))
        if width < header.sectionSizeFromContents(column).width():
            cut.append(f"header {title!r}")
        if width < view.sizeHintForColumn(column):
            cut.append(f"column {title!r}")
    if total > view.viewport().width() + 1:
        cut.append(f"columns {total} px in a {view.viewport().width()} px view")
    return cut


def long_errors(tray_world: TrayWorld) -> AppController:
    config = tray_world.config
    broken = replace(config, aws=replace(config.aws, bucket="market-sync-no-such-bucket-"
                                         "with-a-rather-long-name-1234",
                                         instance_id="i-0000000000000dead"))
    controller = AppController(broken)
    controller.clock = fixed_clock()
    return controller


def test_the_menu_stays_narrow_with_long_errors_and_tooltips_have_them_whole(
        qtbot: QtBot, tray_world: TrayWorld) -> None:
    controller = long_errors(tray_world)
    shell = Shell(controller, use_tray=True)
    try:
        poll(qtbot, controller, WAIT)
        assert controller.view.state is TrayState.ATTENTION
        assert shell.tray is not None
        menu = shell.tray.menu
        menu.aboutToShow.emit()
        menu.ensurePolished()
        longest = max(controller.view.attention, key=len)
        assert menu.fontMetrics().horizontalAdvance(longest) > MENU_TEXT_WIDTH  # really long

        assert menu.sizeHint().width() <= MENU_MAX_WIDTH
        elided = [a for a in menu.actions() if a.text() != a.data() and not a.isSeparator()]
        assert elided and all(a.toolTip() == a.data() for a in elided)
        assert all(a.text().endswith("…") for a in elided)
        assert longest in menu.texts()  # the whole sentence is still there
        assert menu.toolTipsVisible()
        for line in (menu.texts()[0], *[t for t in menu.texts() if "unknown" in t]):
            assert "unknown (" in line or line.startswith("Instance")

        status = shell.show_status()
        settle(qtbot, status)
        assert longest in status.attention.text()  # in full in the status window
        assert clipped(status) == []
    finally:
        dispose(shell)


def test_status_window_history_conflicts_sync_and_settings_are_not_clipped(
        qtbot: QtBot, tray_world: TrayWorld, shell: Shell) -> None:
    for day in ("2025-06-11", "2025-06-12", "2025-06-13"):
        tray_world.ticks(day, 30)
        tray_world.backup(day)
    poll(qtbot, shell.controller, WAIT)

    status = shell.show_status()
    settle(qtbot, status)
    assert clipped(status) == []

    with qtbot.waitSignal(shell.controller.syncFinished, timeout=WAIT):
        shell.sync_now()
    sync = shell.show_progress()
    settle(qtbot, sync)
    assert clipped(sync) == []
    assert columns_cut(sync.table) == []

    history = shell.show_history()
    qtbot.waitUntil(lambda: history.model.rowCount() == 3, timeout=WAIT)
    settle(qtbot, history)
    assert clipped(history) == []
    assert columns_cut(history.view) == []

    settings = shell.show_settings()
    settle(qtbot, settings)
    assert clipped(settings) == []
    settings.reject()


def test_status_says_unknown_not_none_when_s3_and_the_database_cannot_be_read(
        qtbot: QtBot, tray_world: TrayWorld) -> None:
    config = tray_world.config
    controller = AppController(replace(
        config, aws=replace(config.aws, bucket="market-sync-no-such-bucket-1234"),
        database=replace(config.database, conninfo="host=127.0.0.1 port=9 dbname=x "
                         "connect_timeout=2")))
    controller.clock = fixed_clock()
    shell = Shell(controller, use_tray=True)
    try:
        poll(qtbot, controller, WAIT)
        view = controller.view
        assert view.backup_line.startswith("Newest backup: unknown (the S3 bucket does not")
        assert view.pending is None and view.pending_line.startswith("unknown (")
        assert view.last_sync_line.startswith("Last sync: unknown (cannot connect to the "
                                              "laptop database")
        assert shell.tray is not None
        shell.tray.menu.aboutToShow.emit()
        texts = shell.tray.menu.texts()
        assert "Sync now" in texts  # not "Sync now (0 pending)"
        assert not any("never" in t or "0 pending" in t or "none in S3" in t for t in texts)
        status = shell.show_status()
        settle(qtbot, status)
        facts = {name: label.text() for name, label in status.fact_labels.items()}
        assert facts["Pending"].startswith("unknown (")
        assert facts["Backup"].startswith("unknown (the S3 bucket does not exist")
        assert facts["Last sync"].startswith("unknown (cannot connect")
    finally:
        dispose(shell)
