"""``market-sync demo``: the simulated instance and app, the tray hook, and clean-up on Ctrl+C."""

from __future__ import annotations

import importlib.machinery
import re
import signal
import subprocess
import sys
import types
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from desktop.cli import main
from desktop.demo import tray as demo_tray
from desktop.demo import world as demo_world_module
from desktop.demo.scenario import demo_controller
from desktop.demo.tray import run_demo_tray
from desktop.demo.world import DemoWorld, demo_world

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_demo_world_has_an_instance_the_controller_drives_and_an_app(tmp_home: Path) -> None:
    with demo_world(days=1, step_seconds=600) as world:
        control = demo_controller(world)

        assert world.laptop_config.aws.instance_id == world.instance_id
        assert world.laptop_config.app.health_url == world.health_url
        assert control.state().state == "stopped"  # as after the evening's power-off
        assert control.start(wait=True, timeout=30).state == "running"
        assert control.health().ok
        assert world.app is not None
        world.app.healthy = False
        assert control.health().status == 503
        assert _get(world.health_url.replace("/health", "/other")) == 404


def test_ctrl_c_inside_the_demo_removes_everything(tmp_home: Path) -> None:
    seen: dict[str, Any] = {}
    with pytest.raises(KeyboardInterrupt), demo_world(days=1, step_seconds=600) as world:
        seen.update(folder=world.folder, health=world.health_url, s3=world.endpoint_url,
                    db=world.laptop_conninfo)
        raise KeyboardInterrupt

    assert not seen["folder"].exists()
    for url in (seen["health"], seen["s3"]):
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url, timeout=2)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(seen["db"], connect_timeout=2)


def test_headless_demo_starts_and_stops_the_instance_and_shows_status(tmp_home: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "desktop.cli", "demo", "--headless",
                             "--days", "2", "--step", "120"], capture_output=True, text=True,
                            check=False, timeout=300, cwd=ROOT)
    out = result.stdout

    assert result.returncode == 0, out + result.stderr
    assert re.search(r"EC2 instance i-[0-9a-f]+ \(simulated\), the app's health at "
                     r"http://127\.0\.0\.1:\d+/health", out)
    assert re.search(r"\$ market-sync start --wait\ni-[0-9a-f]+ \(t3\.small\): running", out)
    assert "app: healthy (HTTP 200)" in out
    assert re.search(r"\$ market-sync stop --wait.*\ni-[0-9a-f]+ \(t3\.small\): stopped", out)
    assert "Pending    2 dumps to sync" in out and "Pending    0 dumps to sync" in out
    assert "2 of 2 pending dumps applied" in out and "Demo finished" in out
    folder = Path(re.search(r"config in (\S+)/config\.toml", out).group(1))  # type: ignore[union-attr]
    assert not folder.exists()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_sigterm_and_sighup_during_the_demo_clean_up(tmp_home: Path,
                                                             stop: signal.Signals) -> None:
    process = subprocess.Popen([sys.executable, "-m", "desktop.cli", "demo", "--headless",
                                "--days", "10", "--step", "10"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    folder = s3 = postgres = None
    try:
        for line in process.stdout:
            found = re.search(r"S3 at (\S+), bucket \S+; config in (\S+)/config\.toml", line)
            if found:
                s3, folder = found.group(1), Path(found.group(2))
            pg = re.search(r"PostgreSQL at 127\.0\.0\.1:(\d+) \(throwaway\)", line)
            postgres = int(pg.group(1)) if pg else postgres
            if line.startswith("instance: collected"):
                break
        assert folder is not None and folder.exists() and postgres and s3
        assert _listening(postgres)  # the demo's PostgreSQL, before the signal
        process.send_signal(stop)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not folder.exists()  # its folders,
    assert not _listening(postgres)  # its PostgreSQL
    with pytest.raises(urllib.error.URLError):  # and its S3 endpoint are gone
        urllib.request.urlopen(s3, timeout=2)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_without_headless_and_no_tray_it_says_so_before_setting_up(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(demo_tray, "tray_available", lambda: "the tray is not part of this build")
    monkeypatch.setattr(demo_world_module, "demo_world", _must_not_run)

    code = main(["demo"])

    err = capsys.readouterr().err
    assert code == 1 and "the tray is not part of this build" in err
    assert "--headless" in err


def _must_not_run(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the demo world was built although the tray cannot run")


def test_run_demo_tray_hands_the_world_to_the_uis_run_tray(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[Any, Any]] = []
    fake = types.ModuleType("desktop.ui.app")
    fake.__spec__ = importlib.machinery.ModuleSpec("desktop.ui.app", None)

    def run_tray(config: Any, *, demo: Any = None) -> int:
        calls.append((config, demo))
        return 0

    fake.run_tray = run_tray  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "desktop.ui.app", fake)
    world = DemoWorld(agent_config=None, laptop_config="laptop-config",  # type: ignore[arg-type]
                      instance_conninfo="", laptop_conninfo="", endpoint_url="", bucket="",
                      folder=tmp_path, days=())

    assert run_demo_tray(world) == 0
    assert calls == [("laptop-config", True)]
