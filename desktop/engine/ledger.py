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
from desktop.engine.dberrors import database_error, first_line
from desktop.engine.records import AppliedDump, ConflictRecord
from shared.errors import DatabaseError
from shared.tables import quote_ident

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


# The last thing DDL adds (keep in step with it): where it exists, DDL has nothing to do,
# and a role that may only read and write the ledger syncs without running it.
_NEWEST = ("conflicts", "incoming_store")


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create or update the schema ``market_sync``, then check that this role may do
    what a sync does there: one sentence naming the missing privileges otherwise."""
    try:
        if not _current(conn):
            try:
                with conn.transaction():
                    conn.execute(DDL)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise _cannot_create(conn, first_line(exc)) from None
        missing = _missing_grants(conn)
    except psycopg.Error as exc:
        raise database_error(exc, "preparing its ledger (schema market_sync)",
                             user=conn.info.user, hint="nothing was applied; ") from None
    if missing:
        user = missing[0].rsplit(" TO ", 1)[1]
        raise DatabaseError(
            f"the laptop database user {user} lacks privileges the sync needs in schema "
            f"{SCHEMA}, where it keeps its ledger and stages each day's rows "
            f"({len(missing)} missing: {missing[0].removeprefix('GRANT ').split(' TO ')[0]}"
            f"{', …' if len(missing) > 1 else ''})",
            f"as the owner of schema {SCHEMA} run: {'; '.join(missing)}")


def _current(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attname = %s AND NOT attisdropped)",
        (f"{SCHEMA}.{_NEWEST[0]}", _NEWEST[1])).fetchone()
    return bool(row and row[0])


# What a sync does to the ledger's tables (a conflict store's rows refer to their conflict).
_TABLE_PRIVILEGES = {"applied_dumps": ("SELECT", "INSERT"),
                     "applied_parts": ("SELECT", "INSERT", "UPDATE"),
                     "conflicts": ("SELECT", "INSERT", "REFERENCES"),
                     "conflict_stores": ("SELECT", "INSERT", "UPDATE")}


def _missing_grants(conn: psycopg.Connection[Any]) -> list[str]:
    """The GRANT statements this role needs to sync, none when it has every privilege: CREATE
    on the schema (a merge stages a part there), TEMP (it classifies in temporary tables),
    the ledger's tables and the conflicts' id sequence."""
    row = conn.execute(
        "SELECT current_user, current_database(), has_schema_privilege(%s, 'CREATE'), "
        "has_database_privilege(current_database(), 'TEMP'), "
        "has_sequence_privilege(pg_get_serial_sequence(%s, 'id'), 'USAGE')",
        (SCHEMA, f"{SCHEMA}.conflicts")).fetchone()
    assert row is not None
    user, database = quote_ident(str(row[0])), quote_ident(str(row[1]))
    schema_create, temp, sequence = bool(row[2]), bool(row[3]), bool(row[4])
    missing = []
    if not schema_create:
        missing.append(f"GRANT CREATE ON SCHEMA {SCHEMA} TO {user}")
    if not temp:
        missing.append(f"GRANT TEMP ON DATABASE {database} TO {user}")
    for table, privileges in _TABLE_PRIVILEGES.items():
        lacking = [p for p in privileges if not _has_table_privilege(conn, table, p)]
        if lacking:
            missing.append(f"GRANT {', '.join(lacking)} ON {SCHEMA}.{table} TO {user}")
    if not sequence:
        missing.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {user}")
    return missing


def _has_table_privilege(conn: psycopg.Connection[Any], table: str, privilege: str) -> bool:
    row = conn.execute("SELECT has_table_privilege(%s, %s)",
                       (f"{SCHEMA}.{table}", privilege)).fetchone()
    return bool(row and row[0])


def _cannot_create(conn: psycopg.Connection[Any], denied: str) -> DatabaseError:
    row = conn.execute("SELECT current_user, current_database(), "
                       "to_regnamespace(%s) IS NOT NULL", (SCHEMA,)).fetchone()
    assert row is not None
    user, database = quote_ident(str(row[0])), quote_ident(str(row[1]))
    if not row[2]:
        return DatabaseError(
            f"the laptop database user {user} lacks the CREATE privilege on database "
            f"{database}, needed to create the schema {SCHEMA} where market-sync keeps its "
            f"ledger ({denied})",
            f"as the database's owner run: GRANT CREATE ON DATABASE {database} TO {user} "
            f"(or run the first sync as the owner, then grant {user} what the next sync "
            "asks for)")
    return DatabaseError(
        f"the laptop database user {user} may not bring the schema {SCHEMA} up to date "
        f"for this version of market-sync ({denied})",
        f"run one sync as the owner of schema {SCHEMA}, then sync again as {user}")


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
