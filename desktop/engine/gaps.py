"""Which trading days the laptop cannot have: holes between dumps, days only a superseded
dump covered, and history that expired from S3 before this laptop first synced.

Functions over day ranges and the trading calendar: the sync engine and ``market-sync
status`` compute the same answer from the same facts. Only :func:`what_is_missing` reads
S3 (the manifests of superseded dumps, and the newest one's ``history_from``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.calendar import TradingCalendar
from shared.errors import ManifestError
from shared.manifest import Manifest

if TYPE_CHECKING:
    from shared.dumpstore import DumpRef, DumpStore, LoadedManifest

Range = tuple[dt.date, dt.date]
MAX_HISTORY_DAYS = 3653


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
    # At most ten years are listed: a row mistyped into year 202 would otherwise list
    # eighteen centuries of weekdays.
    since = max(since, first - dt.timedelta(days=MAX_HISTORY_DAYS))
    return calendar.trading_days(since, first - dt.timedelta(days=1))


def describe_days(days: tuple[dt.date, ...] | list[dt.date]) -> str:
    """``2026-10-01 … 2026-11-06 (27 trading days)`` or the dates themselves when few."""
    if len(days) <= 5:
        return ", ".join(d.isoformat() for d in days)
    return f"{days[0]} … {days[-1]} ({len(days):,} trading days)"


@dataclass(frozen=True)
class Missing:
    """What a sync cannot give the laptop; any of it makes the sync exit 4."""

    holes: tuple[dt.date, ...]  # trading days no dump covers (superseded dumps' included)
    breaks: tuple[str, ...]  # chain breaks and unreadable superseded dumps, as sentences
    history: tuple[dt.date, ...]  # the instance's days before the laptop's first one

    def __bool__(self) -> bool:
        return bool(self.holes or self.breaks or self.history)


def what_is_missing(store: DumpStore, calendar: TradingCalendar, covered: list[Range], *,
                    applied: Sequence[str], listed: Sequence[DumpRef],
                    superseded: Sequence[str], pending: Sequence[LoadedManifest],
                    newest_readable: bool) -> Missing:
    """Holes between covered days (including days only a superseded dump covered), chain
    breaks, and the instance's history that no dump in S3 holds any more."""
    breaks: list[str] = []
    superseded_ranges: list[Range] = []
    refs = {r.dump_id: r for r in listed}
    for dump_id in superseded:
        try:
            m = store.load_manifest(refs[dump_id]).manifest
        except ManifestError as exc:
            breaks.append(f"dump {dump_id} was never applied and cannot be read "
                          f"({exc.message})")
            continue
        if m.first_day and m.last_day:
            superseded_ranges.append((m.first_day, m.last_day))
    known = set(applied) | {r.dump_id for r in listed}
    if applied:
        for loaded in pending:
            prev = loaded.manifest.previous_dump_id
            if prev and prev not in known:
                breaks.append(f"dump {loaded.manifest.dump_id} follows {prev}, which is "
                              "neither in S3 nor applied on this laptop")
    newest: Manifest | None = pending[-1].manifest if pending else None
    if newest is None and listed and newest_readable:
        try:
            newest = store.load_manifest(listed[-1]).manifest
        except ManifestError:
            newest = None  # named by the sync that reaches it
    found = holes(calendar, covered, superseded_ranges)
    history = missing_history(calendar, covered, history_from(newest))
    return Missing(tuple(found), tuple(breaks), tuple(d for d in history if d not in found))
