"""Put a conflict's losing version back: the laptop row a sync replaced (server-wins),
or the server's row it kept out (local-wins)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from desktop.engine import conflict_store
from desktop.engine.conflict_store import Store
from desktop.engine.dberrors import database_error
from desktop.engine.references import read_references, referencing
from desktop.engine.tableplan import OVERRIDING
from shared.config import Config
from shared.errors import MarketSyncError
from shared.sqlparts import read_primary_key, table_ident
from shared.tables import MergeMode, QualifiedName, parse_qualified_name, quote_ident


@dataclass(frozen=True)
class Restored:
    conflict_id: int
    table: str
    version: str  # "local" or "incoming": the version now in the table
    removed: bool  # True when putting it back meant deleting the winner's row


def restore_conflict(conn: psycopg.Connection[Any], config: Config,
                     conflict_id: int) -> Restored:
    """Undo one conflict's outcome in one transaction, and mark it restored. A database
    error is one sentence, and nothing is changed."""
    table = ""
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT table_name, key, local_row, incoming_row, winner, restored_at, "
                "local_store, incoming_store FROM market_sync.conflicts WHERE id = %s "
                "FOR UPDATE", (conflict_id,)).fetchone()
            if row is None:
                raise MarketSyncError(f"there is no conflict #{conflict_id}",
                                      "list them with `market-sync conflicts`")
            table = str(row[0])
            return _restore(conn, config, conflict_id, row)
    except psycopg.Error as exc:
        raise database_error(exc, f"putting back conflict #{conflict_id}", table=table,
                             user=conn.info.user, hint="nothing was changed; ") from None


def _restore(conn: psycopg.Connection[Any], config: Config, conflict_id: int,
             row: tuple[Any, ...]) -> Restored:
    table_name, key, local_row, incoming_row, winner, restored_at = row[:6]
    stores = {"local": row[6], "incoming": row[7]}
    if restored_at is not None:
        raise MarketSyncError(f"conflict #{conflict_id} was already put back "
                              f"on {restored_at:%Y-%m-%d %H:%M}")
    name = parse_qualified_name(table_name)
    spec = config.table(name)
    if spec is None:
        raise MarketSyncError(f"table {table_name} is no longer configured",
                              "add it back to [[tables]] to restore its rows")
    wanted = "local" if winner == "incoming" else "incoming"
    target = table_ident(name)
    key_columns = spec.key or read_primary_key(conn, name)
    keyed = bool(key_columns) and spec.mode is not MergeMode.REPLACE_RANGE and key
    legacy = stores["local"] is None and stores["incoming"] is None
    versions = {"local": local_row, "incoming": incoming_row}
    back = (versions if legacy else stores)[wanted] is not None  # else: a deletion
    names: list[str] = []
    rows: sql.Composable = sql.SQL("")
    if back:
        names, rows = _version(conn, name, conflict_id, wanted,
                               versions[wanted] if legacy else None,
                               None if legacy else conflict_store.load_store(
                                   conn, stores[wanted]))
    if keyed:
        # Values as literals, not parameters: psycopg would read a "%" in a quoted table or
        # column name as a placeholder.
        match = sql.SQL("({}) = (SELECT {} FROM jsonb_populate_record(NULL::{}, {}::jsonb) r)"
                        ).format(sql.SQL(", ").join(map(sql.Identifier, key_columns)),
                                 sql.SQL(", ").join(sql.Identifier("r", k) for k in key_columns),
                                 target, sql.Literal(json.dumps(key)))
        found = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            target, match)).fetchone()
        if back and found and found[0]:
            # The winner's row becomes the loser's in place (its key is the same): a
            # foreign key of the trader's onto it holds, nothing cascades.
            settable = [n for n in names if n not in key_columns
                        and n not in _identity_always(conn, name)]
            if settable:
                conn.execute(sql.SQL("UPDATE {} SET ({}) = (SELECT {} FROM ({}) v) WHERE {}")
                             .format(target, sql.SQL(", ").join(map(sql.Identifier, settable)),
                                     sql.SQL(", ").join(sql.Identifier("v", n)
                                                        for n in settable), rows, match))
            _mark(conn, conflict_id)
            return Restored(conflict_id, table_name, wanted, False)
        if not back:
            # The losing version is a deletion: the row goes, unless the trader's own
            # tables point at it (a delete would fail, or cascade into them).
            _refuse_referenced(conn, config, name, conflict_id,
                               sql.SQL("FROM {} t WHERE {}").format(target, match))
            conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(target, match))
    # A conflict without a key (a keyless table's) holds one version only: nothing to
    # remove; the loser's row comes in.
    if back:
        conn.execute(sql.SQL("INSERT INTO {} ({}) {} {}").format(
            target, sql.SQL(", ").join(map(sql.Identifier, names)), OVERRIDING, rows))
    _mark(conn, conflict_id)
    return Restored(conflict_id, table_name, wanted, not back)


def _mark(conn: psycopg.Connection[Any], conflict_id: int) -> None:
    conn.execute("UPDATE market_sync.conflicts SET restored_at = now() WHERE id = %s",
                 (conflict_id,))


def _version(conn: psycopg.Connection[Any], table: QualifiedName, conflict_id: int,
             version: str, legacy_row: dict[str, Any] | None,
             store: Store | None) -> tuple[list[str], sql.Composable]:
    """The columns the version gives the table now, and a SELECT of them."""
    if store is not None:
        names = _columns_now(conn, table, store, conflict_id, version)
        return names, conflict_store.version_rows(store, conflict_id, version, names)
    names = [c.name for c in conflict_store.table_columns(conn, table)]
    return names, sql.SQL("SELECT {} FROM jsonb_populate_record(NULL::{}, {}::jsonb) r").format(
        sql.SQL(", ").join(sql.Identifier("r", n) for n in names), table_ident(table),
        sql.Literal(json.dumps(legacy_row)))


def _identity_always(conn: psycopg.Connection[Any], table: QualifiedName) -> set[str]:
    """Columns GENERATED ALWAYS AS IDENTITY: an UPDATE may not set them."""
    rows = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                        "AND attidentity = 'a'", (table_ident(table).as_string(conn),))
    return {str(r[0]) for r in rows.fetchall()}


def _refuse_referenced(conn: psycopg.Connection[Any], config: Config, table: QualifiedName,
                       conflict_id: int, doomed: sql.Composable) -> None:
    for ref in read_references(conn, config, table):
        if referencing(conn, ref, doomed):
            raise MarketSyncError(
                f"conflict #{conflict_id}: putting back the instance's deletion would delete "
                f"a row of {table} that your table {ref.table} references (foreign key "
                f"{quote_ident(ref.constraint)}); nothing was changed",
                f"delete or re-point that row of {ref.table} first, then restore again")


def _columns_now(conn: psycopg.Connection[Any], table: QualifiedName, store: Store,
                 conflict_id: int, version: str) -> list[str]:
    """The stored columns the table still has; a stored value whose column the table no
    longer has stops the restore (putting the rest back would lose it)."""
    live = {c.name for c in conflict_store.table_columns(conn, table)}
    gone = [c for c in store.names if c not in live]
    if gone:
        row = conn.execute(sql.SQL("SELECT {} FROM ({}) v").format(
            sql.SQL(", ").join(sql.SQL("v.{} IS NOT NULL").format(sql.Identifier(c))
                               for c in gone),
            conflict_store.version_rows(store, conflict_id, version, gone))).fetchone()
        held = [c for c, value in zip(gone, row or (), strict=False) if value]
        if held:
            raise MarketSyncError(
                f"conflict #{conflict_id} holds values for column(s) {', '.join(held)}, "
                f"which {table} no longer has; nothing was changed",
                "add the column(s) back to the table, then restore again")
    return [c for c in store.names if c in live]
