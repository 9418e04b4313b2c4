"""The small things a trader notices: a CLI sync's conflicts reach the tray at its next
poll, "Open logs" says where the logs are when no file manager opens, and cancelling
never shows "100%"."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from PySide6.QtGui import QDesktopServices
from pytestqt.qtbot import QtBot

from desktop.cli import main
from desktop.engine.progress import SyncProgress
from desktop.ui.jobs import JobFailure
from desktop.ui.progress import SyncWindow
from desktop.ui.runner import JobContext, Runner
from desktop.ui.shell import Shell
from desktop.ui.viewmodel import TrayState
from shared.errors import Cancelled
from tests.desktop.ui.conftest import (
    OFFSCREEN_LIMITS,
    TrayWorld,
    open_shell,
    poll,
)
from tests.desktop.ui.test_windows import make_conflicts

WAIT = 30_000
pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS)


@pytest.fixture
def shell(qtbot: QtBot, tray_world: TrayWorld) -> Iterator[Shell]:
    yield from open_shell(tray_world, use_tray=True, log_dir=tray_world.world.tmp / "logs")


def test_a_cli_sync_that_finds_conflicts_puts_the_tray_in_attention(
        qtbot: QtBot, tray_world: TrayWorld, shell: Shell,
        capsys: pytest.CaptureFixture[str]) -> None:
    make_conflicts(tray_world)  # one dump applied; the next one will conflict
    poll(qtbot, shell.controller, WAIT)
    assert shell.controller.view.state is not TrayState.ATTENTION

    assert main(["--config", str(tray_world.config.path), "sync"]) == 0  # in a terminal
    assert "4 conflicts saved" in capsys.readouterr().out
    poll(qtbot, shell.controller, WAIT)

    assert shell.controller.view.state is TrayState.ATTENTION
    assert "4 conflicts to review" in shell.controller.view.attention
    shell.show_conflicts()  # looked at: attention goes
    assert shell.controller.view.state is not TrayState.ATTENTION


def test_open_logs_says_where_the_logs_are_when_no_file_manager_opens(
        qtbot: QtBot, shell: Shell, tray_world: TrayWorld,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda _url: False)

    assert shell.open_logs() is False

    box = shell.logs_box
    assert box is not None and box.isVisible()
    assert str(tray_world.world.tmp / "logs") in box.text()
    assert "market-sync.log" in box.text()
    box.close()


def test_cancelling_never_shows_100_percent(qtbot: QtBot) -> None:
    runner = Runner()
    window = SyncWindow()
    qtbot.addWidget(window)

    def sync(ctx: JobContext) -> object:
        ctx.report(SyncProgress("applying", "d1", 1, 1, "t", 10, 10, 40, 100, 10, 10, 40, 100))
        while not ctx.cancel.cancelled:
            time.sleep(0.01)
        # What an engine may still report while it rolls back: it must not read as done.
        ctx.report(SyncProgress("done", "d1", 1, 1, None, 10, 10, 100, 100, 10, 10, 100, 100))
        raise Cancelled("cancelled; nothing of the dump in flight was kept")

    job = runner.run("sync", sync)
    window.follow(job)
    qtbot.waitUntil(lambda: window.total_bar.value() > 0, timeout=WAIT)
    with qtbot.waitSignal(job.failed, timeout=WAIT) as failed:
        window.cancel_button.click()
    assert isinstance(failed.args[0], JobFailure) and failed.args[0].cancelled

    assert window.heading.text() == "Sync cancelled"
    assert window.total_bar.value() < 1000 and window.dump_bar.value() < 1000
    assert "100%" not in window.total_bar.text() and "100%" not in window.dump_bar.text()
    runner.shutdown()
