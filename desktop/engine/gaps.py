"""Which trading days the laptop cannot have: holes between dumps, days only a superseded
dump covered, and history that expired from S3 before this laptop first synced.

Pure functions over day ranges and the trading calendar (no database, no S3): the sync
engine and ``market-sync status`` compute the same answer from the same facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from shared.calendar import TradingCalendar
from shared.manifest import Manifest

Range = tuple[dt.date, dt.date]


def _covered(day: dt.date, ranges: Iterable[Range]) -> bool:
    return any(a <= day <= b for a, b in ranges)


def holes(calendar: TradingCalendar, covered: list[Range],
          superseded: Iterable[Range] = ()) -> list[dt.date]:
    """Trading days from the first covered day to the last that no covered range holds,
    and the days of superseded dumps (never applied: a newer dump was) no range holds."""
    days: set[dt.date] = set()
    if covered:
        start, end = min(a for a, _ in covered), max(b for _, b in covered)
        days.update(d for d in calendar.trading_days(start, end) if not _covered(d, covered))
    for a, b in superseded:
        days.update(d for d in calendar.trading_days(a, b) if not _covered(d, covered))
    return sorted(days)


def history_from(manifest: Manifest | None) -> dt.date | None:
    """The earliest day the instance held rows for, over the dump's tables."""
    if manifest is None:
        return None
    return min((t.history_from for t in manifest.tables if t.history_from), default=None)


def missing_history(calendar: TradingCalendar, covered: list[Range],
                    since: dt.date | None) -> list[dt.date]:
    """Trading days from ``since`` (the instance's earliest day) up to the laptop's first
    covered day: the instance held them, but no dump in S3 or on the laptop covers them."""
    if since is None or not covered:
        return []
    first = min(a for a, _ in covered)
    if since >= first:
        return []
    return calendar.trading_days(since, first - dt.timedelta(days=1))


def describe_days(days: tuple[dt.date, ...] | list[dt.date]) -> str:
    """``2026-10-01 … 2026-11-06 (27 trading days)`` or the dates themselves when few."""
    if len(days) <= 5:
        return ", ".join(d.isoformat() for d in days)
    return f"{days[0]} … {days[-1]} ({len(days):,} trading days)"
