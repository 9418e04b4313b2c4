"""``market-sync start --keep-running-until TIME``: the tag the instance's guards read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import ec2.guard
from desktop.cli import main
from ec2.guard import KEEP_RUNNING_TAG, parse_keep_running
from shared.calendar import IST
from shared.devtools.motoserver import MotoServer
from tests.desktop.ec2_world import ec2_client, laptop_config, launch

NOW = dt.datetime(2026, 11, 28, 11, 0, tzinfo=IST)  # a Saturday morning


@pytest.fixture
def instance(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(ec2.guard, "now", lambda: NOW)
    return launch(ec2_client(moto_server.endpoint_url))


def _tags(moto_server: MotoServer, instance_id: str) -> dict[str, str]:
    described = ec2_client(moto_server.endpoint_url).describe_tags(
        Filters=[{"Name": "resource-id", "Values": [instance_id]}])
    return {t["Key"]: t["Value"] for t in described["Tags"]}


@pytest.mark.parametrize(("given", "expected"), [
    ("18:30", dt.datetime(2026, 11, 28, 18, 30, tzinfo=IST)),
    ("2026-11-29T09:15", dt.datetime(2026, 11, 29, 9, 15, tzinfo=IST)),
    ("2026-11-28T10:00Z", dt.datetime(2026, 11, 28, 15, 30, tzinfo=IST)),
])
def test_start_sets_the_keep_running_tag(tmp_path: Path, moto_server: MotoServer,
                                         instance: str, given: str, expected: dt.datetime,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = laptop_config(tmp_path, endpoint=moto_server.endpoint_url, bucket="data-b",
                           conninfo="dbname=x", instance_id=instance)
    assert main(["--config", str(config.path), "start", "--keep-running-until", given]) == 0
    assert "kept running until" in capsys.readouterr().out
    assert parse_keep_running(_tags(moto_server, instance)[KEEP_RUNNING_TAG]) == expected


@pytest.mark.parametrize("given", ["10:30", "tonight", "25:00"])
def test_a_past_or_bad_time_is_one_sentence_and_changes_nothing(
        tmp_path: Path, moto_server: MotoServer, instance: str, given: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = laptop_config(tmp_path, endpoint=moto_server.endpoint_url, bucket="data-b",
                           conninfo="dbname=x", instance_id=instance)
    assert main(["--config", str(config.path), "start", "--keep-running-until", given]) == 2
    err = capsys.readouterr().err
    assert "--keep-running-until" in err and "Traceback" not in err
    assert KEEP_RUNNING_TAG not in _tags(moto_server, instance)
