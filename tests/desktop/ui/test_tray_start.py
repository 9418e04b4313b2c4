"""How the tray starts where things are not right: no display (one sentence, no Qt abort),
a broken config from a launcher (a window that says what and where), and the demo's tray
that finds a real conflict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from desktop.cli import main
from tests.desktop.ui.conftest import OFFSCREEN_LIMITS, dispose

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS)


def _tray(env_changes: dict[str, str | None], tmp_home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    return subprocess.run([sys.executable, "-m", "desktop.cli", "tray"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=env, check=False)


@pytest.mark.parametrize(("display", "words"), [
    ({}, "there is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set)"),
    ({"DISPLAY": ":987"}, "the display :987 is not running"),
])
def test_without_a_display_the_tray_says_so_instead_of_aborting(
        display: dict[str, str | None], words: str, tmp_home: Path) -> None:
    done = _tray(display, tmp_home)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(f"market-sync: {words}") and lines[1].lstrip().startswith("→")
    assert "Aborted" not in done.stderr and "qt.qpa" not in done.stderr


def test_a_broken_config_from_a_launcher_is_shown_in_a_window(
        qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('[aws]\nregion = "ap-south1"\nbucket = "market-data"\n'
                   '[database]\nconninfo = "dbname=market"\n')
    shown: list[tuple[str, str]] = []

    def exec_(box: QMessageBox) -> int:
        shown.append((box.text(), box.informativeText()))
        return int(QMessageBox.StandardButton.Close)

    monkeypatch.setattr(QMessageBox, "exec", exec_)

    assert main(["--config", str(bad), "tray"]) == 1

    assert len(shown) == 1
    text, detail = shown[0]
    assert text == f"The configuration {bad} cannot be used."
    assert f"{bad}, line 2: [aws] region 'ap-south1' is not an AWS region" in detail
    assert "did you mean 'ap-south-1'?" in detail


def test_the_demo_tray_finds_a_real_conflict(qtbot: QtBot, tmp_home: Path) -> None:
    from desktop.commands.demo import _first_sync_and_a_conflict
    from desktop.demo.scenario import simulate_days
    from desktop.demo.world import demo_world
    from desktop.ui.app import start_shell

    with demo_world(days=1, step_seconds=300) as world:  # a tick at 10:00, the edited one
        simulate_days(world, lambda _line: None, 300)
        _first_sync_and_a_conflict(world)
        shell = start_shell(world.laptop_config, demo=True, use_tray=False)
        controller = shell.controller
        try:
            qtbot.waitUntil(lambda: controller.snapshot is not None, timeout=30_000)
            assert controller.view.pending == 1  # the corrected day, waiting in S3
            with qtbot.waitSignal(controller.syncFinished, timeout=60_000) as finished:
                shell.sync_now()
            outcome: Any = finished.args[0]
            assert outcome.ok and outcome.conflicts >= 1
            window = shell.show_conflicts()
            qtbot.waitUntil(lambda: len(window.records) >= 1, timeout=30_000)
            assert {r.table_name for r in window.records} >= {"market.ticks"}
        finally:
            dispose(shell)
