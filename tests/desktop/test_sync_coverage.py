"""The dump's coverage contract, from the trader's side (issue 9 points 1, 2 and 3): the real
agent backs up the seed's kind of tables from a throwaway PostgreSQL into moto S3, the real
engine syncs them into the laptop's database, and the rows are compared."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ec2.cli import main as agent_main
from shared.config import ConflictPolicy
from shared.devtools.motoserver import MotoServer
from tests.desktop.coverage_world import (
    laptop_holds_what_the_instance_holds,
    rows,
    seed_world,
    trade,
)
from tests.helpers import World, at_ist


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer) -> World:
    w = seed_world(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    trade(w, "2026-11-19")
    trade(w, "2026-11-20")
    w.backup(at_ist("2026-11-20"))
    assert w.sync().exit_code == 0
    assert laptop_holds_what_the_instance_holds(w)
    return w


def day_count(world: World, table: str, day: str, column: str = "run_date") -> int:
    found = world.laptop(f"SELECT count(*) FROM {table} WHERE {column}::date = %s", (day,))
    return int(found[0][0])


# -- 1. an emptied day empties on the laptop ---------------------------------------------------

def test_a_day_emptied_on_the_instance_empties_on_the_laptop_with_the_rows_saved(
        world: World) -> None:
    # The trader squares off every position of the 20th; a correction deletes the 20th's
    # ticks, holdings and intraday prices. Then Monday's trading and backup.
    for table in ("positions", "holdings", "ticks"):
        world.instance(f"DELETE FROM my_schema.{table} WHERE run_date = '2026-11-20'")
    world.instance("DELETE FROM my_schema.rt_intraday_price WHERE ts::date = '2026-11-20'")
    trade(world, "2026-11-23")
    result = world.backup(at_ist("2026-11-23"))
    assert (str(result.first_day), str(result.last_day)) == ("2026-11-20", "2026-11-23")

    report = world.sync(ConflictPolicy.SERVER_WINS)

    assert report.exit_code == 0, report.summary()
    assert laptop_holds_what_the_instance_holds(world)
    for table in ("positions", "holdings", "ticks"):
        assert day_count(world, f"my_schema.{table}", "2026-11-20") == 0
    assert day_count(world, "my_schema.rt_intraday_price", "2026-11-20", "ts") == 0
    # Nothing lost: every removed laptop row is in market_sync.conflicts.
    saved = Counter(c.table_name for c in world.conflicts()
                    if c.local_row and c.incoming_row is None)
    assert sorted(saved.items()) == [("my_schema.holdings", 3), ("my_schema.positions", 3),
                                     ("my_schema.rt_intraday_price", 3), ("my_schema.ticks", 3)]
    assert report.dumps[0].diverged == 12


def test_an_emptied_day_under_local_wins_keeps_the_laptop_rows_and_abort_stops(
        world: World) -> None:
    world.instance("DELETE FROM my_schema.positions WHERE run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-23"))
    before = rows(world, "my_schema.positions")

    aborted = world.sync(ConflictPolicy.ABORT)
    assert aborted.exit_code == 3 and rows(world, "my_schema.positions") == before

    kept = world.sync(ConflictPolicy.LOCAL_WINS)
    assert kept.exit_code == 0 and kept.dumps[0].diverged == 3
    assert rows(world, "my_schema.positions") == before


def test_rows_the_instance_deleted_from_a_day_go_from_the_laptop_for_keyed_tables(
        world: World) -> None:
    world.instance("DELETE FROM my_schema.ticks WHERE instrument_token = 256266 "
                   "AND run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-20", 18))
    report = world.sync()
    assert report.exit_code == 0 and report.dumps[0].diverged == 1
    assert rows(world, "my_schema.ticks") == rows(world, "my_schema.ticks", "instance")


def test_a_dump_of_format_1_is_still_read_and_applied(world: World) -> None:
    trade(world, "2026-11-23")
    world.backup(at_ist("2026-11-23"))
    ref = world.store.list_dumps()[-1]
    doc = json.loads(world.s3.get_object(Bucket=world.bucket, Key=ref.manifest_key)["Body"]
                     .read())
    doc["version"] = 1
    for table in doc["tables"]:
        for field in ("covers", "covers_null", "history_from"):
            del table[field]
        for part in table["parts"]:
            del part["watermark_null"]
    world.s3.put_object(Bucket=world.bucket, Key=ref.manifest_key, Body=json.dumps(doc).encode())
    report = world.sync()
    assert report.exit_code == 0, report.summary()
    assert laptop_holds_what_the_instance_holds(world)


# -- 2. no day is skipped because of an odd row ------------------------------------------------

def test_a_row_dated_next_year_and_a_back_dated_one_do_not_move_the_next_range(
        world: World) -> None:
    # A typo dates one tick next year; a correction back-dates a holding to October.
    world.instance("INSERT INTO my_schema.ticks VALUES (1, '2027-11-20 09:15+05:30', "
                   "'2027-11-20', 1, 1)")
    world.instance("INSERT INTO my_schema.holdings VALUES ('2026-10-05', 'OLD', 1, 1)")
    first = world.backup(at_ist("2026-11-20", 18))
    assert (str(first.first_day), str(first.last_day)) == ("2026-11-20", "2026-11-20")
    named = world.sync()
    # The back-dated row is before every covered day: named, with what to do (exit 4).
    assert named.exit_code == 4 and str(named.missing_history[0]) == "2026-10-05"
    assert "backup --full" in named.summary()
    assert world.laptop("SELECT count(*) FROM my_schema.ticks WHERE run_date = '2027-11-20'"
                        ) == [(1,)]  # the future-dated row travelled
    # Two trading days with no backup (the instance was stopped before 16:00).
    trade(world, "2026-11-23")
    trade(world, "2026-11-24")
    trade(world, "2026-11-25")

    caught_up = world.backup(at_ist("2026-11-25"))

    assert (str(caught_up.first_day), str(caught_up.last_day)) == ("2026-11-20", "2026-11-25")
    report = world.sync()
    assert report.exit_code == 4, report.summary()  # the back-dated day, still
    for day in ("2026-11-23", "2026-11-24", "2026-11-25"):
        assert day_count(world, "my_schema.ticks", day) == 3, day
    # The typo is fixed on the instance: the next dump re-covers next year's day, so the
    # wrong row leaves the laptop too (saved in conflicts), and the fixed one arrives.
    world.instance("UPDATE my_schema.ticks SET run_date = '2026-11-26', exchange_timestamp = "
                   "'2026-11-26 09:15+05:30' WHERE run_date = '2027-11-20'")
    world.backup(at_ist("2026-11-26"))
    assert world.sync().exit_code == 4
    assert rows(world, "my_schema.ticks") == rows(world, "my_schema.ticks", "instance")
    # backup --full sends the back-dated day; then nothing is missing.
    world.backup(at_ist("2026-11-26", 18), full=True)
    final = world.sync()
    assert final.exit_code == 0, final.summary()
    assert laptop_holds_what_the_instance_holds(world)


def test_the_agent_stops_when_the_newest_dump_covers_days_after_today(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.backup(at_ist("2026-12-31"))  # an instance clock a month ahead, since set right
    listed = len(world.store.list_dumps())
    code = agent_main(["--config", str(world.agent_config.path), "backup"])  # real clock
    err = capsys.readouterr().err
    assert code == 1
    assert "covers days up to 2026-12-31, after today" in err and "Traceback" not in err
    assert len(world.store.list_dumps()) == listed  # nothing written
    assert agent_main(["--config", str(world.agent_config.path), "backup", "--full"]) == 0
    assert world.sync().exit_code == 0
    assert laptop_holds_what_the_instance_holds(world)


def test_the_agent_stops_when_the_newest_manifest_cannot_be_read(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ref = world.store.list_dumps()[-1]
    world.s3.put_object(Bucket=world.bucket, Key=ref.manifest_key, Body=b"{not json")
    code = agent_main(["--config", str(world.agent_config.path), "backup"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot tell which days to cover" in err and "Traceback" not in err
    assert len(world.store.list_dumps()) == 1
    assert agent_main(["--config", str(world.agent_config.path), "backup", "--full"]) == 0
    world.s3.delete_object(Bucket=world.bucket, Key=ref.manifest_key)  # the trader's fix
    assert world.sync().exit_code == 0
    assert laptop_holds_what_the_instance_holds(world)


# -- 3. rows whose watermark is NULL travel ----------------------------------------------------

def test_rows_with_a_null_watermark_travel_and_follow_the_instance(world: World) -> None:
    world.instance("INSERT INTO my_schema.positions VALUES (NULL, 'UNDATED1', 5, 1), "
                   "(NULL, 'UNDATED2', 6, 2)")
    world.instance("INSERT INTO my_schema.rt_intraday_price VALUES ('NODATE', 1, NULL, 9), "
                   "('NODATE', 2, NULL, 10)")
    result = world.backup(at_ist("2026-11-20", 18))
    # The instance report counts every row it has for the covered days, NULLs included.
    counted = {t.name: t.rows for t in result.tables}
    for table in ("my_schema.positions", "my_schema.rt_intraday_price"):
        on_day = world.instance_rows(
            f"SELECT count(*) FROM {table} WHERE "
            + ("run_date = '2026-11-20' OR run_date IS NULL" if "positions" in table
               else "ts::date = '2026-11-20' OR ts IS NULL"))
        assert counted[table] == on_day[0][0]
    assert world.sync().exit_code == 0
    assert laptop_holds_what_the_instance_holds(world)

    # Changed on the instance: a NULL-dated price corrected (merged by key), an undated
    # position removed (the NULL slice replaced as a whole).
    world.instance("UPDATE my_schema.rt_intraday_price SET price = 11 WHERE seq = 2 "
                   "AND symbol = 'NODATE'")
    world.instance("DELETE FROM my_schema.positions WHERE tradingsymbol = 'UNDATED1'")
    world.backup(at_ist("2026-11-23"))
    report = world.sync()
    assert report.exit_code == 0, report.summary()
    assert laptop_holds_what_the_instance_holds(world)
    assert report.dumps[0].diverged == 2  # both laptop versions saved in conflicts

    # All NULL-dated positions gone on the instance: gone on the laptop too.
    world.instance("DELETE FROM my_schema.positions WHERE run_date IS NULL")
    world.backup(at_ist("2026-11-24"))
    assert world.sync().exit_code == 0
    assert laptop_holds_what_the_instance_holds(world)


def test_snapshot_table_emptied_on_the_instance_empties_on_the_laptop(world: World) -> None:
    world.instance("DELETE FROM my_schema.market_structure")
    world.backup(at_ist("2026-11-23"))
    assert world.sync().exit_code == 0
    assert rows(world, "my_schema.market_structure") == []
    assert laptop_holds_what_the_instance_holds(world)
