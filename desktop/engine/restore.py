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
from desktop.engine.tableplan import OVERRIDING
from shared.config import Config
from shared.errors import MarketSyncError
from shared.sqlparts import read_primary_key, table_ident
from shared.tables import MergeMode, QualifiedName, parse_qualified_name


@dataclass(frozen=True)
class Restored:
    conflict_id: int
    table: str
    version: str  # "local" or "incoming": the version now in the table
    removed: bool  # True when putting it back meant deleting the winner's row


def restore_conflict(conn: psycopg.Connection[Any], config: Config,
                     conflict_id: int) -> Restored:
    """Undo one conflict's outcome in one transaction, and mark it restored."""
    with conn.transaction():
        row = conn.execute(
            "SELECT table_name, key, local_row, incoming_row, winner, restored_at, "
            "local_store, incoming_store FROM market_sync.conflicts WHERE id = %s FOR UPDATE",
            (conflict_id,)).fetchone()
        if row is None:
            raise MarketSyncError(f"there is no conflict #{conflict_id}",
                                  "list them with `market-sync conflicts`")
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

        def present(version: str) -> bool:
            return (versions if legacy else stores)[version] is not None

        if keyed:
            # The winner's row goes (found by the key), the loser's comes back. A conflict
            # without a key (a keyless table's) holds one version only: nothing to remove.
            # Values as literals, not parameters: psycopg would read a "%" in a quoted
            # table or column name as a placeholder.
            conn.execute(sql.SQL("DELETE FROM {} WHERE ({}) = (SELECT {} FROM "
                                 "jsonb_populate_record(NULL::{}, {}::jsonb) r)").format(
                target, sql.SQL(", ").join(map(sql.Identifier, key_columns)),
                sql.SQL(", ").join(sql.Identifier("r", k) for k in key_columns), target,
                sql.Literal(json.dumps(key))))
        if present(wanted) and legacy:
            conn.execute(sql.SQL("INSERT INTO {t} {o} SELECT * FROM jsonb_populate_record("
                                 "NULL::{t}, {row}::jsonb)").format(
                t=target, o=OVERRIDING, row=sql.Literal(json.dumps(versions[wanted]))))
        elif present(wanted):
            _insert_stored(conn, name, conflict_store.load_store(conn, stores[wanted]),
                           conflict_id, wanted)
        conn.execute("UPDATE market_sync.conflicts SET restored_at = now() WHERE id = %s",
                     (conflict_id,))
    return Restored(conflict_id, table_name, wanted, not present(wanted))


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


def _insert_stored(conn: psycopg.Connection[Any], table: QualifiedName, store: Store,
                   conflict_id: int, version: str) -> None:
    names = _columns_now(conn, table, store, conflict_id, version)
    conn.execute(sql.SQL("INSERT INTO {} ({}) {} {}").format(
        table_ident(table), sql.SQL(", ").join(map(sql.Identifier, names)), OVERRIDING,
        conflict_store.version_rows(store, conflict_id, version, names)))

