"""SQL fragments both sides compose: catalog reads and the watermark-day predicate.

Every name is a :class:`psycopg.sql.Identifier`; every value a parameter or
:class:`psycopg.sql.Literal`. Nothing here builds SQL from strings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg import sql

from shared.errors import SchemaMismatchError
from shared.tables import QualifiedName

if TYPE_CHECKING:
    import psycopg

DAY_TYPES = ("date", "timestamp without time zone", "timestamp with time zone")


@dataclass(frozen=True)
class TableColumn:
    name: str
    type: str  # format_type(atttypid, atttypmod)
    not_null: bool
    has_default: bool
    generated: bool = False  # GENERATED ALWAYS AS (…) STORED: computed from the row


def table_ident(name: QualifiedName) -> sql.Identifier:
    return sql.Identifier(name.schema, name.table)


def read_columns(conn: psycopg.Connection[tuple[object, ...]], name: QualifiedName,
                 ) -> list[TableColumn] | None:
    """The table's live columns in order, or None when the table does not exist."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef,
               a.attgenerated <> ''
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
           AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum
        """,
        (name.schema, name.table),
    ).fetchall()
    if not rows:
        exists = conn.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s", (name.schema, name.table)).fetchone()
        return None if exists is None else []
    return [TableColumn(str(r[0]), str(r[1]), bool(r[2]), bool(r[3]), bool(r[4]))
            for r in rows]


def read_fills(conn: psycopg.Connection[tuple[object, ...]], name: QualifiedName,
               ) -> dict[str, str]:
    """Columns added with a default after rows existed: the value those rows hold, as text
    (``attmissingval``; gone once the table is rewritten, and then every row holds its own)."""
    rows = conn.execute(
        """
        SELECT a.attname, (a.attmissingval::text::text[])[1]
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
           AND a.atthasmissing
        """,
        (name.schema, name.table),
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows if r[1] is not None}


def read_primary_key(conn: psycopg.Connection[tuple[object, ...]], name: QualifiedName,
                     ) -> tuple[str, ...]:
    rows = conn.execute(
        """
        SELECT a.attname
          FROM pg_index i
          JOIN pg_class c ON c.oid = i.indrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
         WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
         ORDER BY k.ord
        """,
        (name.schema, name.table),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def day_expression(column: str, column_type: str) -> sql.Composable:
    """The watermark's trading day: the date itself, or the IST date of a timestamp."""
    ident = sql.Identifier(column)
    if column_type == "timestamp with time zone":
        return sql.SQL("({} AT TIME ZONE 'Asia/Kolkata')::date").format(ident)
    return sql.SQL("{}::date").format(ident)


def day_predicate(column: str, column_type: str, day: dt.date, alias: str | None = None,
                  ) -> sql.Composable:
    """``column`` falls on ``day`` (IST), written so an index on the column is usable."""
    return days_predicate(column, column_type, day, day, alias)


def days_predicate(column: str, column_type: str, first: dt.date, last: dt.date,
                   alias: str | None = None) -> sql.Composable:
    """``column`` falls on a day from ``first`` to ``last`` (IST, inclusive), index-usable."""
    ident = sql.Identifier(alias, column) if alias else sql.Identifier(column)
    a, b = sql.Literal(first), sql.Literal(last)
    if column_type == "date":
        if first == last:
            return sql.SQL("{} = {}").format(ident, a)
        return sql.SQL("{col} BETWEEN {a} AND {b}").format(col=ident, a=a, b=b)
    if column_type == "timestamp with time zone":
        return sql.SQL(
            "{col} >= ({a}::date::timestamp AT TIME ZONE 'Asia/Kolkata') "
            "AND {col} < (({b}::date + 1)::timestamp AT TIME ZONE 'Asia/Kolkata')"
        ).format(col=ident, a=a, b=b)
    return sql.SQL("{col} >= {a}::date AND {col} < {b}::date + 1").format(col=ident, a=a, b=b)


def check_watermark_type(table: QualifiedName, column: str, column_type: str | None) -> str:
    if column_type is None:
        raise SchemaMismatchError(
            f"table {table} has no watermark column {column!r}",
            "set `watermark` for this table in the config, or mode = \"snapshot\"",
        )
    if column_type not in DAY_TYPES:
        raise SchemaMismatchError(
            f"watermark column {column!r} of {table} is {column_type}, not a date or timestamp",
            "choose a date/timestamp column as watermark, or mode = \"snapshot\"",
        )
    return column_type
