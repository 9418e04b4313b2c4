"""Instance → agent → S3 (moto) → sync → laptop, with real PostgreSQL on both ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.devtools.motoserver import MotoServer
from tests.helpers import World, at_ist

AWKWARD_DDL = """
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Order Book" (
    id bigint PRIMARY KEY,
    run_date date NOT NULL,
    "Trade Time" timestamptz,
    note text,
    price numeric(18,6),
    greeks double precision[],
    meta jsonb,
    raw bytea,
    active boolean,
    "select" text
);
INSERT INTO "My Schema"."Order Book" VALUES
 (1, '2026-11-20', '2026-11-20 09:15:00.123456+05:30', E'tab\\there\\nnewline \\\\ backslash',
  123.456789, '{1.5,-2.25e10,NaN}', '{"a": [1, null, "x\\u00e9"], "b": {"c": true}}',
  '\\x00ff10', true, 'DROP TABLE x;'),
 (2, '2026-11-20', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, '2026-11-23', '2026-11-23 15:29:59+05:30', '\\N', -0.000001, '{}', '[]', '', false,
  'ज़ेरोधा ✓ 🚀'),
 (4, '2026-11-23', 'infinity', '', 99999999999.999999, '{0,-0,Infinity}', 'null', '\\x5c4e',
  NULL, '"quoted" ''single''');
"""

AWKWARD_TABLE = """
[[tables]]
name = 'my_schema."Order Book"'
"""


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer) -> World:
    return World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url,
                 tables=AWKWARD_TABLE.replace("my_schema", '"My Schema"'))


def test_awkward_rows_arrive_exactly_in_a_new_laptop_database(world: World) -> None:
    world.instance(AWKWARD_DDL)
    world.backup(at_ist("2026-11-23"))

    report = world.sync()

    assert report.exit_code == 0, report.summary()
    assert report.dumps[0].new == 4
    query = 'SELECT t::text FROM "My Schema"."Order Book" t ORDER BY id'
    assert world.laptop(query) == world.instance_rows(query)
    assert report.dumps[0].tables[0].created


def test_second_sync_changes_nothing_and_adds_no_ledger_row(world: World) -> None:
    world.instance(AWKWARD_DDL)
    world.backup(at_ist("2026-11-23"))
    world.sync()

    again = world.sync()

    assert again.exit_code == 0
    assert again.dumps == ()
    assert world.laptop("SELECT count(*) FROM market_sync.applied_dumps") == [(1,)]
    assert world.laptop('SELECT count(*) FROM "My Schema"."Order Book"') == [(4,)]
