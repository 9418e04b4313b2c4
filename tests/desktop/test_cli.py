"""The ``market-sync`` command line over the engine: output formats and exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.cli import main
from shared.devtools.motoserver import MotoServer
from tests.helpers import TICKS_DDL, World, at_ist


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer, tmp_home: Path) -> World:
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    w.instance(TICKS_DDL)
    w.instance("INSERT INTO my_schema.ticks VALUES (1, '2026-11-20 10:00+05:30', '2026-11-20', "
               "10.5, 100), (2, '2026-11-20 10:00+05:30', '2026-11-20', 20.25, 200)")
    w.backup(at_ist("2026-11-20", 12))
    return w


def run(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(world.laptop_config.path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_sync_json_reports_counts_and_exit_0(world: World,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(world, capsys, "sync", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True
    assert doc["rows_new"] == 2 and doc["dumps"][0]["tables"][0]["name"] == "my_schema.ticks"


def test_history_and_conflicts_show_what_happened(world: World,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run(world, capsys, "sync")
    world.laptop("UPDATE my_schema.ticks SET volume = 1 WHERE instrument_token = 1")
    world.backup(at_ist("2026-11-20", 16))
    code, out, _ = run(world, capsys, "sync", "--policy", "local-wins")
    assert code == 0 and "1 conflict saved" in out

    code, out, _ = run(world, capsys, "history", "--json")
    assert code == 0 and len(json.loads(out)["dumps"]) == 2

    code, out, _ = run(world, capsys, "conflicts", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 1
    assert rows[0]["instrument_token"] == "1"  # one column per key part
    assert rows[0]["exchange_timestamp"] == "2026-11-20 10:00:00 IST"  # in IST, labelled
    assert rows[0]["laptop:volume"] == "1" and rows[0]["incoming:volume"] == "100"
    assert float(rows[0]["laptop:last_price"]) == float(rows[0]["incoming:last_price"]) == 10.5
    assert rows[0]["winner"] == "local" and rows[0]["detected_at_ist"]


def test_abort_policy_exits_3(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    run(world, capsys, "sync")
    world.laptop("UPDATE my_schema.ticks SET volume = 1 WHERE instrument_token = 1")
    world.backup(at_ist("2026-11-20", 16))
    code, out, _ = run(world, capsys, "sync", "--policy", "abort")
    assert code == 3 and "policy abort applied nothing" in out


def test_bad_config_is_one_clear_error_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('[aws]\nregion = "ap-south-1"\nbucket = 5\n[database]\nconninfo = "x"\n')
    result = subprocess.run([sys.executable, "-m", "desktop.cli", "--config", str(bad), "sync"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(bad) in result.stderr and "line 3" in result.stderr and "bucket" in result.stderr


def test_missing_config_says_how_to_make_one(tmp_home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sync"])
    assert code == 1 and "no configuration file" in capsys.readouterr().err


def test_agent_trading_day_exit_codes() -> None:
    from ec2.cli import main as agent

    assert agent(["trading-day", "2026-11-23"]) == 0
    assert agent(["trading-day", "2026-11-24"]) == 1  # Guru Nanak Jayanti
    assert agent(["trading-day", "2026-11-28"]) == 1  # Saturday


def test_demo_runs_the_whole_chain_and_cleans_up(tmp_home: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "desktop.cli", "demo", "--headless",
                             "--days", "2", "--step", "60"], capture_output=True, text=True,
                            check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 of 2 pending dumps applied" in result.stdout
    assert "2 conflicts saved" in result.stdout
    assert "RELIANCE-EQ" in result.stdout
