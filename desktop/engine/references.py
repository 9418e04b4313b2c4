"""The trader's own tables that point at a synced table: rows a sync must delete are never
taken from under a foreign key.

A laptop table the config does not sync (the trader's notes, fills, tags …) may hold a
foreign key to a synced table. Deleting a referenced row would fail mid-merge (``NO
ACTION``, ``RESTRICT``), or, worse, silently delete or blank the trader's rows (``ON
DELETE CASCADE`` / ``SET NULL`` / ``SET DEFAULT``). So before the merge deletes rows (a
``replace-range`` day replaced, a keyed row the instance no longer has) it counts those
the trader's tables reference; any at all stops the sync with one sentence naming both
tables and the constraint, and the dump's transaction applies nothing. So does an update
that changes a referenced column that is not the key (a renamed symbol under the trader's
``UNIQUE (tradingsymbol)``), unless the key says ``ON UPDATE CASCADE``: then the trader's
rows follow the change, as they asked, and nothing is lost. Foreign keys between synced
tables are the instance's own and are left to PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from shared.config import Config
from shared.errors import DatabaseError
from shared.tables import QualifiedName, quote_ident


@dataclass(frozen=True)
class Reference:
    """A foreign key of ``table`` (``columns``) onto the synced table's ``referenced``."""

    constraint: str
    table: QualifiedName
    columns: tuple[str, ...]
    referenced: tuple[str, ...]
    follows_updates: bool = False  # ON UPDATE CASCADE: the trader's rows follow a change


def read_references(conn: psycopg.Connection[Any], config: Config,
                    name: QualifiedName) -> tuple[Reference, ...]:
    """The foreign keys of unsynced laptop tables onto ``name``."""
    rows = conn.execute(
        """
        SELECT c.conname, rn.nspname, r.relname,
               ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                      ORDER BY k.i)::text[],
               ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                       JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                      ORDER BY k.i)::text[],
               c.confupdtype = 'c'
          FROM pg_constraint c
          JOIN pg_class f ON f.oid = c.confrelid
          JOIN pg_namespace fn ON fn.oid = f.relnamespace
          JOIN pg_class r ON r.oid = c.conrelid
          JOIN pg_namespace rn ON rn.oid = r.relnamespace
         WHERE c.contype = 'f' AND c.conparentid = 0 AND c.conrelid <> c.confrelid
           AND fn.nspname = %s AND f.relname = %s
         ORDER BY c.conname
        """, name.parts).fetchall()
    found = (Reference(str(r[0]), QualifiedName(str(r[1]), str(r[2])), tuple(r[3]),
                       tuple(r[4]), bool(r[5])) for r in rows)
    return tuple(ref for ref in found if config.table(ref.table) is None)


def referencing(conn: psycopg.Connection[Any], ref: Reference, doomed: sql.Composable, *,
                updated_from: str | None = None) -> int:
    """How many rows of ``doomed`` (``FROM <table> t … WHERE …``: rows about to be deleted,
    or with ``updated_from`` the alias of their new values, updated) ``ref`` points at (an
    update: whose referenced values it changes)."""
    refers = sql.SQL(" AND ").join(
        sql.SQL("r.{} = t.{}").format(sql.Identifier(mine), sql.Identifier(theirs))
        for mine, theirs in zip(ref.columns, ref.referenced, strict=True))
    changes: sql.Composable = sql.SQL("")
    if updated_from is not None:
        changes = sql.SQL(" AND ROW({}) IS DISTINCT FROM ROW({})").format(
            sql.SQL(", ").join(sql.Identifier("t", c) for c in ref.referenced),
            sql.SQL(", ").join(sql.Identifier(updated_from, c) for c in ref.referenced))
    row = conn.execute(sql.SQL(
        "SELECT count(*) {}{} AND EXISTS (SELECT 1 FROM {} r WHERE {})").format(
            doomed, changes, sql.Identifier(*ref.table.parts), refers)).fetchone()
    return int(row[0]) if row else 0


def refuse_referenced(conn: psycopg.Connection[Any], references: tuple[Reference, ...],
                      label: str, dump_id: str, doomed: sql.Composable, *,
                      updated_from: str | None = None) -> None:
    """Stop when any row of ``doomed`` is referenced by one of ``references``
    (:func:`referencing`)."""
    for ref in references:
        count = referencing(conn, ref, doomed, updated_from=updated_from)
        if count:
            constraint = quote_ident(ref.constraint)
            raise DatabaseError(
                f"dump {dump_id}: {count} row(s) of {label} that this sync must change or "
                f"delete are referenced by your table {ref.table} (foreign key {constraint}); "
                "nothing of this dump was applied",
                f"delete or re-point those rows of {ref.table}, or drop the foreign key "
                f"(ALTER TABLE {ref.table} DROP CONSTRAINT {constraint}), then sync again")
