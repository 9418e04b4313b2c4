"""Dates and times in JSON: ISO 8601 text, or null."""

from __future__ import annotations

import datetime as dt


def iso_or_none(value: dt.date | None) -> str | None:
    """``value.isoformat()`` (a date or a datetime), or None."""
    return value.isoformat() if value else None


def date_or_none(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None
