"""How a merged part tells unchanged rows from diverged ones.

The merge compares an incoming row with the laptop's row of the same key by a 64-bit row
digest (``hash_record_extended``) and falls back to comparing whole rows for column types
PostgreSQL cannot hash. These tests hold the digest to the whole-row comparison's
semantics (``IS DISTINCT FROM``) on every type a tick table is made of, and run both paths
end to end.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from desktop.engine.merge import digest_blocker, row_digest
from shared.config import ConflictPolicy
from shared.devtools.motoserver import MotoServer
from tests.helpers import World, at_ist

# (type as format_type() names it, a, b): pairs PostgreSQL holds equal and pairs it does not.
PAIRS = [
    ("bigint", "1", "2"),
    ("bigint", "NULL", "0"),
    ("bigint", "0", "4294967297"),  # bigint's own hash XORs the halves: 0 ^ 0 = 1 ^ 1
    ("bigint", "-1", "-4294967297"),
    ("smallint", "1", "-1"),
    ("integer[]", "'{1,2}'", "'{2,1}'"),
    ("numeric(12,2)", "1.50", "1.5"),  # equal: the scale is not part of the value
    ("numeric", "1.5", "1.50000000000000000001"),
    ("numeric", "NULL", "0"),
    ("numeric", "1.5", "-1.5"),  # numeric's own hash leaves out the sign
    ("numeric", "'NaN'", "'Infinity'"),  # these three hash alike; sign() tells them apart
    ("numeric", "'Infinity'", "'-Infinity'"),
    ("numeric", "'NaN'", "'-Infinity'"),
    ("numeric", "'NaN'", "'NaN'"),
    ("double precision", "0", "-0"),  # equal in PostgreSQL
    ("double precision", "0", "NULL"),  # zero hashes to the seed, NULL to 0
    ("double precision", "'NaN'", "'NaN'"),  # equal in PostgreSQL
    ("double precision", "'Infinity'", "'-Infinity'"),
    ("double precision", "0.1", "0.1000000000000001"),
    ("double precision[]", "'{1.5,2,3}'", "'{1.5,2,3.0000001}'"),
    ("double precision[]", "'{1.5,2,3}'", "'{1.5,3,2}'"),
    ("double precision[]", "'{1.5,NULL}'", "'{1.5,0}'"),
    ("double precision[]", "'{}'", "NULL"),
    ("double precision[]", "'{}'", "'{0}'"),
    ("real", "0", "NULL"),
    ("text", "'abc'", "'abc '"),
    ("text", "'ज़ेरोधा'", "'ज़ेरोधा'"),
    ("text", "''", "NULL"),
    ("character varying(8)", "'a'", "'A'"),
    ("character(4)", "'a'", "'a  '"),  # equal: trailing blanks do not count in char(n)
    ("jsonb", """'{"a": 1, "b": [1, 2]}'""", """'{"b": [1, 2], "a": 1}'"""),  # same text
    ("jsonb", """'{"a": 1}'""", """'{"a": 1.0}'"""),  # jsonb is compared as its text
    ("jsonb", """'{"q": 5}'""", """'{"q": -5}'"""),
    ("jsonb", """'{"a": 1}'""", """'{"a": "1"}'"""),
    ("jsonb", "'null'", "NULL"),
    ("json", """'{"a": 1}'""", """'{"a":1}'"""),  # json has no `=`: compared as text
    ("bytea", "'\\x00'", "'\\x0000'"),
    ("bytea", "''", "NULL"),
    ("boolean", "true", "NULL"),
    ("boolean", "false", "NULL"),
    ("timestamp with time zone", "'2026-11-20 09:15:00+05:30'",
     "'2026-11-20 03:45:00+00'"),  # the same instant
    ("timestamp with time zone", "'2026-11-20 09:15:00+05:30'",
     "'2026-11-20 09:15:00.000001+05:30'"),
    ("timestamp(3) without time zone", "'infinity'", "'-infinity'"),
    ("timestamp with time zone", "'2000-01-01 00:00:00+00'",
     "'2000-01-01 01:11:34.967297+00'"),  # 0 and 2^32 + 1 microseconds after 2000
    ("date", "'2026-11-20'", "'2026-11-23'"),
    ("uuid", "'00000000-0000-0000-0000-000000000001'",
     "'00000000-0000-0000-0000-000000000002'"),
    ("inet", "'10.0.0.1'", "'10.0.0.1/32'"),
]


@pytest.mark.parametrize(("type_", "a", "b"), PAIRS, ids=[f"{t}:{a}~{b}" for t, a, b in PAIRS])
def test_the_row_digest_agrees_with_is_distinct_from(laptop_db: str, type_: str, a: str,
                                                     b: str) -> None:
    columns, types = ("k", "v"), {"k": "integer", "v": type_}
    assert digest_blocker(columns, types) is None, type_
    compared = "v::text" if type_ in ("json", "jsonb") else "v"
    query = sql.SQL(
        "SELECT ROW(l.k, l.{cmp}) IS DISTINCT FROM ROW(r.k, r.{cmp}), {left} <> {right} "
        "FROM (SELECT 1 AS k, {a}::{t} AS v) l, (SELECT 1 AS k, {b}::{t} AS v) r"
    ).format(cmp=sql.SQL(compared), left=row_digest("l", columns, types),
             right=row_digest("r", columns, types), a=sql.SQL(a), b=sql.SQL(b),
             t=sql.SQL(type_))
    with psycopg.connect(laptop_db) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    distinct, digest_differs = row
    assert digest_differs == distinct


# What PostgreSQL's own hashes cannot tell apart, and the digest above therefore adds terms
# for: if one of these stops colliding in some release, the extra term is merely redundant.
QUIRKS = [("numeric", "1.5", "-1.5"), ("numeric", "'NaN'", "'Infinity'"),
          ("bigint", "0", "4294967297"),
          ("timestamp with time zone", "'2000-01-01 00:00:00+00'",
           "'2000-01-01 01:11:34.967297+00'"),
          ("jsonb", """'{"q": 5}'""", """'{"q": -5}'"""),
          ("integer[]", "'{{1,2},{3,4}}'", "'{1,2,3,4}'"),
          ("integer[]", "'[0:3]={1,2,3,4}'", "'{1,2,3,4}'")]


@pytest.mark.parametrize(("type_", "a", "b"), QUIRKS, ids=[f"{t}:{a}~{b}" for t, a, b in QUIRKS])
def test_the_collisions_the_digest_works_around_are_real(laptop_db: str, type_: str, a: str,
                                                         b: str) -> None:
    left, right = f"ROW({a}::{type_})", f"ROW({b}::{type_})"
    query = (f"SELECT {left} IS DISTINCT FROM {right}, "
             f"hash_record_extended({left}, 7) = hash_record_extended({right}, 7)")
    with psycopg.connect(laptop_db) as conn:
        assert conn.execute(query.encode()).fetchone() == (True, True)


@pytest.mark.parametrize("type_", ["money", "bit varying(8)", "tsvector", "numeric[]",
                                   "numeric(12,2)[]", "bigint[]", "interval", "int4range",
                                   "time without time zone", "timestamp with time zone[]",
                                   "my_domain"])
def test_types_the_digest_does_not_cover_are_named(type_: str) -> None:
    assert digest_blocker(("k", "v"), {"k": "bigint", "v": type_}) == f"v ({type_})"


WIDE_DDL = """
CREATE SCHEMA IF NOT EXISTS my_schema;
CREATE TABLE my_schema.wide (
    id bigint NOT NULL,
    run_date date NOT NULL,
    price numeric(12,2),
    depth double precision[],
    meta jsonb,
    note text,
    raw bytea,
    flag boolean,
    PRIMARY KEY (id, run_date)
);
INSERT INTO my_schema.wide
SELECT i, '2026-11-20', 100 + i, ARRAY[i, i * 2, i * 0.5, i * 3]::float8[],
       jsonb_build_object('i', i),
       'row ' || i, int8send(i), i % 2 = 0
  FROM generate_series(1, 40) AS i;
