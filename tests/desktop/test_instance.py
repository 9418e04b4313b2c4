"""InstanceController against a moto server: state, start, stop, the market-hours guard,
the keep-running tag and the schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from desktop.engine.instance import (
    KEEP_RUNNING_TAG,
    InstanceController,
    ScheduleInfo,
    market_hours,
    next_schedule,
    waiter_timing,
)
from shared.calendar import IST, TradingCalendar
from shared.devtools.motoserver import MotoServer
from shared.errors import AwsError, MarketHoursError, UsageError
from tests.desktop.ec2_world import at, ec2_client, fixed, launch, tags

MONDAY_EVENING = at("2026-11-23", 18)  # a trading day, after the close
MONDAY_MORNING = at("2026-11-23", 10)  # market hours
HOLIDAY_MORNING = at("2026-11-24", 10)  # Guru Nanak Jayanti


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar.load()


@pytest.fixture
def ec2(moto_server: MotoServer) -> Any:
    return ec2_client(moto_server.endpoint_url)


def controller(ec2: Any, instance_id: str, calendar: TradingCalendar,
               now: dt.datetime = MONDAY_EVENING) -> InstanceController:
    return InstanceController(ec2, instance_id, calendar=calendar, clock=fixed(now))


def test_state_reports_what_ec2_says(ec2: Any, calendar: TradingCalendar) -> None:
    instance_id = launch(ec2)

    state = controller(ec2, instance_id, calendar).state()

    assert state.instance_id == instance_id and state.state == "running"
    assert state.public_ip and state.instance_type == "t3.small"
    assert state.launch_time is not None and state.launch_time.tzinfo is not None
    assert state.launch_time.utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert state.seen_at == MONDAY_EVENING


def test_stop_and_start_with_wait_reach_stopped_and_running(ec2: Any,
                                                            calendar: TradingCalendar) -> None:
    instance_id = launch(ec2)
    control = controller(ec2, instance_id, calendar)

    stopped = control.stop(wait=True, timeout=30)
    started = control.start(wait=True, timeout=30)

    assert stopped.state == "stopped" and stopped.public_ip is None
    assert started.state == "running" and started.public_ip


def test_start_without_wait_returns_the_state_after_asking(ec2: Any,
                                                           calendar: TradingCalendar) -> None:
    instance_id = launch(ec2, stopped=True)

    state = controller(ec2, instance_id, calendar).start()

    assert state.state in ("pending", "running")


def test_stop_during_market_hours_needs_force(ec2: Any, calendar: TradingCalendar) -> None:
    instance_id = launch(ec2)
    control = controller(ec2, instance_id, calendar, MONDAY_MORNING)

    with pytest.raises(MarketHoursError) as refused:
        control.stop()

    assert isinstance(refused.value, UsageError) and refused.value.exit_code == 2
    assert "market is open" in refused.value.message and "--force" in refused.value.hint
    assert control.state().state == "running"
    assert control.stop(force=True, wait=True, timeout=30).state == "stopped"


def test_stop_on_a_holiday_morning_needs_no_force(ec2: Any, calendar: TradingCalendar) -> None:
    instance_id = launch(ec2)

    state = controller(ec2, instance_id, calendar, HOLIDAY_MORNING).stop(wait=True, timeout=30)

    assert state.state == "stopped"


@pytest.mark.parametrize(("moment", "guarded"), [
    (at("2026-11-23", 8, 59), False), (at("2026-11-23", 9, 0), True),
    (at("2026-11-23", 15, 29), True), (at("2026-11-23", 15, 30), False),
    (at("2026-11-28", 11), False),  # Saturday
    (dt.datetime(2026, 11, 23, 4, 0, tzinfo=dt.UTC), True),  # 09:30 IST, given in UTC
])
def test_market_hours_are_0900_to_1530_ist_on_trading_days(
        calendar: TradingCalendar, moment: dt.datetime, guarded: bool) -> None:
    assert (market_hours(calendar, moment) is not None) is guarded


def test_unknown_instance_is_one_plain_sentence(ec2: Any, calendar: TradingCalendar) -> None:
    with pytest.raises(AwsError) as failed:
        controller(ec2, "i-0123456789abcdef0", calendar).state()

    assert "does not exist" in failed.value.message and "instance_id" in failed.value.hint


def test_start_of_an_unknown_instance_is_mapped_too(ec2: Any, calendar: TradingCalendar) -> None:
    with pytest.raises(AwsError, match="does not exist"):
        controller(ec2, "i-0123456789abcdef0", calendar).start()


def test_keep_running_tag_is_what_the_boot_guard_reads(ec2: Any,
                                                       calendar: TradingCalendar) -> None:
    from ec2 import guard

    instance_id = launch(ec2)
    until = at("2026-11-24", 18)

    controller(ec2, instance_id, calendar).set_keep_running_until(until)

    value = tags(ec2, instance_id)[KEEP_RUNNING_TAG]
    assert KEEP_RUNNING_TAG == guard.KEEP_RUNNING_TAG
    assert value == "2026-11-24T18:00+05:30"
    assert guard.parse_keep_running(value) == until


def test_keep_running_until_a_naive_time_means_ist(ec2: Any, calendar: TradingCalendar) -> None:
    instance_id = launch(ec2)

    controller(ec2, instance_id, calendar).set_keep_running_until(dt.datetime(2026, 11, 24, 18))

    assert tags(ec2, instance_id)[KEEP_RUNNING_TAG] == "2026-11-24T18:00+05:30"


@pytest.mark.parametrize(("now", "start", "stop"), [
    (at("2026-11-23", 7), at("2026-11-23", 8, 55), at("2026-11-23", 15, 35)),
    # during the session: the next start is the next trading day's (24th is a holiday)
    (at("2026-11-23", 10), at("2026-11-25", 8, 55), at("2026-11-23", 15, 35)),
    (at("2026-11-23", 16), at("2026-11-25", 8, 55), at("2026-11-25", 15, 35)),
    (at("2026-11-27", 16), at("2026-11-30", 8, 55), at("2026-11-30", 15, 35)),  # weekend
    (at("2026-11-28", 12), at("2026-11-30", 8, 55), at("2026-11-30", 15, 35)),
])
def test_schedule_is_the_next_0855_start_and_1535_stop_on_trading_days(
        calendar: TradingCalendar, now: dt.datetime, start: dt.datetime,
        stop: dt.datetime) -> None:
    info = next_schedule(calendar, now)

    assert info == ScheduleInfo(start, stop)
    assert info.next_start is not None and info.next_start.tzinfo is IST


def test_controller_schedule_uses_its_clock(calendar: TradingCalendar, ec2: Any) -> None:
    control = controller(ec2, "i-unused", calendar, at("2026-11-23", 7))

    assert control.schedule().next_start == at("2026-11-23", 8, 55)
    assert control.schedule(at("2026-11-23", 16)).next_start == at("2026-11-25", 8, 55)


@pytest.mark.parametrize(("timeout", "delay", "attempts"),
                         [(300, 15, 20), (60, 3, 20), (2, 1, 2), (0.5, 1, 1)])
def test_waiter_timing_follows_the_timeout(timeout: float, delay: int, attempts: int) -> None:
    assert waiter_timing(timeout) == (delay, attempts)
