"""``market-sync status|start|stop`` over moto, PostgreSQL and a 127.0.0.1 app: output and
exit codes; bad config, unknown instance and missing credentials as one clear sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop.cli import main
from desktop.engine import instance as instance_module
from shared.devtools.motoserver import MotoServer
from tests.desktop.ec2_world import AppServer, at, ec2_client, laptop_config, launch
from tests.helpers import TICKS_DDL, World, at_ist

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app() -> Iterator[AppServer]:
    with AppServer() as server:
        yield server


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer, tmp_home: Path) -> World:
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    w.instance(TICKS_DDL)
    return w


def config_path(world: World, instance_id: str, health_url: str | None = None) -> str:
    config = laptop_config(world.tmp, endpoint=world.endpoint, bucket=world.bucket,
                           conninfo=world.laptop_db, instance_id=instance_id,
                           health_url=health_url)
    return str(config.path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def evening(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock at a trading day's evening (outside market hours)."""
    monkeypatch.setattr(instance_module, "now_ist", lambda: at("2026-11-23", 18))


@pytest.fixture
def market_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instance_module, "now_ist", lambda: at("2026-11-23", 11))


def test_status_json_is_one_object_with_every_part(world: World, app: AppServer,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    instance_id = launch(ec2_client(world.endpoint))
    world.instance("INSERT INTO my_schema.ticks VALUES (1, now(), current_date, 1, 1)")
    world.backup()
    world.sync()
    path = config_path(world, instance_id, app.url("/health"))

    code, out, _ = run(capsys, "--config", path, "status", "--json")

    doc = json.loads(out)
    assert code == 0, doc
    assert doc["instance"]["instance_id"] == instance_id and doc["health"]["ok"] is True
    assert doc["pending_dumps"] == 0 and doc["last_sync"] is not None


def test_status_text_shows_a_problem_and_exits_1(world: World,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--config", config_path(world, "i-0123456789abcdef0"),
                         "status")

    assert code == 1 and "Traceback" not in out + err
    assert "Problem:   The EC2 instance does not exist in this region" in out
    assert "Pending    0 dumps to sync" in out


def test_stop_and_start_with_wait(world: World, evening: None,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    instance_id = launch(ec2_client(world.endpoint))
    path = config_path(world, instance_id)

    code, out, _ = run(capsys, "--config", path, "stop", "--wait")
    assert code == 0 and f"{instance_id} (t3.small): stopped" in out

    code, out, _ = run(capsys, "--config", path, "start", "--wait", "--json")
    assert code == 0 and json.loads(out)["instance"]["state"] == "running"


def test_stop_in_market_hours_without_force_exits_2_with_one_sentence(
        world: World, market_hours: None, capsys: pytest.CaptureFixture[str]) -> None:
    instance_id = launch(ec2_client(world.endpoint))
    path = config_path(world, instance_id)

    code, out, err = run(capsys, "--config", path, "stop")

    assert code == 2 and out == ""
    assert err.startswith(f"market-sync: not stopping {instance_id}: the market is open")
    assert "--force" in err and "Traceback" not in err

    code, out, _ = run(capsys, "--config", path, "stop", "--force", "--wait")
    assert code == 0 and "stopped" in out


def test_unknown_instance_on_start_is_one_sentence(world: World,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--config", config_path(world, "i-0123456789abcdef0"), "start")

    assert code == 1 and out == ""
    assert err.startswith("market-sync: the EC2 instance does not exist in this region")


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "desktop.cli", *args], capture_output=True,
                          text=True, check=False, cwd=ROOT, env=env, timeout=120)


def _no_credentials_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"), AWS_CONFIG_FILE=str(tmp / "none"),
               AWS_EC2_METADATA_DISABLED="true")  # no credential lookups off this machine
    return env


def test_missing_credentials_on_stop_is_one_sentence_without_traceback(world: World,
                                                                       tmp_path: Path) -> None:
    path = config_path(world, "i-0123456789abcdef0")

    result = _cli(["--config", path, "stop", "--force"], _no_credentials_env(tmp_path))

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("market-sync: no AWS credentials found")


def test_missing_credentials_on_status_are_problems_not_a_traceback(world: World,
                                                                    tmp_path: Path) -> None:
    result = _cli(["--config", config_path(world, "i-0123456789abcdef0"), "status", "--json"],
                  _no_credentials_env(tmp_path))

    doc: dict[str, Any] = json.loads(result.stdout)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert doc["errors"] and all("No AWS credentials found" in e for e in doc["errors"])


def test_a_bad_config_is_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('[aws]\nregion = "ap-south-1"\nbucket = "market-data-b"\ninstance_id = 7\n'
                   '[database]\nconninfo = "dbname=x"\n')

    result = _cli(["--config", str(bad), "start"], dict(os.environ))

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert str(bad) in result.stderr and "line 4" in result.stderr
    assert "instance_id" in result.stderr


def test_no_instance_id_in_the_config_says_add_one(world: World,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = laptop_config(world.tmp, endpoint=world.endpoint, bucket=world.bucket,
                           conninfo=world.laptop_db, instance_id=None)

    code, _, err = run(capsys, "--config", str(config.path), "stop")

    assert code == 1 and "[aws] has no instance_id" in err


def test_status_with_a_gap_exits_4(world: World, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    instance_id = launch(ec2_client(world.endpoint))
    world.instance("INSERT INTO my_schema.ticks VALUES (1, '2026-11-20 10:00+05:30', "
                   "'2026-11-20', 1, 1)")
    world.backup(at_ist("2026-11-20"))
    monkeypatch.setattr(instance_module, "now_ist", lambda: at("2026-11-23", 17))

    code, out, _ = run(capsys, "--config", config_path(world, instance_id), "status")

    assert code == 4 and "Backup missing: no backup of 2026-11-23" in out
