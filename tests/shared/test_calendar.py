"""shared/calendar.py and shared/data/nse_calendar.toml: NSE's trading days, cross-checked
against exchange_calendars (XBOM) and pandas_market_calendars (XNSE)."""

from __future__ import annotations

import datetime as dt
import logging
import tomllib
import warnings
from importlib import resources
from typing import Any

import pytest

from shared.calendar import IST, TradingCalendar, today_ist
from shared.errors import CalendarError


@pytest.fixture(scope="module")
def shipped() -> TradingCalendar:
    return TradingCalendar.load()


@pytest.fixture
def calendar() -> TradingCalendar:
    """A fresh calendar: its "warned once" memory starts empty."""
    return TradingCalendar.load()


def every_weekday(year: int) -> list[dt.date]:
    day, days = dt.date(year, 1, 1), []
    while day.year == year:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


# -- the data file ---------------------------------------------------------------------------

def test_shipped_file_covers_2025_and_2026(shipped: TradingCalendar) -> None:
    assert {2025, 2026} <= shipped.years


def test_shipped_file_has_a_version_and_the_regular_session_times(
        shipped: TradingCalendar) -> None:
    assert shipped.version
    assert (shipped.session_open, shipped.session_close) == (dt.time(9, 15), dt.time(15, 30))


def test_every_listed_holiday_is_a_weekday_in_its_own_year() -> None:
    text = resources.files("shared").joinpath("data/nse_calendar.toml").read_text("utf-8")
    data = tomllib.loads(text)

    for year, section in data["years"].items():
        for holiday in section["holidays"]:
            assert holiday["date"].year == int(year), holiday
            assert holiday["date"].weekday() < 5, holiday


# -- holidays, weekends, special sessions ----------------------------------------------------

def test_guru_nanak_jayanti_2026_is_a_holiday(shipped: TradingCalendar) -> None:
    day = dt.date(2026, 11, 24)

    assert not shipped.is_trading_day(day)
    holiday = shipped.holiday(day)
    assert holiday is not None and "Guru Nanak" in holiday.name


def test_an_ordinary_weekday_trades_and_is_no_holiday(shipped: TradingCalendar) -> None:
    day = dt.date(2026, 11, 25)

    assert shipped.is_trading_day(day)
    assert shipped.holiday(day) is None


@pytest.mark.parametrize("year", [2025, 2026])
def test_weekends_never_trade(shipped: TradingCalendar, year: int) -> None:
    day = dt.date(year, 1, 1)
    while day.year == year:
        if day.weekday() >= 5:
            assert not shipped.is_trading_day(day), day
        day += dt.timedelta(days=1)


def test_weekend_outside_the_file_never_trades_either(calendar: TradingCalendar) -> None:
    assert not calendar.is_trading_day(dt.date(2027, 1, 2))  # a Saturday


def test_muhurat_2025_is_a_session_on_a_holiday_with_its_times(
        shipped: TradingCalendar) -> None:
    day = dt.date(2025, 10, 21)

    assert not shipped.is_trading_day(day)
    assert shipped.has_session(day)
    special = shipped.special_sessions[day]
    assert "Muhurat" in special.name
    assert (special.open, special.close) == (dt.time(13, 45), dt.time(14, 45))


def test_muhurat_2026_is_a_sunday_session_with_times_not_yet_announced(
        shipped: TradingCalendar) -> None:
    day = dt.date(2026, 11, 8)

    assert day.weekday() == 6
    assert not shipped.is_trading_day(day)
    assert shipped.has_session(day)
    assert shipped.special_sessions[day].open is None
    assert shipped.special_sessions[day].close is None


def test_regular_trading_day_has_a_session(shipped: TradingCalendar) -> None:
    assert shipped.has_session(dt.date(2026, 11, 25))


def test_holiday_without_special_session_has_no_session(shipped: TradingCalendar) -> None:
    assert not shipped.has_session(dt.date(2026, 11, 24))


# -- years the file does not know ------------------------------------------------------------

