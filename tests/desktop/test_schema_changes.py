"""Issue 9 point 4: a schema change on the instance never silently changes laptop data.

The instance's table moves (a column dropped, a column added with a default, a type
changed); the trader syncs from the command line; the laptop database says what
happened.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop.cli import main
from shared.devtools.motoserver import MotoServer
from tests.helpers import TICKS_DDL, World, at_ist

SEED = """
INSERT INTO my_schema.ticks
SELECT 100 + i, %(day)s::date + time '09:15' + make_interval(secs => i), %(day)s::date,
       round((1000 + i * 0.05)::numeric, 2), i
  FROM generate_series(1, 5) AS i
"""


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer, tmp_home: Path) -> World:
    """Days 19 and 20 synced to the laptop; the next backup re-sends only the 20th on."""
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    w.instance(TICKS_DDL)
    w.instance(SEED, {"day": "2026-11-19"})
    w.backup(at_ist("2026-11-19"))
    w.instance(SEED, {"day": "2026-11-20"})
    w.backup(at_ist("2026-11-20"))
    assert w.sync().exit_code == 0
    return w


def cli(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["--config", str(world.laptop_config.path), "sync", "--json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, json.loads(out)


def rows(world: World, query: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return world.laptop(query), world.instance_rows(query)


def test_a_dropped_column_stops_the_sync_naming_table_and_column(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.instance("ALTER TABLE my_schema.ticks DROP COLUMN volume")
    world.instance(SEED.replace(", i\n", "\n").replace("100 + i", "200 + i"),
                   {"day": "2026-11-23"})
    world.backup(at_ist("2026-11-23"))
    before = world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1")

    code, doc = cli(world, capsys)

    assert code == 1
    assert "my_schema.ticks" in doc["error"] and "'volume'" in doc["error"]
    assert "--keep-dropped-columns" in doc["hint"]
    assert world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1") == before


def test_keep_dropped_columns_keeps_the_laptop_values_and_says_what_new_rows_get(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.instance("ALTER TABLE my_schema.ticks DROP COLUMN volume")
    world.instance("UPDATE my_schema.ticks SET last_price = 1 WHERE instrument_token = 101 "
                   "AND run_date = '2026-11-20'")
    world.instance(SEED.replace(", i\n", "\n").replace("100 + i", "200 + i"),
                   {"day": "2026-11-23"})
    world.backup(at_ist("2026-11-23"))

    code, doc = cli(world, capsys, "--keep-dropped-columns")

    assert code == 0, doc
    # The laptop's values of the dropped column survive, the server's correction included.
    assert world.laptop("SELECT instrument_token, last_price::text, volume FROM my_schema.ticks "
                        "WHERE run_date = '2026-11-20' ORDER BY 1") == [
        (101, "1.00", 1), (102, "1000.10", 2), (103, "1000.15", 3), (104, "1000.20", 4),
        (105, "1000.25", 5)]
    assert world.laptop("SELECT count(*), count(volume) FROM my_schema.ticks "
                        "WHERE run_date = '2026-11-19'") == [(5, 5)]
    # Rows the sync adds get the column's default: NULL here.
    assert world.laptop("SELECT count(*), count(volume) FROM my_schema.ticks "
                        "WHERE run_date = '2026-11-23'") == [(5, 0)]


def test_keep_dropped_columns_from_the_config(world: World) -> None:
    world.instance("ALTER TABLE my_schema.ticks DROP COLUMN volume")
    world.backup(at_ist("2026-11-23"))
    refused = world.sync()
    assert refused.exit_code == 1
    world.laptop_config.path.write_text(world.laptop_config.path.read_text()
                                        + "\n[sync]\nkeep_dropped_columns = true\n")
    from shared.config import load_config

    world.laptop_config = load_config(world.laptop_config.path)
    assert world.sync().exit_code == 0
    assert world.laptop("SELECT count(volume) FROM my_schema.ticks") == [(10,)]


@pytest.mark.parametrize(("column", "default"), [
    ("exchange", "text DEFAULT 'NSE'"),
    ("lot_size", "integer NOT NULL DEFAULT 75"),
    ("tick", "numeric(6,2) DEFAULT 0.05"),
    ("added_on", "date DEFAULT '2026-11-21'"),
])
def test_add_columns_gives_the_laptops_rows_the_default_the_instance_gave_its_own(
        world: World, capsys: pytest.CaptureFixture[str], column: str, default: str) -> None:
    world.instance(f"ALTER TABLE my_schema.ticks ADD COLUMN {column} {default}")
    world.instance(SEED.replace("100 + i", "300 + i"), {"day": "2026-11-23"})
    world.backup(at_ist("2026-11-23"))

    refused, doc = cli(world, capsys)
    assert refused == 1 and "--add-columns" in doc["hint"]
    code, doc = cli(world, capsys, "--add-columns")

    assert code == 0, doc
    laptop, instance = rows(world, "SELECT t::text FROM my_schema.ticks t ORDER BY 1")
    assert laptop == instance  # the 19th was not re-sent, and still holds the default


def test_add_columns_without_a_default_leaves_null_as_on_the_instance(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.instance("ALTER TABLE my_schema.ticks ADD COLUMN note text")
    world.backup(at_ist("2026-11-23"))
    code, doc = cli(world, capsys, "--add-columns")
    assert code == 0, doc
    assert world.laptop("SELECT count(*), count(note) FROM my_schema.ticks") == [(10, 0)]


def test_a_type_change_stops_the_sync_naming_both_types(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.instance("ALTER TABLE my_schema.ticks ALTER COLUMN volume TYPE numeric")
    world.backup(at_ist("2026-11-23"))
    before = world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1")
    code, doc = cli(world, capsys, "--add-columns", "--keep-dropped-columns")
    assert code == 1
    assert "'volume'" in doc["error"] and "bigint" in doc["error"] and "numeric" in doc["error"]
    assert world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1") == before
