"""Tables with no key (replace-range) and reference tables (snapshot)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from desktop.engine.restore import restore_conflict
from shared.config import ConflictPolicy
from shared.devtools.motoserver import MotoServer
from tests.helpers import World, at_ist

DDL = """
CREATE SCHEMA my_schema;
CREATE TABLE my_schema.trades (run_date date NOT NULL, symbol text, qty int, meta json);
CREATE TABLE my_schema.instruments (token bigint PRIMARY KEY, symbol text NOT NULL);
CREATE TABLE my_schema.settings (name text, value text);
INSERT INTO my_schema.trades VALUES ('2026-11-20', 'INFY', 10, '{"a": 1}'),
  ('2026-11-20', 'INFY', 10, '{"a": 1}'), ('2026-11-20', 'TCS', 5, NULL);
INSERT INTO my_schema.instruments VALUES (1, 'INFY'), (2, 'TCS'), (3, 'OLD');
INSERT INTO my_schema.settings VALUES ('tz', 'Asia/Kolkata');
"""

TABLES = """
[[tables]]
name = "my_schema.trades"
mode = "replace-range"

[[tables]]
name = "my_schema.instruments"
mode = "snapshot"

[[tables]]
name = "my_schema.settings"
mode = "snapshot"
"""


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer) -> World:
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url, tables=TABLES)
    w.instance(DDL)
    w.backup(at_ist("2026-11-20", 12))
    assert w.sync().exit_code == 0
    return w


def same(world: World, table: str) -> bool:
    query = f"SELECT t::text FROM {table} t ORDER BY 1"
    return world.laptop(query) == world.instance_rows(query)


def test_keyless_table_keeps_duplicate_rows_and_adds_only_new_ones(world: World) -> None:
    world.instance("INSERT INTO my_schema.trades VALUES ('2026-11-20', 'INFY', 10, '{\"a\": 1}')")
    world.backup(at_ist("2026-11-20", 16))
    report = world.sync()
    trades = next(t for t in report.dumps[0].tables if t.name == "my_schema.trades")
    assert (trades.new, trades.unchanged, trades.diverged) == (1, 3, 0)
    assert same(world, "my_schema.trades")


def test_replace_range_server_wins_replaces_the_day_and_saves_local_rows(world: World) -> None:
    world.laptop("UPDATE my_schema.trades SET qty = 99 WHERE symbol = 'TCS'")
    world.instance("INSERT INTO my_schema.trades VALUES ('2026-11-20', 'SBIN', 1, NULL)")
    world.backup(at_ist("2026-11-20", 16))
    report = world.sync(ConflictPolicy.SERVER_WINS)
    assert report.exit_code == 0
    assert same(world, "my_schema.trades")
    assert [c.local_row["qty"] for c in world.conflicts("my_schema.trades")
            if c.local_row] == [99]
    # Restore puts the laptop's row back beside the instance's.
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        restore_conflict(conn, world.laptop_config, world.conflicts("my_schema.trades")[0].id)
    assert world.laptop("SELECT qty FROM my_schema.trades WHERE symbol = 'TCS' ORDER BY 1") \
        == [(5,), (99,)]


def test_replace_range_local_wins_keeps_the_laptop_day(world: World) -> None:
    world.laptop("UPDATE my_schema.trades SET qty = 99 WHERE symbol = 'TCS'")
    world.instance("INSERT INTO my_schema.trades VALUES ('2026-11-20', 'SBIN', 1, NULL)")
    world.backup(at_ist("2026-11-20", 16))
    before = world.laptop("SELECT t::text FROM my_schema.trades t ORDER BY 1")
    report = world.sync(ConflictPolicy.LOCAL_WINS)
    assert report.exit_code == 0
    assert world.laptop("SELECT t::text FROM my_schema.trades t ORDER BY 1") == before
    saved = [c.incoming_row["symbol"] for c in world.conflicts("my_schema.trades")
             if c.incoming_row]
    assert "SBIN" in saved
    # Restore takes the instance's row in, json column and all.
    [sbin] = [c for c in world.conflicts("my_schema.trades")
              if c.incoming_row and c.incoming_row["symbol"] == "SBIN"]
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        done = restore_conflict(conn, world.laptop_config, sbin.id)
    assert (done.version, done.removed) == ("incoming", False)
    assert world.laptop("SELECT count(*) FROM my_schema.trades WHERE symbol = 'SBIN'") == [(1,)]


def test_snapshot_table_follows_the_server_including_deletions(world: World) -> None:
    world.instance("DELETE FROM my_schema.instruments WHERE token = 3")
    world.instance("UPDATE my_schema.instruments SET symbol = 'TCS-EQ' WHERE token = 2")
    world.instance("INSERT INTO my_schema.instruments VALUES (4, 'HDFC')")
    world.backup(at_ist("2026-11-20", 16))
    report = world.sync()
    assert report.exit_code == 0
    assert same(world, "my_schema.instruments")
    assert same(world, "my_schema.settings")
    removed = [c.local_row["symbol"] for c in world.conflicts("my_schema.instruments")
               if c.local_row and c.incoming_row is None]
    assert removed == ["OLD"]
