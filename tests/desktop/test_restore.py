"""Putting a conflict's losing version back."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from desktop.cli import main
from desktop.engine.restore import restore_conflict
from shared.config import ConflictPolicy
from shared.devtools.motoserver import MotoServer
from shared.errors import MarketSyncError
from tests.helpers import TICKS_DDL, World, at_ist


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer) -> World:
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    w.instance(TICKS_DDL)
    w.instance("INSERT INTO my_schema.ticks VALUES (1, '2026-11-20 10:00+05:30', '2026-11-20', "
               "10.5, 100), (2, '2026-11-20 10:00+05:30', '2026-11-20', 20.25, 200)")
    w.backup(at_ist("2026-11-20", 12))
    w.sync()
    w.laptop("UPDATE my_schema.ticks SET volume = 111 WHERE instrument_token = 1")
    w.backup(at_ist("2026-11-20", 16))
    return w


def conflict_id(world: World) -> int:
    return int(world.laptop("SELECT id FROM market_sync.conflicts")[0][0])


def test_put_back_the_local_row_a_server_wins_sync_replaced(world: World) -> None:
    world.sync(ConflictPolicy.SERVER_WINS)
    assert world.laptop("SELECT volume FROM my_schema.ticks WHERE instrument_token = 1") == [(100,)]
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        done = restore_conflict(conn, world.laptop_config, conflict_id(world))
    assert done.version == "local"
    assert world.laptop("SELECT volume FROM my_schema.ticks WHERE instrument_token = 1") == [(111,)]
    assert world.laptop("SELECT count(*) FROM my_schema.ticks") == [(2,)]
    assert world.laptop("SELECT restored_at IS NOT NULL FROM market_sync.conflicts") == [(True,)]


def test_use_the_server_row_a_local_wins_sync_kept_out(world: World) -> None:
    world.sync(ConflictPolicy.LOCAL_WINS)
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        done = restore_conflict(conn, world.laptop_config, conflict_id(world))
    assert done.version == "incoming"
    query = "SELECT t::text FROM my_schema.ticks t ORDER BY 1"
    assert world.laptop(query) == world.instance_rows(query)


def test_restoring_twice_or_an_unknown_id_is_a_clear_error(world: World) -> None:
    world.sync(ConflictPolicy.SERVER_WINS)
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        restore_conflict(conn, world.laptop_config, conflict_id(world))
        with pytest.raises(MarketSyncError, match="already put back"):
            restore_conflict(conn, world.laptop_config, conflict_id(world))
        with pytest.raises(MarketSyncError, match="no conflict #999"):
            restore_conflict(conn, world.laptop_config, 999)


def test_a_conflict_saved_before_a_column_was_added_restores_and_shows(world: World) -> None:
    """Each conflict keeps the columns its table had then (a store per column set): the
    laptop table gains a column between two conflicts, and both show and restore."""
    world.sync(ConflictPolicy.SERVER_WINS)
    first = conflict_id(world)
    world.laptop("ALTER TABLE my_schema.ticks ADD COLUMN note text DEFAULT 'mine'")
    world.laptop("UPDATE my_schema.ticks SET volume = 222, note = 'edited' "
                 "WHERE instrument_token = 2")
    world.instance("UPDATE my_schema.ticks SET volume = 201 WHERE instrument_token = 2")
    world.backup(at_ist("2026-11-20", 17))
    assert world.sync(ConflictPolicy.SERVER_WINS, keep_dropped_columns=True).exit_code == 0

    old, new = world.conflicts()
    assert (old.id, old.local_row, new.local_row) == (first, {
        "instrument_token": 1, "exchange_timestamp": "2026-11-20T04:30:00+00:00",
        "run_date": "2026-11-20", "last_price": 10.5, "volume": 111}, {
        "instrument_token": 2, "exchange_timestamp": "2026-11-20T04:30:00+00:00",
        "run_date": "2026-11-20", "last_price": 20.25, "volume": 222, "note": "edited"})
    assert new.incoming_row and "note" not in new.incoming_row  # the instance has none
    assert world.laptop("SELECT count(*) FROM market_sync.conflict_stores") == [(2,)]

    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        restore_conflict(conn, world.laptop_config, old.id)
        restore_conflict(conn, world.laptop_config, new.id)
    assert world.laptop("SELECT instrument_token, volume, note FROM my_schema.ticks "
                        "ORDER BY 1") == [(1, 111, "mine"), (2, 222, "edited")]


def test_a_restore_that_would_drop_a_kept_value_changes_nothing(world: World) -> None:
    world.sync(ConflictPolicy.SERVER_WINS)
    world.laptop("ALTER TABLE my_schema.ticks DROP COLUMN volume")
    before = world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1")
    with psycopg.connect(world.laptop_db, autocommit=True) as conn, \
            pytest.raises(MarketSyncError, match=r"holds values for column\(s\) volume, "
                          "which my_schema.ticks no longer has; nothing was changed"):
        restore_conflict(conn, world.laptop_config, conflict_id(world))
    assert world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1") == before
    assert world.laptop("SELECT restored_at FROM market_sync.conflicts") == [(None,)]


def test_a_conflict_an_earlier_version_saved_as_jsonb_shows_and_restores(world: World) -> None:
    """Conflicts saved before the stores existed hold their versions as jsonb."""
    world.sync()  # the ledger and its tables
    world.laptop("INSERT INTO market_sync.conflicts (id, dump_id, table_name, key, local_row, "
                 "incoming_row, policy, winner) VALUES (900, 'old', 'my_schema.ticks', "
                 "'{\"instrument_token\": 1, \"exchange_timestamp\": \"2026-11-20T04:30:00Z\"}',"
                 " '{\"instrument_token\": 1, \"exchange_timestamp\": \"2026-11-20T04:30:00Z\","
                 " \"run_date\": \"2026-11-20\", \"last_price\": 9.5, \"volume\": 99}',"
                 " '{\"instrument_token\": 1}', 'server-wins', 'incoming')")
    [legacy] = [c for c in world.conflicts() if c.id == 900]
    assert legacy.local_row and legacy.local_row["volume"] == 99
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        restore_conflict(conn, world.laptop_config, 900)
    assert world.laptop("SELECT last_price::float, volume FROM my_schema.ticks "
                        "WHERE instrument_token = 1") == [(9.5, 99)]


def test_a_partitioned_laptop_table_keeps_and_restores_its_conflicts(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer) -> None:
    """A trader who partitions the laptop's ticks by month: ctids repeat across
    partitions, so a version is found by its partition and place together."""
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    w.instance(TICKS_DDL)
    w.laptop(TICKS_DDL.replace("PRIMARY KEY (instrument_token, exchange_timestamp)",
                               "PRIMARY KEY (instrument_token, exchange_timestamp, run_date)")
             .replace(");\nCREATE INDEX", ") PARTITION BY RANGE (run_date);\nCREATE INDEX"))
    w.laptop("CREATE TABLE my_schema.ticks_nov PARTITION OF my_schema.ticks "
             "FOR VALUES FROM ('2026-11-01') TO ('2026-12-01'); "
             "CREATE TABLE my_schema.ticks_oct PARTITION OF my_schema.ticks "
             "FOR VALUES FROM ('2026-10-01') TO ('2026-11-01')")
    w.instance("INSERT INTO my_schema.ticks VALUES "
               "(1, '2026-10-20 10:00+05:30', '2026-10-20', 1, 10), "
               "(2, '2026-10-20 10:00+05:30', '2026-10-20', 1, 10), "
               "(1, '2026-11-20 10:00+05:30', '2026-11-20', 2, 20)")
    w.backup(at_ist("2026-11-20", 12))
    assert w.sync().exit_code == 0
    w.laptop("UPDATE my_schema.ticks_nov SET volume = 21")
    # The edited November row now sits where October's second row does.
    assert w.laptop("SELECT ctid::text FROM my_schema.ticks_nov") == \
        w.laptop("SELECT max(ctid)::text FROM my_schema.ticks_oct") == [("(0,2)",)]
    w.instance("UPDATE my_schema.ticks SET volume = 22 WHERE run_date = '2026-11-20'")
    w.backup(at_ist("2026-11-20", 16))
    assert w.sync(ConflictPolicy.SERVER_WINS).exit_code == 0

    [conflict] = w.conflicts()
    assert conflict.local_row and conflict.local_row["volume"] == 21
    assert conflict.incoming_row and conflict.incoming_row["volume"] == 22
    with psycopg.connect(w.laptop_db, autocommit=True) as conn:
        restore_conflict(conn, w.laptop_config, conflict.id)
    assert w.laptop("SELECT run_date::text, volume FROM my_schema.ticks ORDER BY 1, 2") == [
        ("2026-10-20", 10), ("2026-10-20", 10), ("2026-11-20", 21)]


def test_the_cli_puts_conflicts_back_and_says_what_it_did(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.sync(ConflictPolicy.SERVER_WINS)
    config = ["--config", str(world.laptop_config.path)]
    first = conflict_id(world)

    assert main([*config, "restore", "--json", f"#{first}"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"ok": True, "restored": [
        {"id": first, "table": "my_schema.ticks", "version": "local", "removed": False}]}
    assert world.laptop("SELECT volume FROM my_schema.ticks WHERE instrument_token = 1") \
        == [(111,)]

    assert main([*config, "restore", str(first)]) == 1  # already put back
    out, err = capsys.readouterr()
    assert "Traceback" not in err and f"conflict #{first} was already put back" in err

    with pytest.raises(SystemExit) as usage:
        main([*config, "restore", "abc"])
    assert usage.value.code == 2 and "'abc' is not a conflict id" in capsys.readouterr().err

    assert main([*config, "restore", "--json", "999"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and "there is no conflict #999" in doc["error"]


def test_a_restore_keeps_the_traders_rows_that_point_at_the_row(world: World) -> None:
    """The trader's notes point at a tick (ON DELETE CASCADE): putting the laptop's version
    back changes the row in place, so the note stays; putting back the instance's deletion
    of a noted row refuses in one sentence and changes nothing."""
    world.laptop("CREATE SCHEMA trader; CREATE TABLE trader.notes (token bigint, at timestamptz,"
                 " note text, FOREIGN KEY (token, at) REFERENCES my_schema.ticks "
                 "ON DELETE CASCADE); INSERT INTO trader.notes SELECT instrument_token, "
                 "exchange_timestamp, 'watch' FROM my_schema.ticks")
    world.sync(ConflictPolicy.SERVER_WINS)
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        restore_conflict(conn, world.laptop_config, conflict_id(world))
    assert world.laptop("SELECT volume FROM my_schema.ticks WHERE instrument_token = 1") \
        == [(111,)]
    assert world.laptop("SELECT count(*) FROM trader.notes") == [(2,)]

    world.instance("DELETE FROM my_schema.ticks WHERE instrument_token = 2")
    world.backup(at_ist("2026-11-20", 17))
    assert world.sync(ConflictPolicy.LOCAL_WINS).exit_code == 0  # the laptop keeps it
    [kept] = [c for c in world.conflicts()
              if c.restored_at is None and c.key and c.key["instrument_token"] == 2]
    assert kept.incoming_row is None  # the instance's version is a deletion
    before = world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1")
    with psycopg.connect(world.laptop_db, autocommit=True) as conn, \
            pytest.raises(MarketSyncError, match=r"would delete a row of my_schema.ticks that "
                          r"your table trader.notes references .*nothing was changed"):
        restore_conflict(conn, world.laptop_config, kept.id)
    assert world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1") == before
    assert world.laptop("SELECT count(*) FROM trader.notes") == [(2,)]