def test_year_outside_the_file_logs_one_loud_warning(calendar: TradingCalendar,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.calendar"):
        calendar.is_trading_day(dt.date(2027, 3, 1))
        calendar.is_trading_day(dt.date(2027, 3, 2))
        calendar.has_session(dt.date(2027, 3, 3))

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no data for 2027" in warnings[0].getMessage()


def test_each_unknown_year_gets_its_own_warning(calendar: TradingCalendar,
                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.calendar"):
        calendar.is_trading_day(dt.date(2027, 3, 1))
        calendar.is_trading_day(dt.date(2024, 3, 1))

    assert [r.getMessage().count("no data for 2027") for r in caplog.records] == [1, 0]
    assert "no data for 2024" in caplog.records[1].getMessage()


def test_covered_year_logs_nothing(calendar: TradingCalendar,
                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="shared.calendar"):
        calendar.is_trading_day(dt.date(2026, 3, 2))

    assert caplog.records == []


def test_year_outside_the_file_raises_when_strict(calendar: TradingCalendar) -> None:
    with pytest.raises(CalendarError, match="no data for 2027") as info:
        calendar.is_trading_day(dt.date(2027, 1, 4), strict=True)

    assert "update market-sync" in info.value.hint


def test_has_session_outside_the_file_raises_when_strict(calendar: TradingCalendar) -> None:
    with pytest.raises(CalendarError):
        calendar.has_session(dt.date(2027, 1, 4), strict=True)


def test_covers_says_which_years_the_file_knows(shipped: TradingCalendar) -> None:
    assert shipped.covers(dt.date(2026, 12, 31))
    assert not shipped.covers(dt.date(2027, 1, 1))


# -- next / previous / ranges ----------------------------------------------------------------

def test_next_trading_day_skips_a_long_weekend(shipped: TradingCalendar) -> None:
    # Good Friday 2025-04-18, then the weekend: Thursday is followed by Monday.
    assert shipped.next_trading_day(dt.date(2025, 4, 17)) == dt.date(2025, 4, 21)


def test_previous_trading_day_skips_a_long_weekend(shipped: TradingCalendar) -> None:
    assert shipped.previous_trading_day(dt.date(2025, 4, 21)) == dt.date(2025, 4, 17)


def test_next_trading_day_skips_a_holiday_run(shipped: TradingCalendar) -> None:
    # Diwali 2025: Tue 21 and Wed 22 are holidays.
    assert shipped.next_trading_day(dt.date(2025, 10, 20)) == dt.date(2025, 10, 23)


def test_previous_trading_day_before_a_holiday_run(shipped: TradingCalendar) -> None:
    assert shipped.previous_trading_day(dt.date(2025, 10, 23)) == dt.date(2025, 10, 20)


def test_next_trading_day_of_an_ordinary_day_is_the_day_after(
        shipped: TradingCalendar) -> None:
    assert shipped.next_trading_day(dt.date(2026, 11, 25)) == dt.date(2026, 11, 26)


def test_trading_days_lists_both_ends_inclusive(shipped: TradingCalendar) -> None:
    assert shipped.trading_days(dt.date(2025, 4, 16), dt.date(2025, 4, 22)) == [
        dt.date(2025, 4, 16), dt.date(2025, 4, 17), dt.date(2025, 4, 21), dt.date(2025, 4, 22)]


def test_trading_days_of_an_empty_range_is_empty(shipped: TradingCalendar) -> None:
    assert shipped.trading_days(dt.date(2025, 4, 22), dt.date(2025, 4, 21)) == []


def test_calendar_with_no_trading_day_in_a_month_raises() -> None:
    text = ('version = "t"\nsession_open = "09:15"\nsession_close = "15:30"\n'
            "[years.2030]\nholidays = [\n"
            + "".join(f'  {{ date = {day.isoformat()}, name = "closed" }},\n'
                      for day in every_weekday(2030) if day.month <= 3)
            + "]\n")
    closed = TradingCalendar.from_toml(text)

    with pytest.raises(CalendarError, match="no trading day within 30 days"):
        closed.next_trading_day(dt.date(2030, 1, 31))
    with pytest.raises(CalendarError, match="no trading day within 30 days"):
        closed.previous_trading_day(dt.date(2030, 3, 1))


# -- today in India --------------------------------------------------------------------------

def test_today_ist_is_the_indian_date_late_in_the_utc_evening() -> None:
    assert today_ist(dt.datetime(2026, 1, 1, 19, 0, tzinfo=dt.UTC)) == dt.date(2026, 1, 2)


def test_today_ist_is_the_indian_date_early_in_the_utc_evening() -> None:
    assert today_ist(dt.datetime(2026, 1, 1, 18, 29, tzinfo=dt.UTC)) == dt.date(2026, 1, 1)


def test_ist_is_asia_kolkata() -> None:
    assert dt.datetime(2026, 1, 1, tzinfo=IST).utcoffset() == dt.timedelta(hours=5, minutes=30)


# -- the cross-check -------------------------------------------------------------------------

# Where a reference calendar and NSE's circulars disagree, with the reason. Everything else
# must agree day for day.
XBOM_DIFFERENCES: dict[dt.date, str] = {}
XNSE_DIFFERENCES: dict[dt.date, str] = {
    # Diwali Laxmi Pujan: a holiday with only the Muhurat special session (13:45-14:45).
    # pandas_market_calendars lists it as a session; it has no regular session.
    dt.date(2025, 10, 21): "Diwali Laxmi Pujan has only the Muhurat special session",
}


@pytest.fixture(scope="module")
def xbom() -> Any:
    import exchange_calendars

    with warnings.catch_warnings():
        # exchange_calendars' own use of a pandas API pandas deprecates; not ours to fix.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        return exchange_calendars.get_calendar("XBOM", start="2025-01-01", end="2026-12-31")


@pytest.fixture(scope="module")
def xbom_sessions(xbom: Any) -> set[dt.date]:
    return {ts.date() for ts in xbom.sessions}


@pytest.fixture(scope="module")
def xbom_is_session(xbom: Any) -> dict[dt.date, bool]:
    import pandas as pd  # type: ignore[import-untyped]

    return {day: bool(xbom.is_session(pd.Timestamp(day)))
            for year in (2025, 2026) for day in every_weekday(year)}


@pytest.fixture(scope="module")
def xnse_sessions() -> set[dt.date]:
    import pandas_market_calendars

    xnse = pandas_market_calendars.get_calendar("XNSE")
    schedule = xnse.schedule(start_date="2025-01-01", end_date="2026-12-31")
    return {ts.date() for ts in schedule.index}


@pytest.mark.parametrize("year", [2025, 2026])
def test_every_weekday_agrees_with_exchange_calendars_xbom(
        shipped: TradingCalendar, xbom_is_session: dict[dt.date, bool], year: int) -> None:
    disagree = {day: (shipped.is_trading_day(day), xbom_is_session[day])
                for day in every_weekday(year)
                if shipped.is_trading_day(day) != xbom_is_session[day]}

    assert set(disagree) == {d for d in XBOM_DIFFERENCES if d.year == year}, disagree


@pytest.mark.parametrize("year", [2025, 2026])
def test_every_weekday_agrees_with_pandas_market_calendars_xnse(
        shipped: TradingCalendar, xnse_sessions: set[dt.date], year: int) -> None:
    disagree = {day: (shipped.is_trading_day(day), day in xnse_sessions)
                for day in every_weekday(year)
                if shipped.is_trading_day(day) != (day in xnse_sessions)}

    assert set(disagree) == {d for d in XNSE_DIFFERENCES if d.year == year}, disagree


def test_xbom_treats_muhurat_day_2025_as_closed_like_us(
        shipped: TradingCalendar, xbom_is_session: dict[dt.date, bool]) -> None:
    day = dt.date(2025, 10, 21)

    assert xbom_is_session[day] is False
    assert shipped.is_trading_day(day) is False


def test_xnse_treats_muhurat_day_2025_as_a_session_unlike_us(
        shipped: TradingCalendar, xnse_sessions: set[dt.date]) -> None:
    # Documented difference: XNSE lists Diwali Laxmi Pujan as a session; NSE holds only the
    # Muhurat special session that day, which we report through has_session().
    day = dt.date(2025, 10, 21)

    assert day in xnse_sessions
    assert shipped.is_trading_day(day) is False
    assert shipped.has_session(day) is True


def test_no_reference_session_falls_on_a_weekend(xbom_sessions: set[dt.date],
                                                 xnse_sessions: set[dt.date]) -> None:
    assert [d for d in xbom_sessions | xnse_sessions if d.weekday() >= 5] == []
