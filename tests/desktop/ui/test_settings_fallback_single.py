"""Settings round trip (file + in-memory keyring + login item), the fallback window where
there is no tray, notification levels, and one instance per user."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from desktop.system.autostart import XdgAutostart
from desktop.ui.app import run_tray
from desktop.ui.controller import AppController, Notice
from desktop.ui.notify import passes
from desktop.ui.runner import Runner
from desktop.ui.settings import SettingsDialog
from desktop.ui.shell import Shell
from desktop.ui.single import SingleInstance, server_name
from shared.config import ConflictPolicy, NotificationLevel, load_config
from shared.secrets import DATABASE_PASSWORD, SERVICE
from tests.desktop.ui.conftest import OFFSCREEN_LIMITS, MemoryKeyring, TrayWorld, dispose

pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS)


@pytest.fixture
def dialog(qtbot: QtBot, tray_world: TrayWorld, tmp_path: Path) -> SettingsDialog:
    runner = Runner()
    dialog = SettingsDialog(tray_world.config, runner,
                            XdgAutostart(["market-sync", "tray"], tmp_path / "autostart"))
    qtbot.addWidget(dialog)
    return dialog


def test_settings_round_trip_writes_the_file_and_the_keyring(
        qtbot: QtBot, dialog: SettingsDialog, tray_world: TrayWorld,
        memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    dialog.profile.setText("market-sync")
    dialog.region.setCurrentText("ap-south-1")
    dialog.instance.setText("i-0fedcba9876543210")
    dialog.password.setText("s3cret")
    dialog.policy.setCurrentIndex(dialog.policy.findData("local-wins"))
    dialog.notifications.setCurrentIndex(dialog.notifications.findData("errors-only"))
    dialog.login.setChecked(True)
    dialog.add_columns.setChecked(True)

    with qtbot.waitSignal(dialog.saved) as saved:
        dialog.save()

    config = load_config(tray_world.config.path)
    assert saved.args[0] == config
    assert config.aws.profile == "market-sync"
    assert config.aws.instance_id == "i-0fedcba9876543210"
    assert config.sync.policy is ConflictPolicy.LOCAL_WINS
    assert config.ui.notifications is NotificationLevel.ERRORS_ONLY
    assert (config.sync.add_missing_columns, config.sync.keep_dropped_columns) == (True, False)
    assert config.tables == tray_world.config.tables  # the rest of the file is kept
    assert config.app.health_url == tray_world.config.app.health_url
    assert memory_keyring.items[(SERVICE, DATABASE_PASSWORD)] == "s3cret"
    assert "s3cret" not in tray_world.config.path.read_text()
    assert (tmp_path / "autostart" / "market-sync.desktop").exists()

    again = SettingsDialog(config, Runner(), XdgAutostart(["market-sync", "tray"],
                                                          tmp_path / "autostart"))
    qtbot.addWidget(again)
    assert again.values() == dialog.values()
    assert again.login.isChecked()


def test_settings_refuse_a_keyring_that_keeps_nothing_unless_opted_in(
        qtbot: QtBot, dialog: SettingsDialog, tray_world: TrayWorld,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    import keyring.backend

    keyring.set_keyring(FailKeyring())  # this machine has no keyring worth the name
    monkeypatch.setattr(keyring.backend, "get_all_keyring", lambda: [FailKeyring()])
    before = tray_world.config.path.read_text()
    dialog.password.setText("s3cret")

    dialog.save()

    assert "no secure keyring" in dialog.error.text()
    assert tray_world.config.path.read_text() == before
    dialog.insecure.setChecked(True)
    dialog.save()  # opted in: the fail keyring still cannot store, and says so
    assert "refused to store" in dialog.error.text()


def test_settings_test_button_connects_to_the_laptop_database(
        qtbot: QtBot, dialog: SettingsDialog) -> None:
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("✔"), timeout=20_000)
    assert "PostgreSQL" in dialog.test_result.text()

    dialog.conninfo.setText("host=127.0.0.1 port=9 dbname=nope connect_timeout=2")
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("✘"), timeout=20_000)
    assert "cannot connect" in dialog.test_result.text()


def test_a_bad_value_is_refused_with_a_sentence(qtbot: QtBot, dialog: SettingsDialog,
                                                tray_world: TrayWorld) -> None:
    dialog.conninfo.setText("host=localhost password=hunter2")
    dialog.save()
    assert "conninfo contains a password" in dialog.error.text()
    assert "hunter2" not in tray_world.config.path.read_text()


def test_without_a_tray_the_status_window_is_the_app(qtbot: QtBot,
                                                     tray_world: TrayWorld) -> None:
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen: no tray host
    controller = AppController(tray_world.config)
    shell = Shell(controller)  # decides by itself
    try:
        assert shell.tray is None
        window = shell.status_window
        assert window is not None and window.isVisible()
        assert window.quit_button.text() == "Quit"
        with qtbot.waitSignal(controller.viewChanged, timeout=20_000,
                              check_params_cb=lambda v: "running" in v.state_line):
            controller.poll()
        assert "running" in window.state_line.text()
        assert window.sync_button.text().startswith("Sync now (0 pending)")
        assert not window.start_button.isEnabled() and window.stop_button.isEnabled()

        controller.notice.emit(Notice("sync", "Sync failed", "the bucket is gone", error=True))
        assert window.banner.isVisible() and "the bucket is gone" in window.banner.text()
    finally:
        dispose(shell)


@pytest.mark.parametrize(("level", "info", "error"), [
    (NotificationLevel.ALL, True, True),
    (NotificationLevel.ERRORS_ONLY, False, True),
    (NotificationLevel.OFF, False, False),
])
def test_notifications_honour_the_level(level: NotificationLevel, info: bool,
                                        error: bool) -> None:
    assert passes(Notice("sync", "Sync finished", "ok"), level) is info
    assert passes(Notice("sync", "Sync failed", "no", error=True), level) is error


def test_a_second_instance_wakes_the_first_and_steps_aside(qtbot: QtBot) -> None:
    name = server_name(f"test-{id(qtbot)}")
    first, second = SingleInstance(name), SingleInstance(name)
    assert first.claim()
    try:
        with qtbot.waitSignal(first.activated, timeout=5000):
            assert not second.claim()
    finally:
        first.release()
    assert second.claim()  # the first is gone: the name is free again
    second.release()


def test_run_tray_returns_0_when_another_tray_runs(qtbot: QtBot, tray_world: TrayWorld) -> None:
    import logging

    first = SingleInstance(server_name(str(tray_world.config.path)))
    assert first.claim()
    handlers = list(logging.getLogger().handlers)
    try:
        with qtbot.waitSignal(first.activated, timeout=5000):
            assert run_tray(tray_world.config) == 0
    finally:
        first.release()
        for handler in logging.getLogger().handlers:
            if handler not in handlers:
                logging.getLogger().removeHandler(handler)
                handler.close()


def test_the_settings_file_is_toml_with_a_ui_section(qtbot: QtBot, dialog: SettingsDialog,
                                                     tray_world: TrayWorld) -> None:
    dialog.save()
    data = tomllib.loads(tray_world.config.path.read_text())
    assert data["ui"] == {"notifications": "all", "allow_insecure_keyring": False}


@pytest.mark.parametrize(("field", "value", "words"), [
    ("region", "ap-south1", "Region: region 'ap-south1' is not an AWS region (did you mean "
     "'ap-south-1'?)"),
    ("bucket", "My_Bucket", "Bucket: bucket name 'My_Bucket' breaks S3's naming rules"),
    ("instance", "i-123", "Instance: instance id 'i-123' is not an EC2 instance id"),
    ("conninfo", "host=localhost dbnam=market", "Connection: conninfo has an unknown keyword "
     "'dbnam' (did you mean 'dbname'?)"),
])
def test_settings_refuse_to_save_what_would_break_the_tray(
        qtbot: QtBot, dialog: SettingsDialog, tray_world: TrayWorld, field: str, value: str,
        words: str) -> None:
    before = tray_world.config.path.read_text()
    widget = getattr(dialog, field)
    (widget.setCurrentText if field == "region" else widget.setText)(value)
    saved: list[object] = []
    dialog.saved.connect(saved.append)

    dialog.save()

    assert dialog.error.text().startswith("Not saved: ") and words in dialog.error.text()
    assert tray_world.config.path.read_text() == before and saved == []
