"""The laptop's bookkeeping schema ``market_sync``: applied dumps, parts, conflicts.

``applied_dumps`` is the ledger: a dump's row is written in the same transaction
as its data, so a dump is applied exactly once or not at all.
``applied_parts`` remembers, per table and day, the content hash last applied
and the transaction ids that wrote the day's rows: a re-sent day with the same
hash, whose local rows all still carry those ids in ``xmin`` (nobody edited,
added or deleted a row since), is recognised without comparing rows. Transaction
ids mean something only in the database that issued them, so each part also
records its *origin* (the cluster's system identifier and the database's oid): a
database restored elsewhere (pg_dump/pg_restore, a new laptop) compares for real.
``conflicts`` keeps every losing row: the bookkeeping here, both versions in the stores
of :mod:`desktop.engine.conflict_store` (with the table's own columns; conflicts saved by
earlier versions hold theirs as JSONB in ``local_row`` / ``incoming_row``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from desktop.engine import conflict_store
from desktop.engine.records import AppliedDump, ConflictRecord

SCHEMA = "market_sync"
LOCK_KEY = 0x6D61726B  # pg_advisory_lock key: one sync at a time per laptop database

DDL = """
CREATE SCHEMA IF NOT EXISTS market_sync;
CREATE TABLE IF NOT EXISTS market_sync.applied_dumps (
    dump_id          text PRIMARY KEY,
    previous_dump_id text,
    manifest_sha256  text NOT NULL,
    kind             text NOT NULL,
    first_day        date,
    last_day         date,
    policy           text NOT NULL,
    rows_new         bigint NOT NULL,
    rows_unchanged   bigint NOT NULL,
    rows_diverged    bigint NOT NULL,
    bytes            bigint NOT NULL,
    counts           jsonb NOT NULL,
    download_seconds double precision NOT NULL,
    apply_seconds    double precision NOT NULL,
    applied_at       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS market_sync.applied_parts (
    table_name     text NOT NULL,
    part_day       text NOT NULL,
    content_sha256 text NOT NULL,
    rows           bigint NOT NULL,
    writer_xids    bigint[] NOT NULL,
    dump_id        text NOT NULL,
    applied_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, part_day)
);
ALTER TABLE market_sync.applied_parts ADD COLUMN IF NOT EXISTS writer_origin text;
CREATE TABLE IF NOT EXISTS market_sync.conflicts (
    id           bigserial PRIMARY KEY,
    dump_id      text NOT NULL,
    table_name   text NOT NULL,
    key          jsonb,
    local_row    jsonb,
    incoming_row jsonb,
    policy       text NOT NULL,
    winner       text NOT NULL,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    restored_at  timestamptz
);
CREATE INDEX IF NOT EXISTS conflicts_dump_idx ON market_sync.conflicts (dump_id);
CREATE TABLE IF NOT EXISTS market_sync.conflict_stores (
    id         serial PRIMARY KEY,
    table_name text NOT NULL,
    signature  text NOT NULL,
    columns    jsonb NOT NULL,
    chunks     text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (table_name, signature)
);
ALTER TABLE market_sync.conflicts
    ADD COLUMN IF NOT EXISTS local_store integer REFERENCES market_sync.conflict_stores (id),
    ADD COLUMN IF NOT EXISTS incoming_store integer REFERENCES market_sync.conflict_stores (id);
