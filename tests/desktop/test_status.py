"""collect_status over the real parts: moto (EC2 and S3), the throwaway PostgreSQL, an HTTP
app on 127.0.0.1. Each part that fails is one sentence; the others are still shown."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop.engine import ledger
from desktop.engine.status import StatusSnapshot, collect_status, sentence
from shared.aws import AwsClients
from shared.config import Config
from shared.devtools.motoserver import MotoServer
from shared.devtools.pgcluster import free_port
from shared.errors import AwsError
from tests.desktop.ec2_world import AppServer, at, ec2_client, fixed, laptop_config, launch
from tests.helpers import TICKS_DDL, World, at_ist

MONDAY = "2026-11-23"


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer) -> World:
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    w.instance(TICKS_DDL)
    return w


@pytest.fixture
def app() -> Iterator[AppServer]:
    with AppServer() as server:
        yield server


def day_of_ticks(world: World, day: str) -> None:
    world.instance("INSERT INTO my_schema.ticks VALUES (1, %s::date + time '10:00', %s, 10.5, "
                   "100)", (day, day))


def config_for(world: World, *, instance_id: str | None, health_url: str | None = None,
               conninfo: str | None = None, bucket: str | None = None) -> Config:
    return laptop_config(world.tmp, endpoint=world.endpoint, bucket=bucket or world.bucket,
                         conninfo=conninfo or world.laptop_db, instance_id=instance_id,
                         health_url=health_url, name="status.toml")


def collect(config: Config, now: dt.datetime) -> StatusSnapshot:
    return collect_status(config, AwsClients(config.aws), clock=fixed(now))


def test_everything_readable_gives_every_part_and_no_errors(world: World,
                                                            app: AppServer) -> None:
    instance_id = launch(ec2_client(world.endpoint))
    day_of_ticks(world, "2026-11-20")
    world.backup(at_ist("2026-11-20"))
    world.sync()
    day_of_ticks(world, MONDAY)
    world.backup(at_ist(MONDAY))
    config = config_for(world, instance_id=instance_id, health_url=app.url("/health"))

    status = collect(config, at(MONDAY, 17))

    assert status.errors == () and status.ok
    assert status.instance is not None and status.instance.state == "running"
    assert status.health is not None and status.health.ok
    assert status.newest_backup is not None
    assert status.newest_backup.last_day == dt.date(2026, 11, 23)
    assert status.newest_backup.first_day == dt.date(2026, 11, 20)
    assert status.newest_backup.rows == 2 and status.newest_backup.bytes > 0
    assert status.last_sync is not None and status.last_sync.last_day == dt.date(2026, 11, 20)
    assert status.pending_dumps == 1
    assert status.gaps == () and not status.backup_missing
    assert status.schedule.next_start == at("2026-11-25", 8, 55)  # the 24th is a holiday
    assert status.collected_at == at(MONDAY, 17)


def test_health_is_not_probed_while_the_instance_is_stopped(world: World,
                                                            app: AppServer) -> None:
    instance_id = launch(ec2_client(world.endpoint), stopped=True)
    config = config_for(world, instance_id=instance_id, health_url=app.url("/health"))

    status = collect(config, at(MONDAY, 12))

    assert status.instance is not None and status.instance.state == "stopped"
    assert status.health is None and app.requests == 0


def test_an_unknown_instance_is_one_sentence_and_the_rest_is_shown(world: World) -> None:
    day_of_ticks(world, MONDAY)
    world.backup(at_ist(MONDAY))
    config = config_for(world, instance_id="i-0123456789abcdef0")

    status = collect(config, at(MONDAY, 17))

    assert status.instance is None and status.health is None
    assert len(status.errors) == 1 and "does not exist" in status.errors[0]
    assert status.newest_backup is not None and status.pending_dumps == 1


def test_an_unreachable_laptop_database_is_one_sentence(world: World) -> None:
    instance_id = launch(ec2_client(world.endpoint))
    day_of_ticks(world, MONDAY)
    world.backup(at_ist(MONDAY))
    config = config_for(world, instance_id=instance_id,
                        conninfo=f"host=127.0.0.1 port={free_port()} dbname=nothing")

    status = collect(config, at(MONDAY, 17))

    assert len(status.errors) == 1
    assert status.errors[0].startswith("Cannot connect to the laptop database")
    assert status.instance is not None and status.newest_backup is not None
    assert status.last_sync is None and status.pending_dumps is None  # unknown, not 0
    assert status.unknown["last_sync"].startswith("cannot connect to the laptop database")
    assert status.unknown["pending_dumps"] == status.unknown["last_sync"]
    doc = status.to_json()
    assert doc["pending_dumps"] is None and doc["pending_dumps_error"] == \
        status.unknown["pending_dumps"] and doc["newest_backup_error"] is None
    text = status.summary()
    assert "Last sync  unknown (cannot connect to the laptop database" in text
    assert "Pending    unknown (cannot connect" in text and "never" not in text
    assert StatusSnapshot.from_json(doc) == status


def test_a_missing_bucket_is_one_sentence(world: World) -> None:
    instance_id = launch(ec2_client(world.endpoint))
    config = config_for(world, instance_id=instance_id, bucket="no-such-bucket-here")

    status = collect(config, at(MONDAY, 17))

    assert len(status.errors) == 1 and "bucket does not exist" in status.errors[0]
    assert status.instance is not None and status.newest_backup is None
    assert not status.backup_missing  # unknown, not missing
    assert "bucket does not exist" in status.unknown["newest_backup"]
    assert status.pending_dumps is None and "gaps" in status.unknown
    assert "Backup     unknown (the S3 bucket does not exist" in status.summary()
    assert "none in S3" not in status.summary()


def test_no_instance_configured_is_said(world: World) -> None:
    status = collect(config_for(world, instance_id=None), at(MONDAY, 12))

    assert status.errors == ("No instance is configured (set instance_id under [aws] in the "
                             "config).",)


def test_a_trading_day_no_dump_covers_is_a_gap(world: World) -> None:
    day_of_ticks(world, "2026-11-20")
    world.backup(at_ist("2026-11-20"))  # a full dump: 20th … 20th
    with ledger_conn(world) as conn:  # the laptop is synced to the 18th only
        ledger.ensure_schema(conn)
        ledger.record_dump(conn, ledger.AppliedDump(
            "20261118T103000Z-00000000", None, "full", dt.date(2026, 11, 18),
            dt.date(2026, 11, 18), "server-wins", 1, 0, 0, 10, {}, 0.1, 0.1,
            at("2026-11-18", 17)), "0" * 64)

    status = collect(config_for(world, instance_id=None), at("2026-11-20", 17))

    assert status.gaps == (dt.date(2026, 11, 19),)
    assert status.pending_dumps == 1 and not status.backup_missing


@pytest.mark.parametrize(("now", "missing"), [
    (at(MONDAY, 17), True),                 # a trading day, after 16:30, no backup of today
    (at(MONDAY, 16, 15), False),            # still within the backup's grace
    (at("2026-11-24", 17), False),          # a holiday
    (at("2026-11-21", 17), False),          # a Saturday
])
def test_backup_missing_after_1630_on_a_trading_day(world: World, now: dt.datetime,
                                                    missing: bool) -> None:
    day_of_ticks(world, "2026-11-20")
    world.backup(at_ist("2026-11-20"))

    status = collect(config_for(world, instance_id=None), now)

    assert status.backup_missing is missing
    assert (dt.date(2026, 11, 23) in status.gaps) is missing


def test_to_json_is_one_json_object_with_every_part(world: World, app: AppServer) -> None:
    instance_id = launch(ec2_client(world.endpoint))
    day_of_ticks(world, MONDAY)
    world.backup(at_ist(MONDAY))
    world.sync()
    config = config_for(world, instance_id=instance_id, health_url=app.url("/health"))

    doc = json.loads(json.dumps(collect(config, at(MONDAY, 17)).to_json()))

    assert doc["ok"] is True and doc["errors"] == []
    assert doc["instance"]["state"] == "running" and doc["health"]["status"] == 200
    assert doc["newest_backup"]["last_day"] == MONDAY
    assert doc["last_sync"]["last_day"] == MONDAY and doc["pending_dumps"] == 0
    assert doc["schedule"]["next_start"] == "2026-11-25T08:55:00+05:30"
    assert doc["gaps"] == [] and doc["backup_missing"] is False


def test_from_json_reads_back_every_part_of_to_json(world: World, app: AppServer) -> None:
    instance_id = launch(ec2_client(world.endpoint))
    day_of_ticks(world, MONDAY)
    world.backup(at_ist(MONDAY))
    world.sync()
    config = config_for(world, instance_id=instance_id, health_url=app.url("/health"))
    status = collect(config, at(MONDAY, 17))

    back = StatusSnapshot.from_json(json.loads(json.dumps(status.to_json())))

    assert back.to_json() == status.to_json()
    assert back.instance == status.instance and back.health == status.health
    assert back.schedule == status.schedule and back.newest_backup == status.newest_backup
    assert back.last_sync is not None and status.last_sync is not None
    assert back.last_sync.dump_id == status.last_sync.dump_id
    assert back.last_sync.applied_at == status.last_sync.applied_at
    assert back.summary() == status.summary()
    assert StatusSnapshot.from_json(back.to_json()) == back


def test_from_json_keeps_errors_gaps_and_a_missing_backup(world: World) -> None:
    day_of_ticks(world, "2026-11-20")
    world.backup(at_ist("2026-11-20"))
    status = collect(config_for(world, instance_id=None), at(MONDAY, 17))
    assert status.errors and status.gaps and status.backup_missing

    back = StatusSnapshot.from_json(json.loads(json.dumps(status.to_json())))

    assert back == dataclasses.replace(status, last_sync=None) and back.last_sync is None
    assert back.to_json() == status.to_json()


@pytest.mark.parametrize("document", [{}, {"ok": True}, {"instance": "running"}])
def test_from_json_refuses_what_is_not_a_status(document: dict[str, Any]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        StatusSnapshot.from_json(document)


def test_summary_has_one_line_per_part(world: World) -> None:
    day_of_ticks(world, MONDAY)
    world.backup(at_ist(MONDAY))
    status = collect(config_for(world, instance_id="i-0123456789abcdef0"), at(MONDAY, 17))

    text = status.summary()

    for heading in ("Instance   unknown", "Schedule   next start Wed 25 Nov 2026 08:55 IST",
                    "Backup     ", "Last sync  never", "Pending    1 dump to sync", "Problem:   "):
        assert heading in text


def test_the_snapshot_is_frozen(world: World) -> None:
    status = collect(config_for(world, instance_id=None), at(MONDAY, 12))

    with pytest.raises(dataclasses.FrozenInstanceError):
        status.pending_dumps = 3  # type: ignore[misc]


def test_sentence_is_message_then_hint() -> None:
    assert sentence(AwsError("the bucket is gone", "check [aws]")) == \
        "The bucket is gone (check [aws])."


@pytest.mark.parametrize("module", ["desktop.engine.status", "desktop.engine.instance",
                                    "desktop.system.autostart", "desktop.demo.world",
                                    "desktop.proc.worker", "desktop.ui.services"])
def test_importing_for_the_tray_loads_no_boto3_or_psycopg(module: str) -> None:
    probe = ("import importlib, sys; importlib.import_module(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('boto3', 'botocore', 'psycopg', 'PySide6')))")
    done = subprocess.run([sys.executable, "-c", probe, module], capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parents[2])

    assert done.stdout.strip() == "[]"


def ledger_conn(world: World) -> Any:
    from desktop.engine.sync import connect_local

    return connect_local(world.laptop_db)