"""

# Each statement changes one column of one row in a way the digest must notice.
CHANGES = [
    # the same four numbers as a 2×2 array, and with a lower bound of 0 (issue 9, point 5)
    "UPDATE my_schema.wide SET depth = ARRAY[[2, 4], [1, 6]]::float8[] WHERE id = 2",
    "UPDATE my_schema.wide SET depth = '[0:3]={4,8,2,12}'::float8[] WHERE id = 4",
    "UPDATE my_schema.wide SET depth[3] = depth[3] + 1e-9 WHERE id = 3",
    "UPDATE my_schema.wide SET depth = NULL WHERE id = 5",
    "UPDATE my_schema.wide SET price = NULL WHERE id = 7",
    "UPDATE my_schema.wide SET meta = meta || '{\"late\": true}' WHERE id = 11",
    "UPDATE my_schema.wide SET note = note || ' ' WHERE id = 13",
    "UPDATE my_schema.wide SET raw = raw || '\\x00'::bytea WHERE id = 17",
    "UPDATE my_schema.wide SET flag = NOT flag WHERE id = 19",
    "UPDATE my_schema.wide SET meta = jsonb_build_object('i', -31) WHERE id = 31",
    "UPDATE my_schema.wide SET price = -price WHERE id = 37",
]
# ...and ones it must not: values PostgreSQL holds equal.
NON_CHANGES = [
    "UPDATE my_schema.wide SET meta = '{ \"i\" :   23 }' WHERE id = 23",
    "UPDATE my_schema.wide SET depth = ARRAY[29, 58, 14.5, 87]::float8[] WHERE id = 29",
]


def run_both_edits(world: World) -> None:
    world.instance(WIDE_DDL)
    world.backup(at_ist("2026-11-20", 12))
    world.sync()
    for statement in CHANGES + NON_CHANGES:
        world.instance(statement)
    world.instance("INSERT INTO my_schema.wide (id, run_date) VALUES (41, '2026-11-20')")
    world.backup(at_ist("2026-11-20", 16))


def laptop_equals_instance(world: World, table: str) -> bool:
    query = f"SELECT t::text FROM {table} t ORDER BY 1"
    return world.laptop(query) == world.instance_rows(query)


@pytest.fixture
def wide_world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
               moto_server: MotoServer) -> World:
    return World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url,
                 tables='[[tables]]\nname = "my_schema.wide"\n')


def test_the_digest_catches_every_kind_of_change_and_nothing_else(
        wide_world: World, caplog: pytest.LogCaptureFixture) -> None:
    run_both_edits(wide_world)
    with caplog.at_level(logging.INFO, logger="desktop.engine"):
        report = wide_world.sync(ConflictPolicy.SERVER_WINS)
    assert report.exit_code == 0, report.summary()
    dump = report.dumps[0]
    assert (dump.new, dump.diverged, dump.unchanged) == (1, len(CHANGES), 40 - len(CHANGES))
    assert laptop_equals_instance(wide_world, "my_schema.wide")
    keys = wide_world.laptop("SELECT (key->>'id')::int FROM market_sync.conflicts ORDER BY 1")
    assert [k for (k,) in keys] == [2, 3, 4, 5, 7, 11, 13, 17, 19, 31, 37]
    assert "comparing whole rows" not in caplog.text  # the digest path ran


MONEY_DDL = """
CREATE SCHEMA IF NOT EXISTS my_schema;
CREATE TABLE my_schema.fees (
    id bigint PRIMARY KEY,
    run_date date NOT NULL,
    fee money,
    flags bit varying(8),
    words tsvector
);
INSERT INTO my_schema.fees
SELECT i, '2026-11-20', i * 1.25, B'1010', to_tsvector('simple', 'brokerage ' || i)
  FROM generate_series(1, 20) AS i;
