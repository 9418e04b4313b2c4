"""The tray's "App secrets…" and "Set today's access token…" against the moto server, through
the real worker child process: values reach SSM as SecureString under the stack's app-env path,
and no stored value is ever shown (or put on a command line)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel, QLineEdit, QListWidget, QWidget
from pytestqt.qtbot import QtBot

from desktop.ui.controller import AppController
from desktop.ui.shell import Shell
from shared.config import Config
from shared.devtools.motoserver import MotoServer
from tests.desktop.ec2_world import ec2_client, laptop_config, launch
from tests.desktop.ui.conftest import OFFSCREEN_LIMITS, dispose, fixed_clock

WAIT = 30_000
STACK = "ms-tray"
PATH = f"/market-sync/{STACK}/app-env"
pytestmark = pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS)


@pytest.fixture
def config(tmp_home: Path, moto_server: MotoServer, bucket: str) -> Config:
    moto_server.reset()
    instance_id = launch(ec2_client(moto_server.endpoint_url))
    base = laptop_config(tmp_home, endpoint=moto_server.endpoint_url, bucket=bucket,
                         conninfo="host=127.0.0.1 port=1 dbname=none",
                         instance_id=instance_id)
    return replace(base, aws=replace(base.aws, stack=STACK))


@pytest.fixture
def ssm(moto_server: MotoServer) -> Any:
    import boto3

    return boto3.client("ssm", region_name="ap-south-1", endpoint_url=moto_server.endpoint_url)


@pytest.fixture
def shell(qtbot: QtBot, config: Config) -> Iterator[Shell]:
    controller = AppController(config)
    controller.clock = fixed_clock()
    shell = Shell(controller, use_tray=False)
    yield shell
    dispose(shell)


def _shown_texts(widget: QWidget) -> str:
    """Everything a person could read in the dialog (labels, fields, list entries)."""
    texts = [w.text() for w in widget.findChildren(QLabel)]
    texts += [w.text() for w in widget.findChildren(QLineEdit)]
    for names in widget.findChildren(QListWidget):
        texts += [names.item(i).text() for i in range(names.count())]
    return "\n".join(texts)


def _stored(ssm: Any, name: str) -> dict[str, Any]:
    return ssm.get_parameter(Name=f"{PATH}/{name}", WithDecryption=True)[  # type: ignore[no-any-return]
        "Parameter"]


def test_app_secrets_are_written_to_ssm_and_never_shown(qtbot: QtBot, shell: Shell,
                                                         ssm: Any) -> None:
    ssm.put_parameter(Name=f"{PATH}/KITE_API_KEY", Value="stored-api-key",
                      Type="SecureString")
    dialog = shell.show_app_secrets()
    qtbot.waitUntil(lambda: dialog.names.count() == 1, timeout=WAIT)
    assert dialog.names.item(0).text() == "KITE_API_KEY"
    assert "stored-api-key" not in _shown_texts(dialog)

    dialog.names.setCurrentRow(0)  # choosing a name fills the name, never the value
    assert dialog.name.text() == "KITE_API_KEY" and dialog.value.text() == ""
    dialog.name.setText("kite_api_secret")
    dialog.value.setText("the-api-secret")
    assert dialog.value.echoMode() == QLineEdit.EchoMode.Password
    with qtbot.waitSignal(dialog.changed, timeout=WAIT):
        job = dialog.store()
    assert job is not None and "the-api-secret" not in " ".join(job.argv)  # type: ignore[attr-defined]
    parameter = _stored(ssm, "KITE_API_SECRET")
    assert parameter["Value"] == "the-api-secret" and parameter["Type"] == "SecureString"
    qtbot.waitUntil(lambda: dialog.names.count() == 2, timeout=WAIT)
    assert "the-api-secret" not in _shown_texts(dialog) and dialog.value.text() == ""

    dialog.names.setCurrentRow(0)
    with qtbot.waitSignal(dialog.changed, timeout=WAIT):
        dialog.remove()
    names = [p["Name"] for p in ssm.describe_parameters()["Parameters"]]
    assert names == [f"{PATH}/KITE_API_SECRET"]


def test_a_bad_name_is_one_sentence_and_nothing_is_written(qtbot: QtBot, shell: Shell,
                                                             ssm: Any) -> None:
    dialog = shell.show_app_secrets()
    dialog.name.setText("KITE API KEY")
    dialog.value.setText("x")
    job = dialog.store()
    assert job is not None
    qtbot.waitUntil(lambda: "not a variable name" in dialog.status.text(), timeout=WAIT)
    assert "Traceback" not in dialog.status.text()
    assert ssm.describe_parameters()["Parameters"] == []


def test_todays_access_token(qtbot: QtBot, shell: Shell, ssm: Any) -> None:
    dialog = shell.set_access_token()
    assert dialog is not None
    dialog.value.setText("token-of-today")
    with qtbot.waitSignal(dialog.changed, timeout=WAIT):
        dialog.store()
    assert _stored(ssm, "KITE_ACCESS_TOKEN")["Value"] == "token-of-today"
    assert "token-of-today" not in _shown_texts(dialog)


def test_the_apps_login_page_opens_at_the_instances_address(
        qtbot: QtBot, shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    from desktop.ui import appsecrets

    opened: list[str] = []
    monkeypatch.setattr(appsecrets, "open_login_page",
                        lambda url: opened.append(url.toString()) or True)
    config = shell.controller.config
    shell.controller.config = replace(config, app=replace(config.app, login_path="/login"))
    shell.controller.poll()
    qtbot.waitUntil(lambda: shell.controller.snapshot is not None, timeout=WAIT)
    snapshot = shell.controller.snapshot
    assert snapshot is not None and snapshot.instance is not None
    ip = snapshot.instance.public_ip
    assert ip  # moto gives the running instance a public address
    assert shell.set_access_token() is None
    assert opened == [f"http://{ip}:8000/login"]


def test_the_tray_menu_offers_both_actions(qtbot: QtBot, config: Config) -> None:
    from desktop.ui.tray import TrayMenu

    controller = AppController(config)
    shell = Shell(controller, use_tray=False)
    try:
        texts = TrayMenu(controller, shell).texts()
        assert "App secrets…" in texts and "Set today's access token…" in texts
    finally:
        dispose(shell)
