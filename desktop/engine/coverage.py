"""The days a dump covers without a part: the instance had no rows there, so neither may
the laptop.

A v2 manifest states, per table, the days it covers (and whether it covers the
NULL-watermark rows). A covered day without a part is a day the instance holds
no rows for; if the laptop holds rows there, the day is applied as a part with
no rows, through the same merge as any other part: ``replace-range`` replaces the
day with nothing, keyed tables find every laptop row of the day "local-only".
Either way the rows are diverged: saved in ``market_sync.conflicts`` and deleted
under ``server-wins``, kept (and saved) under ``local-wins``, and ``abort`` stops.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from desktop.engine.tableplan import TablePlan
from shared.manifest import Part
from shared.sqlparts import day_expression, days_predicate, read_columns

# A binary COPY stream of no rows: signature, flags, header extension length, trailer.
EMPTY_COPY = b"PGCOPY\n\xff\r\n\x00" + bytes(8) + b"\xff\xff"
EMPTY_CONTENT_SHA256 = hashlib.sha256(EMPTY_COPY).hexdigest()
EMPTY_FILE = "empty.copy.zst"


def empty_copy_file(folder: Path) -> Path:
    """The compressed empty stream, written once into ``folder``."""
    import zstandard

    path = folder / EMPTY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(zstandard.ZstdCompressor().compress(EMPTY_COPY))
    return path


def emptied_parts(conn: psycopg.Connection[Any], plan: TablePlan) -> list[Part]:
    """Parts of no rows for each covered day (and the NULL-watermark rows) that the dump
    has no part for but the laptop has rows in."""
    table, watermark, wm_type = plan.dump, plan.spec.watermark, plan.watermark_type
    if watermark is None or wm_type is None:
        return []
    days: list[dt.date] = []
    ranges = table.empty_ranges()
    if ranges:
        where = sql.SQL(" OR ").join(
            sql.SQL("({})").format(days_predicate(watermark, wm_type, a, b)) for a, b in ranges)
        rows = conn.execute(sql.SQL("SELECT DISTINCT {} FROM {} WHERE {} ORDER BY 1").format(
            day_expression(watermark, wm_type), plan.ident, where)).fetchall()
        days = [r[0] for r in rows if r[0] is not None]
    parts = [_empty_part(day) for day in days]
    if table.covers_null and not any(p.watermark_null for p in table.parts) \
            and not _not_null(conn, plan):
        found = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {} IS NULL)").format(
            plan.ident, sql.Identifier(watermark))).fetchone()
        if found and found[0]:
            parts.append(_empty_part(None, null=True))
    return parts


def _not_null(conn: psycopg.Connection[Any], plan: TablePlan) -> bool:
    """The laptop's watermark column is NOT NULL: no NULL rows to look for (without an
    index on the column that look would read the whole table)."""
    live = read_columns(conn, plan.spec.name) or []
    return any(c.name == plan.spec.watermark and c.not_null for c in live)


def _empty_part(day: dt.date | None, null: bool = False) -> Part:
    return Part(file=EMPTY_FILE, day=day, rows=0, bytes=0, sha256="0" * 64,
                content_sha256=EMPTY_CONTENT_SHA256, watermark_null=null)