"""


def test_a_type_postgres_cannot_hash_is_merged_by_comparing_whole_rows(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer, caplog: pytest.LogCaptureFixture) -> None:
    world = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url,
                  tables='[[tables]]\nname = "my_schema.fees"\n')
    world.instance(MONEY_DDL)
    world.backup(at_ist("2026-11-20", 12))
    world.sync()
    world.instance("UPDATE my_schema.fees SET fee = fee + 1::money WHERE id = 4")
    world.instance("UPDATE my_schema.fees SET flags = B'1011' WHERE id = 9")
    world.instance("INSERT INTO my_schema.fees VALUES (21, '2026-11-20', 1, B'0', '')")
    world.backup(at_ist("2026-11-20", 16))

    with caplog.at_level(logging.INFO, logger="desktop.engine"):
        report = world.sync(ConflictPolicy.SERVER_WINS)

    assert report.exit_code == 0, report.summary()
    dump = report.dumps[0]
    assert (dump.new, dump.diverged, dump.unchanged) == (1, 2, 18)
    assert laptop_equals_instance(world, "my_schema.fees")
    assert "comparing whole rows instead" in caplog.text
    # The settings raised for the comparison were put back, and nothing was left behind.
    assert world.laptop("SELECT to_regclass('market_sync._stage')") == [(None,)]
