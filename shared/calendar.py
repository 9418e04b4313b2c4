"""NSE's trading calendar, from the versioned holiday file shipped in ``shared/data``.

All times are Asia/Kolkata. A date in a year the file does not cover is not
guessed: :meth:`TradingCalendar.is_trading_day` logs a loud warning and, with
``strict=True``, raises :class:`CalendarError`.
"""

from __future__ import annotations

import datetime as dt
import logging
import tomllib
from dataclasses import dataclass
from importlib import resources
from zoneinfo import ZoneInfo

from shared.errors import CalendarError

logger = logging.getLogger(__name__)

IST = ZoneInfo("Asia/Kolkata")


@dataclass(frozen=True)
class Holiday:
    date: dt.date
    name: str


@dataclass(frozen=True)
class SpecialSession:
    date: dt.date
    name: str
    open: dt.time | None  # None: NSE has not announced the timing yet
    close: dt.time | None


def _time(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


class TradingCalendar:
    """Which days NSE trades, and when."""

    def __init__(
        self,
        version: str,
        holidays: dict[dt.date, Holiday],
        special_sessions: dict[dt.date, SpecialSession],
        years: frozenset[int],
        session_open: dt.time,
        session_close: dt.time,
    ) -> None:
        self.version = version
        self.holidays = holidays
        self.special_sessions = special_sessions
        self.years = years
        self.session_open = session_open
        self.session_close = session_close
        self._warned: set[int] = set()

    @classmethod
    def load(cls) -> TradingCalendar:
        """The calendar shipped with this version of market-sync."""
        text = resources.files("shared").joinpath("data/nse_calendar.toml").read_text("utf-8")
        return cls.from_toml(text)

    @classmethod
    def from_toml(cls, text: str) -> TradingCalendar:
        data = tomllib.loads(text)
        holidays: dict[dt.date, Holiday] = {}
        specials: dict[dt.date, SpecialSession] = {}
        years: set[int] = set()
        for year_text, year in data["years"].items():
            years.add(int(year_text))
            for item in year.get("holidays", []):
                holidays[item["date"]] = Holiday(item["date"], item["name"])
            for item in year.get("special_sessions", []):
                specials[item["date"]] = SpecialSession(
                    item["date"], item["name"],
                    _time(item["open"]) if "open" in item else None,
                    _time(item["close"]) if "close" in item else None,
                )
        return cls(
            version=data["version"], holidays=holidays, special_sessions=specials,
            years=frozenset(years), session_open=_time(data["session_open"]),
            session_close=_time(data["session_close"]),
        )

    def covers(self, day: dt.date) -> bool:
        return day.year in self.years

    def _check_year(self, day: dt.date, strict: bool) -> None:
        if self.covers(day):
            return
        message = (
            f"the NSE holiday list (version {self.version}) has no data for {day.year}: "
            "holidays in that year are unknown"
        )
        if strict:
            raise CalendarError(message, "update market-sync to get the newer holiday list")
        if day.year not in self._warned:
            self._warned.add(day.year)
            logger.warning("%s; treating weekdays as trading days until updated", message)

    def is_trading_day(self, day: dt.date, *, strict: bool = False) -> bool:
        """A regular session: a weekday that is not an exchange holiday."""
        self._check_year(day, strict)
        return day.weekday() < 5 and day not in self.holidays

    def has_session(self, day: dt.date, *, strict: bool = False) -> bool:
        """Any session that day: regular, or special (Muhurat) on a holiday or weekend."""
        return self.is_trading_day(day, strict=strict) or day in self.special_sessions

    def holiday(self, day: dt.date) -> Holiday | None:
        return self.holidays.get(day)

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Regular trading days from ``start`` to ``end``, both inclusive."""
        days = []
        day = start
        while day <= end:
            if self.is_trading_day(day):
                days.append(day)
            day += dt.timedelta(days=1)
        return days

    def next_trading_day(self, after: dt.date) -> dt.date:
        day = after + dt.timedelta(days=1)
        for _ in range(30):
            if self.is_trading_day(day):
                return day
            day += dt.timedelta(days=1)
        raise CalendarError(f"no trading day within 30 days after {after}")

    def previous_trading_day(self, before: dt.date) -> dt.date:
        day = before - dt.timedelta(days=1)
        for _ in range(30):
            if self.is_trading_day(day):
                return day
            day -= dt.timedelta(days=1)
        raise CalendarError(f"no trading day within 30 days before {before}")


def today_ist(now: dt.datetime | None = None) -> dt.date:
    """Today's date in India (the laptop or instance clock may be in any zone)."""
    moment = now or dt.datetime.now(dt.UTC)
    return moment.astimezone(IST).date()
