"""Missing history is always named (issue 9 point 6): days that expired from S3 before a
laptop first synced, and days only a superseded dump covered, are exit 4 with the dates,
in `market-sync sync` and in `market-sync status`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from desktop.engine.gaps import describe_days, missing_history
from desktop.engine.status import collect_status
from desktop.ui.viewmodel import derive_view
from shared.aws import AwsClients
from shared.calendar import TradingCalendar
from shared.devtools.motoserver import MotoServer
from tests.desktop.coverage_world import (
    laptop_holds_what_the_instance_holds,
    seed_world,
    sync_cli,
    trade,
)
from tests.helpers import World, at_ist

WEEK = ("2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20")


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer, tmp_home: Path) -> World:
    return seed_world(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)


def expire(world: World, dump_index: slice) -> None:
    """S3's lifecycle rule removes whole dump folders."""
    for ref in world.store.list_dumps()[dump_index]:
        listed = world.s3.list_objects_v2(Bucket=world.bucket, Prefix=ref.folder)
        for obj in listed.get("Contents", []):
            world.s3.delete_object(Bucket=world.bucket, Key=obj["Key"])


def test_first_sync_after_the_oldest_dumps_expired_names_the_days_and_status_shows_them(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    for day in WEEK:
        trade(world, day)
        world.backup(at_ist(day))
    expire(world, slice(0, 3))  # left: the 19th's dump (18th–19th) and the 20th's

    code, out, _ = sync_cli(world, capsys, "--json")

    assert code == 4
    doc = json.loads(out)
    assert doc["ok"] is True and doc["missing_history"] == ["2026-11-16", "2026-11-17"]
    code, out, _ = sync_cli(world, capsys)  # up to date, and still named
    assert code == 4
    assert "2026-11-16, 2026-11-17" in out and "backup --full" in out

    status = collect_status(world.laptop_config, AwsClients(world.laptop_config.aws),
                            clock=lambda: at_ist("2026-11-20", 18))
    assert [str(d) for d in status.missing_history] == ["2026-11-16", "2026-11-17"]
    assert "History    trading days 2026-11-16, 2026-11-17" in status.summary()
    tray = derive_view(status)  # what the tray's menu shows
    assert "History: no dump in S3 covers 16 Nov 2026 … 17 Nov 2026 (2 trading days); " \
        "backup --full on the instance sends them" in tray.attention

    world.backup(at_ist("2026-11-20", 18), full=True)
    code, out, _ = sync_cli(world, capsys)
    assert code == 0, out
    assert laptop_holds_what_the_instance_holds(world)


def test_a_superseded_dump_whose_days_no_applied_dump_covers_is_a_gap(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    trade(world, "2026-11-16")
    world.backup(at_ist("2026-11-16"))
    trade(world, "2026-11-17")
    trade(world, "2026-11-18")
    world.backup(at_ist("2026-11-18"))  # covers the 16th to the 18th
    trade(world, "2026-11-19")
    trade(world, "2026-11-20")
    world.backup(at_ist("2026-11-20"))  # covers the 18th to the 20th
    # The laptop first syncs while the 18th's dump is not listed (it was being restored).
    hidden = world.store.list_dumps()[1]
    body = world.s3.get_object(Bucket=world.bucket, Key=hidden.manifest_key)["Body"].read()
    world.s3.delete_object(Bucket=world.bucket, Key=hidden.manifest_key)
    expire(world, slice(0, 1))
    assert sync_cli(world, capsys)[0] == 4
    world.s3.put_object(Bucket=world.bucket, Key=hidden.manifest_key, Body=body)

    report = world.sync()

    assert report.superseded == (hidden.dump_id,)
    assert report.exit_code == 4
    assert [str(d) for d in report.gaps] == ["2026-11-16", "2026-11-17"]
    assert "Gap: no dump covers trading days 2026-11-16, 2026-11-17" in report.summary()


# -- the day arithmetic, alone ---------------------------------------------------------------

def test_missing_history_lists_at_most_ten_years_of_trading_days() -> None:
    calendar = TradingCalendar.load()
    covered = [(dt.date(2026, 11, 18), dt.date(2026, 11, 20))]

    days = missing_history(calendar, covered, dt.date(202, 11, 20))  # a mistyped year

    assert days[0] >= dt.date(2016, 11, 17) and days[-1] == dt.date(2026, 11, 17)
    assert missing_history(calendar, covered, dt.date(2026, 11, 18)) == []
    assert "trading days)" in describe_days(days)