"""


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute(DDL)


def ledger_exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('market_sync.applied_dumps') IS NOT NULL").fetchone()
    return bool(row and row[0])


def applied_dumps(conn: psycopg.Connection[Any]) -> list[AppliedDump]:
    if not ledger_exists(conn):
        return []
    rows = conn.execute(
        "SELECT dump_id, previous_dump_id, kind, first_day, last_day, policy, rows_new, "
        "rows_unchanged, rows_diverged, bytes, counts, download_seconds, apply_seconds, "
        "applied_at FROM market_sync.applied_dumps ORDER BY dump_id"
    ).fetchall()
    return [AppliedDump(*row) for row in rows]


def record_dump(conn: psycopg.Connection[Any], dump: AppliedDump, manifest_sha256: str) -> None:
    conn.execute(
        "INSERT INTO market_sync.applied_dumps (dump_id, previous_dump_id, manifest_sha256, "
        "kind, first_day, last_day, policy, rows_new, rows_unchanged, rows_diverged, bytes, "
        "counts, download_seconds, apply_seconds) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (dump.dump_id, dump.previous_dump_id, manifest_sha256, dump.kind, dump.first_day,
         dump.last_day, dump.policy, dump.rows_new, dump.rows_unchanged, dump.rows_diverged,
         dump.bytes, json.dumps(dump.counts), dump.download_seconds, dump.apply_seconds),
    )


Origin = str  # "cluster <system identifier> database <oid>"


@dataclass(frozen=True)
class AppliedPart:
    content_sha256: str
    rows: int
    writer_xids: tuple[int, ...]
    origin: Origin | None  # None: recorded by a version that did not say


def current_origin(conn: psycopg.Connection[Any]) -> Origin:
    """Where transaction ids of this connection's database mean something: the cluster's
    system identifier (new at every initdb) and the database's oid (new at every CREATE
    DATABASE, so a restore into another database of the same cluster differs too)."""
    row = conn.execute(
        "SELECT (SELECT system_identifier FROM pg_control_system()), d.oid "
        "FROM pg_database d WHERE d.datname = current_database()").fetchone()
    assert row is not None
    return f"cluster {row[0]} database {row[1]}"


def applied_part(conn: psycopg.Connection[Any], table: str, day: str) -> AppliedPart | None:
    row = conn.execute(
        "SELECT content_sha256, rows, writer_xids, writer_origin FROM market_sync.applied_parts "
        "WHERE table_name = %s AND part_day = %s", (table, day)).fetchone()
    return AppliedPart(str(row[0]), int(row[1]), tuple(row[2]), row[3]) if row else None


def record_part(conn: psycopg.Connection[Any], table: str, day: str, content_sha256: str,
                rows: int, writer_xids: tuple[int, ...], dump_id: str, origin: Origin) -> None:
    conn.execute(
        "INSERT INTO market_sync.applied_parts (table_name, part_day, content_sha256, rows, "
        "writer_xids, dump_id, writer_origin) VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (table_name, part_day) DO UPDATE "
        "SET content_sha256 = excluded.content_sha256, rows = excluded.rows, "
        "writer_xids = excluded.writer_xids, dump_id = excluded.dump_id, "
        "writer_origin = excluded.writer_origin, applied_at = now()",
        (table, day, content_sha256, rows, list(writer_xids), dump_id, origin))


def conflicts(conn: psycopg.Connection[Any], dump_id: str | None = None,
              limit: int | None = None) -> list[ConflictRecord]:
    """The conflicts, oldest first, each version as shown (a long value shortened:
    :func:`desktop.engine.conflict_store.shown_value`)."""
    if not ledger_exists(conn):
        return []
    rows = conn.execute(
        "SELECT id, dump_id, table_name, key, local_row, incoming_row, policy, winner, "
        "detected_at, restored_at, local_store, incoming_store FROM market_sync.conflicts "
        "WHERE (%(dump)s::text IS NULL OR dump_id = %(dump)s) ORDER BY id "
        "LIMIT %(limit)s", {"dump": dump_id, "limit": limit}).fetchall()
    stored = [(int(r[0]), version, int(store)) for r in rows
              for version, store in (("local", r[10]), ("incoming", r[11])) if store is not None]
    shown = conflict_store.shown_versions(conn, stored)
    return [ConflictRecord(
        id=int(r[0]), dump_id=r[1], table_name=r[2], key=r[3],
        local_row=shown.get((int(r[0]), "local"), {}) if r[10] is not None else r[4],
        incoming_row=shown.get((int(r[0]), "incoming"), {}) if r[11] is not None else r[5],
        policy=r[6], winner=r[7], detected_at=r[8], restored_at=r[9]) for r in rows]


def try_lock(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    return bool(row and row[0])


def unlock(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
