"""Merge semantics: increments, overlap days, policies, table modes, dry-run, gaps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from shared.config import ConflictPolicy
from shared.devtools.motoserver import MotoServer
from tests.helpers import TICKS_DDL, World, at_ist

TICK_INSERT = """
INSERT INTO my_schema.ticks
SELECT 100 + i %% 5, %(day)s::date + time '09:15' + make_interval(secs => i), %(day)s::date,
       round((1000 + i * 0.05)::numeric, 2), i * 10
  FROM generate_series(1, %(n)s) AS i
"""


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer) -> World:
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    w.instance(TICKS_DDL)
    return w


def add_ticks(world: World, day: str, n: int = 50) -> None:
    world.instance(TICK_INSERT, {"day": day, "n": n})


def laptop_equals_instance(world: World, table: str = "my_schema.ticks") -> bool:
    query = f"SELECT t::text FROM {table} t ORDER BY 1"
    return world.laptop(query) == world.instance_rows(query)


def test_daily_increments_under_a_faked_clock_arrive_exactly(world: World) -> None:
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        add_ticks(world, day)
        world.backup(at_ist(day))
    report = world.sync()
    assert report.exit_code == 0, report.summary()
    assert [d.status for d in report.dumps] == ["applied"] * 3
    assert laptop_equals_instance(world)
    # Each later dump repeats the previous day (inclusive range): recognised, not rewritten.
    assert report.dumps[1].tables[0].parts_skipped == 1
    assert report.dumps[1].new == 50 and report.dumps[1].unchanged == 50


def test_a_resent_day_the_laptop_holds_unchanged_is_not_downloaded(world: World) -> None:
    add_ticks(world, "2026-11-19")
    world.backup(at_ist("2026-11-19"))
    world.sync()
    add_ticks(world, "2026-11-20")
    world.backup(at_ist("2026-11-20"))
    report = world.sync()
    new_day = world.store.load_manifest(world.store.list_dumps()[-1]).manifest.tables[0].parts[1]
    assert report.dumps[0].tables[0].parts_skipped == 1
    assert report.dumps[0].downloaded_bytes == new_day.bytes < report.dumps[0].bytes


def test_missed_day_is_picked_up_by_the_next_backup(world: World) -> None:
    add_ticks(world, "2026-11-18")
    world.backup(at_ist("2026-11-18"))
    add_ticks(world, "2026-11-19")  # no backup ran on the 19th
    add_ticks(world, "2026-11-20")
    result = world.backup(at_ist("2026-11-20"))
    assert (str(result.first_day), str(result.last_day)) == ("2026-11-18", "2026-11-20")
    report = world.sync()
    assert report.exit_code == 0
    assert laptop_equals_instance(world)


def test_day_that_grew_after_the_backup_is_merged_not_duplicated(world: World) -> None:
    add_ticks(world, "2026-11-20", 30)
    world.backup(at_ist("2026-11-20", 12))
    world.sync()
    world.instance("""INSERT INTO my_schema.ticks SELECT 200, now(), '2026-11-20', 1, 1""")
    world.backup(at_ist("2026-11-20", 16))
    report = world.sync()
    assert report.dumps[0].new == 1 and report.dumps[0].unchanged == 30
    assert report.dumps[0].tables[0].parts_merged == 1
    assert laptop_equals_instance(world)


def diverge(world: World) -> None:
    add_ticks(world, "2026-11-20", 20)
    world.backup(at_ist("2026-11-20", 12))
    world.sync()
    world.laptop("UPDATE my_schema.ticks SET volume = -1 WHERE volume = 30")
    world.instance("UPDATE my_schema.ticks SET last_price = 7 WHERE volume = 50")
    world.backup(at_ist("2026-11-20", 16))


def test_server_wins_overwrites_and_keeps_the_local_row_in_conflicts(world: World) -> None:
    diverge(world)
    report = world.sync(ConflictPolicy.SERVER_WINS)
    assert report.exit_code == 0 and report.conflicts == 2
    assert laptop_equals_instance(world)
    saved = [(c.local_row["volume"], c.incoming_row["volume"], c.winner)
             for c in world.conflicts() if c.local_row and c.incoming_row]
    assert (-1, 30, "incoming") in saved


def test_local_wins_keeps_the_laptop_row_and_saves_the_incoming_one(world: World) -> None:
    diverge(world)
    report = world.sync(ConflictPolicy.LOCAL_WINS)
    assert report.exit_code == 0 and report.conflicts == 2
    assert world.laptop("SELECT count(*) FROM my_schema.ticks WHERE volume = -1") == [(1,)]
    saved = [c.incoming_row["last_price"] for c in world.conflicts()
             if c.winner == "local" and c.local_row and c.local_row["volume"] == 50
             and c.incoming_row]
    assert saved == [7.00]


def test_abort_applies_nothing_and_exits_3(world: World) -> None:
    diverge(world)
    before = world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1")
    report = world.sync(ConflictPolicy.ABORT)
    assert report.exit_code == 3
    assert report.dumps[-1].status == "aborted"
    assert len(report.conflict_samples) == 2
    assert world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1") == before
    assert world.laptop("SELECT count(*) FROM market_sync.applied_dumps") == [(1,)]
    assert world.laptop("SELECT count(*) FROM market_sync.conflicts") == [(0,)]


def test_dry_run_reports_the_work_and_changes_nothing(world: World) -> None:
    add_ticks(world, "2026-11-19")
    world.backup(at_ist("2026-11-19"))
    add_ticks(world, "2026-11-20")
    world.backup(at_ist("2026-11-20"))
    report = world.sync(dry_run=True)
    assert report.exit_code == 0
    assert [d.status for d in report.dumps] == ["would apply", "would apply"]
    assert sum(d.new for d in report.dumps) == 100
    assert world.laptop("SELECT to_regclass('my_schema.ticks')") == [(None,)]
    assert world.laptop("SELECT to_regclass('market_sync.applied_dumps')") == [(None,)]
    assert world.sync().exit_code == 0
    assert laptop_equals_instance(world)


def test_trading_day_no_dump_covers_is_reported_as_a_gap_with_exit_4(world: World) -> None:
    add_ticks(world, "2026-11-16")
    world.backup(at_ist("2026-11-16"))
    world.sync()
    for day in ("2026-11-17", "2026-11-18", "2026-11-19"):
        add_ticks(world, day)
        world.backup(at_ist(day))
    lost = world.store.list_dumps()[1:3]  # the 17th's and 18th's dumps vanish from S3
    for ref in lost:
        world.s3.delete_object(Bucket=world.bucket, Key=ref.manifest_key)

    report = world.sync()

    assert report.exit_code == 4, report.summary()
    assert [str(g) for g in report.gaps] == ["2026-11-17"]
    assert report.chain_breaks and lost[1].dump_id in report.chain_breaks[0]
    assert "2026-11-17" in report.summary()


def test_backup_in_the_same_second_still_sorts_after_its_predecessor(world: World) -> None:
    add_ticks(world, "2026-11-20")
    first = world.backup(at_ist("2026-11-20"))
    world.sync()
    world.instance("UPDATE my_schema.ticks SET volume = 0 WHERE volume = 10")
    second = world.backup(at_ist("2026-11-20"))  # same faked second
    assert second.dump_id > first.dump_id
    report = world.sync()
    assert [d.dump_id for d in report.dumps] == [second.dump_id]
    assert report.conflicts == 1  # the server corrected a row: the laptop version is kept
    assert laptop_equals_instance(world)


def test_local_edits_on_a_resent_unchanged_day_are_not_skipped(world: World) -> None:
    add_ticks(world, "2026-11-20", 20)
    world.backup(at_ist("2026-11-20", 16))
    world.sync()
    world.laptop("DELETE FROM my_schema.ticks WHERE volume = 10")
    world.laptop("UPDATE my_schema.ticks SET volume = -5 WHERE volume = 20")
    add_ticks(world, "2026-11-23", 5)
    world.backup(at_ist("2026-11-23"))  # re-sends the 20th unchanged
    report = world.sync(ConflictPolicy.SERVER_WINS)
    ticks = report.dumps[0].tables[0]
    assert ticks.parts_skipped == 0 and ticks.parts_merged == 1
    assert report.dumps[0].downloaded_bytes == report.dumps[0].bytes  # fetched when needed
    assert (ticks.new, ticks.diverged) == (5 + 1, 1)
    assert laptop_equals_instance(world)


def test_a_key_that_moved_to_another_day_is_diverged_not_duplicated(world: World) -> None:
    add_ticks(world, "2026-11-20", 10)
    world.backup(at_ist("2026-11-20"))
    world.sync()
    # The server re-files one tick under the 23rd (the key has no run_date in it).
    world.instance("UPDATE my_schema.ticks SET run_date = '2026-11-23' WHERE volume = 50")
    add_ticks(world, "2026-11-23", 3)
    world.backup(at_ist("2026-11-23"))
    report = world.sync(ConflictPolicy.SERVER_WINS)
    assert report.exit_code == 0, report.summary()
    assert report.dumps[0].diverged == 1
    assert laptop_equals_instance(world)


def test_a_row_dated_after_today_still_travels(world: World) -> None:
    add_ticks(world, "2026-11-20", 5)
    add_ticks(world, "2026-11-25", 2)  # a bad run_date on the instance, after "today"
    result = world.backup(at_ist("2026-11-20"))
    # The range ends today; the future day travels as a covered day of its own.
    assert str(result.last_day) == "2026-11-20"
    ticks = world.store.latest().manifest.tables[0]  # type: ignore[union-attr]
    assert [str(p.day) for p in ticks.parts] == ["2026-11-20", "2026-11-25"]
    assert ticks.covers_day(dt.date(2026, 11, 25))
    report = world.sync()
    assert report.exit_code == 0, report.summary()
    assert laptop_equals_instance(world)
