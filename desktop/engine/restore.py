"""Put a conflict's losing version back: the laptop row a sync replaced (server-wins),
or the server's row it kept out (local-wins)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from shared.config import Config
from shared.errors import MarketSyncError
from shared.sqlparts import read_primary_key, table_ident
from shared.tables import MergeMode, parse_qualified_name


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
            "SELECT table_name, key, local_row, incoming_row, winner, restored_at "
            "FROM market_sync.conflicts WHERE id = %s FOR UPDATE", (conflict_id,)).fetchone()
        if row is None:
            raise MarketSyncError(f"there is no conflict #{conflict_id}",
                                  "list them with `market-sync conflicts`")
        table_name, key, local_row, incoming_row, winner, restored_at = row
        if restored_at is not None:
            raise MarketSyncError(f"conflict #{conflict_id} was already put back "
                                  f"on {restored_at:%Y-%m-%d %H:%M}")
        name = parse_qualified_name(table_name)
        spec = config.table(name)
        if spec is None:
            raise MarketSyncError(f"table {table_name} is no longer configured",
                                  "add it back to [[tables]] to restore its rows")
        wanted = local_row if winner == "incoming" else incoming_row
        unwanted = incoming_row if winner == "incoming" else local_row
        target = table_ident(name)
        key_columns = spec.key or read_primary_key(conn, name)
        keyed = bool(key_columns) and spec.mode is not MergeMode.REPLACE_RANGE and key
        if keyed:
            conn.execute(sql.SQL("DELETE FROM {} WHERE ({}) = (SELECT {} FROM "
                                 "jsonb_populate_record(NULL::{}, %s) r)").format(
                target, sql.SQL(", ").join(map(sql.Identifier, key_columns)),
                sql.SQL(", ").join(sql.Identifier("r", k) for k in key_columns), target),
                (json.dumps(key),))
        elif unwanted is not None:
            # No key: remove one row equal to the winner's version, if it is there.
            conn.execute(sql.SQL(
                "DELETE FROM {t} WHERE ctid = (SELECT t.ctid FROM {t} t, "
                "jsonb_populate_record(NULL::{t}, %s) r WHERE to_jsonb(t.*) = to_jsonb(r.*) "
                "LIMIT 1)").format(t=target), (json.dumps(unwanted),))
        if wanted is not None:
            conn.execute(sql.SQL("INSERT INTO {t} SELECT * FROM jsonb_populate_record("
                                 "NULL::{t}, %s)").format(t=target), (json.dumps(wanted),))
        conn.execute("UPDATE market_sync.conflicts SET restored_at = now() WHERE id = %s",
                     (conflict_id,))
    return Restored(conflict_id, table_name, "local" if winner == "incoming" else "incoming",
                    wanted is None)
