"""The tray: icons per state, state changes driven by the real engine (moto EC2 + S3,
throwaway PostgreSQL), the menu rebuilt on open, polling back-off."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from desktop.ui import services
from desktop.ui.controller import Poller
from desktop.ui.icons import state_pixmap
from desktop.ui.shell import Shell
from desktop.ui.viewmodel import TrayState
from tests.desktop.ec2_world import at
from tests.desktop.ui.conftest import (
    OFFSCREEN_LIMITS,
    TrayWorld,
    fixed_clock,
    open_shell,
    poll,
)

WAIT = 20_000
# The offscreen platform has no tray host; showing the icon there says so once.
pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS)


@pytest.fixture
def shell(qtbot: QtBot, tray_world: TrayWorld) -> Iterator[Shell]:
    yield from open_shell(tray_world, use_tray=True)


def test_every_state_has_its_own_icon(qtbot: QtBot) -> None:
    images: dict[TrayState, QImage] = {s: state_pixmap(s, 32).toImage() for s in TrayState}

    for a in TrayState:
        for b in TrayState:
            if a is not b:
                assert images[a] != images[b], (a, b)
    for image in images.values():
        assert image.pixelColor(16, 16).alpha() == 255  # an opaque glyph, not a blank


def test_the_icon_differs_in_shape_not_only_colour(qtbot: QtBot) -> None:
    def mask(state: TrayState) -> list[bool]:
        image = state_pixmap(state, 32).toImage()
        return [image.pixelColor(x, y).alpha() > 128 for x in range(32) for y in range(32)]

    shapes = {s: mask(s) for s in (TrayState.STOPPED, TrayState.HEALTHY, TrayState.UNHEALTHY,
                                   TrayState.ATTENTION, TrayState.SYNCING)}
    assert len({tuple(m) for m in shapes.values()}) == len(shapes)


def test_a_running_instance_with_a_healthy_app_shows_healthy(qtbot: QtBot, shell: Shell) -> None:
    poll(qtbot, shell.controller, WAIT)

    assert shell.controller.view.state in (TrayState.HEALTHY, TrayState.ATTENTION)
    assert "running" in shell.controller.view.state_line
    assert shell.controller.snapshot is not None
    assert shell.controller.snapshot.health is not None
    assert shell.controller.snapshot.health.ok


def test_the_app_not_answering_shows_unhealthy(qtbot: QtBot, tray_world: TrayWorld,
                                               shell: Shell) -> None:
    tray_world.backup("2025-06-13")
    shell.controller.config = shell.controller.config.__class__(
        **{**shell.controller.config.__dict__,
           "app": shell.controller.config.app.__class__(health_url="http://127.0.0.1:9/health")})
    poll(qtbot, shell.controller, WAIT)

    snapshot = shell.controller.snapshot
    assert snapshot is not None and snapshot.health is not None and not snapshot.health.ok
    assert not snapshot.errors and not snapshot.gaps, snapshot
    assert shell.controller.view.state is TrayState.UNHEALTHY
    assert shell.tray is not None and shell.tray.state is TrayState.UNHEALTHY


def test_stop_then_start_from_the_menu_walks_the_states(qtbot: QtBot, tray_world: TrayWorld,
                                                         shell: Shell) -> None:
    tray_world.backup("2025-06-13")
    controller = shell.controller
    poll(qtbot, controller, WAIT)
    assert controller.view.state is TrayState.HEALTHY
    assert shell.tray is not None
    menu = shell.tray.menu

    menu.aboutToShow.emit()
    seen: list[TrayState] = []
    controller.viewChanged.connect(lambda v: seen.append(v.state))
    stop = next(a for a in menu.actions() if a.text() == "Stop instance")
    assert stop.isEnabled()
    with qtbot.waitSignal(controller.viewChanged, timeout=WAIT,
                          check_params_cb=lambda v: "stopped" in v.state_line):
        stop.trigger()
    assert TrayState.TRANSITION in seen
    assert controller.view.state is TrayState.STOPPED
    assert shell.tray.state is TrayState.STOPPED

    menu.aboutToShow.emit()
    start = next(a for a in menu.actions() if a.text() == "Start instance")
    assert start.isEnabled()
    assert not next(a for a in menu.actions() if a.text() == "Stop instance").isEnabled()
    with qtbot.waitSignal(controller.viewChanged, timeout=WAIT,
                          check_params_cb=lambda v: "running" in v.state_line):
        start.trigger()
    assert controller.view.state in (TrayState.HEALTHY, TrayState.TRANSITION)


def test_the_menu_is_rebuilt_with_the_current_facts(qtbot: QtBot, tray_world: TrayWorld,
                                                    shell: Shell) -> None:
    tray_world.ticks("2025-06-12", 50)
    tray_world.backup("2025-06-12")
    tray_world.ticks("2025-06-13", 50)
    tray_world.backup("2025-06-13")
    assert shell.tray is not None
    menu = shell.tray.menu
    menu.aboutToShow.emit()
    assert "Sync now" in menu.texts()  # nothing known yet

    poll(qtbot, shell.controller, WAIT)
    menu.aboutToShow.emit()
    texts = menu.texts()

    assert texts[0].startswith("Instance running") and "seen" in texts[0]
    assert texts[0].endswith("seen 11:00 IST")  # the instance's times, in IST, labelled
    assert "Next app start: Mon 16 Jun 08:55 IST" in texts
    assert "Instance (AWS schedule): starts 08:50, safety stop 16:30 IST" in texts
    assert "App (on the instance): 08:55–15:35 IST, trading days" in texts
    assert "Sync now (2 pending)" in texts
    assert "Last sync: never" in texts
    for entry in ("Start instance", "Stop instance", "Conflicts…", "History…", "Settings…",
                  "Open logs", "Quit"):
        assert entry in texts
    assert "Cancel sync" not in texts


def test_a_missing_backup_puts_the_tray_in_attention_and_notifies(
        qtbot: QtBot, tray_world: TrayWorld, shell: Shell) -> None:
    tray_world.ticks("2025-06-12", 20)
    tray_world.backup("2025-06-12")
    shell.controller.clock = fixed_clock(at("2025-06-13", 17, 0))  # Friday's is overdue
    poll(qtbot, shell.controller, WAIT)

    snapshot = shell.controller.snapshot
    assert snapshot is not None and snapshot.backup_missing
    assert shell.controller.view.state is TrayState.ATTENTION
    assert any("Gap" in line and "13 Jun" in line for line in shell.controller.view.attention)
    assert {n.key for n in shell.notifier.shown} >= {"backup", "gap"}
    assert shell.tray is not None and shell.tray.state is TrayState.ATTENTION

    poll(qtbot, shell.controller, WAIT)  # the same facts again: no second notification
    assert [n.key for n in shell.notifier.shown].count("backup") == 1


def test_an_unknown_instance_is_attention_with_a_sentence(qtbot: QtBot, tray_world: TrayWorld,
                                                          shell: Shell) -> None:
    from dataclasses import replace

    config = tray_world.config
    shell.controller.config = replace(config, aws=replace(config.aws,
                                                          instance_id="i-0000000000000dead"))
    poll(qtbot, shell.controller, WAIT)

    assert shell.controller.view.state is TrayState.ATTENTION
    assert any("does not exist" in line for line in shell.controller.view.attention)
    assert shell.controller.poller.failures == 1


def test_polling_backs_off_on_errors_and_recovers(qtbot: QtBot) -> None:
    poller = Poller(healthy_ms=30_000, transition_ms=5_000, max_ms=300_000)

    poller.succeeded(transitioning=False)
    assert poller.interval_ms == 30_000
    intervals = []
    for _ in range(5):
        poller.failed()
        intervals.append(poller.interval_ms)
    assert intervals == [60_000, 120_000, 240_000, 300_000, 300_000]
    poller.succeeded(transitioning=True)
    assert poller.interval_ms == 5_000
    poller.succeeded(transitioning=False)
    assert poller.interval_ms == 30_000
    assert poller.timer.isActive()
    poller.stop()


def poll_with_worker(qtbot: QtBot, shell: Shell, code: str) -> list[str]:
    """Poll through a stand-in worker (``python -c code``); the attention lines after it."""
    shell.controller.runner.worker = (sys.executable, "-c", code)
    poll(qtbot, shell.controller, WAIT)
    return list(shell.controller.view.attention)


@pytest.mark.parametrize(("code", "sentence"), [
    ("import sys; sys.exit(3)",
     "The background worker stopped with exit code 3 without an answer."),
    ("raise RuntimeError('boom')",
     "The background worker stopped with exit code 1 without an answer."),
    ("print('{\"result\": {\"instance\": 1}}')",
     "The background worker's answer could not be read."),
    ("print('not json'); import sys; sys.exit(0)",
     "The background worker stopped with exit code 0 without an answer."),
    ("import json; print(json.dumps({'error': {'message': 'The keyring is locked.', "
     "'hint': 'unlock it', 'kind': 'SecretStoreError', 'cancelled': False}})); exit(1)",
     "The keyring is locked."),
])
def test_a_worker_failure_is_attention_with_one_sentence(qtbot: QtBot, shell: Shell, code: str,
                                                         sentence: str) -> None:
    attention = poll_with_worker(qtbot, shell, code)

    assert shell.controller.view.state is TrayState.ATTENTION
    assert attention == [sentence]
    assert "Traceback" not in shell.controller.view.tooltip
    assert shell.controller.poller.failures == 1


def test_a_worker_that_hangs_is_stopped_after_the_timeout(qtbot: QtBot, shell: Shell,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "STATUS_TIMEOUT_MS", 1_000)

    attention = poll_with_worker(qtbot, shell, "import time; time.sleep(60)")

    assert attention == ["The status request took longer than 1 s and was stopped."]
    assert shell.controller.view.state is TrayState.ATTENTION


def test_the_tray_process_never_imports_boto3_or_psycopg(qtbot: QtBot,
                                                         tray_world: TrayWorld) -> None:
    """A real tray in a process of its own: a poll through the worker, every window built;
    the engine's heavy modules stay in the child."""
    probe = """
import json, sys
from pathlib import Path
from desktop.ui.app import application, start_shell
from shared.config import load_config
app = application()
shell = start_shell(load_config(Path(sys.argv[1])), use_tray=False)
for show in (shell.show_status, shell.show_progress, shell.show_history, shell.show_conflicts,
             shell.show_settings):
    show()
controller = shell.controller
while controller.snapshot is None or controller.runner.jobs:
    app.processEvents()
state = controller.view.state_line
shell.dispose()
print(json.dumps({"state": state, "heavy": sorted(
    m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "psycopg"))}))
"""
    done = subprocess.run([sys.executable, "-c", probe, str(tray_world.config.path)],
                          capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert "running" in answer["state"]
    assert answer["heavy"] == []
