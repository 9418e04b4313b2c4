"""The first-run wizard's proposal of ``[[tables]]``: the laptop database's tables, each
with its key (the primary key), a watermark (a ``run_date``-like date column) and a mode.

The trader edits the proposal; the agent then backs up exactly what was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.tables import MergeMode

# Preferred watermark names, best first; any other date column comes after these.
WATERMARK_NAMES = ("run_date", "trade_date", "trading_date", "business_date", "date", "day")
_SKIP_SCHEMAS = ("pg_catalog", "information_schema", "market_sync", "pg_toast")


@dataclass(frozen=True)
class TableProposal:
    """One table as the wizard proposes it."""

    schema: str
    name: str
    key: tuple[str, ...]
    watermark: str | None
    mode: MergeMode
    date_columns: tuple[str, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def propose(schema: str, name: str, key: tuple[str, ...],
            date_columns: tuple[str, ...]) -> TableProposal:
    """Key and watermark: upsert by day; no date column or no key: a snapshot."""
    ranked = sorted(date_columns, key=lambda c: (WATERMARK_NAMES.index(c)
                                                 if c in WATERMARK_NAMES else len(WATERMARK_NAMES)))
    watermark = ranked[0] if ranked else None
    if key and watermark:
        return TableProposal(schema, name, key, watermark, MergeMode.UPSERT, tuple(ranked))
    return TableProposal(schema, name, key, None, MergeMode.SNAPSHOT, tuple(ranked))


_TABLES = """
SELECT n.nspname, c.relname,
       coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                   FROM pg_index i
                   CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  WHERE i.indrelid = c.oid AND i.indisprimary), '{}') AS key,
       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum)
                   FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.atttypid = 'date'::regtype), '{}') AS dates
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname <> ALL (%(skip)s) AND n.nspname NOT LIKE 'pg\\_temp%%'
 ORDER BY n.nspname, c.relname
"""


def discover_tables(conn: Any) -> list[TableProposal]:
    """Every ordinary table of the database ``conn`` is connected to, proposed."""
    rows = conn.execute(_TABLES, {"skip": list(_SKIP_SCHEMAS)}).fetchall()
    return [propose(schema, name, tuple(key), tuple(dates)) for schema, name, key, dates in rows]


def find_tables(conninfo: str, password: str | None) -> list[TableProposal]:
    """Connect to the laptop database (the wizard's fields) and propose its tables."""
    from desktop.engine.sync import connect_local

    with connect_local(conninfo, password) as conn:
        return discover_tables(conn)
