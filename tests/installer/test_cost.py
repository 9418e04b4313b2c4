"""The monthly estimate: trading-day hours from the calendar, and the month-to-date spend."""

from __future__ import annotations

import datetime as dt

import pytest

from installer import cost
from shared.aws import AwsClients
from shared.calendar import TradingCalendar


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar.load()


def test_instance_hours_follow_the_trading_calendar(calendar: TradingCalendar) -> None:
    est = cost.estimate("t3.small", calendar, 2026)
    trading = len(calendar.trading_days(dt.date(2026, 1, 1), dt.date(2026, 12, 31)))
    assert est.trading_days_per_month == pytest.approx(trading / 12)
    assert 240 <= trading <= 252  # weekdays minus NSE holidays
    hours = trading * (16.5 - (8 + 50 / 60))
    assert est.instance_hours_per_month == pytest.approx(hours / 12, abs=1.0)


def test_medium_costs_more_than_small_by_the_instance_line_only(
        calendar: TradingCalendar) -> None:
    small = cost.estimate("t3.small", calendar, 2026)
    medium = cost.estimate("t3.medium", calendar, 2026)
    difference = medium.total_usd - small.total_usd
    assert difference == pytest.approx(small.instance_hours_per_month * (0.0448 - 0.0224)
                                       * (1 + cost.GST_RATE))
    assert 5 < small.total_usd < 15 and 8 < medium.total_usd < 20


def test_estimate_lists_instance_disk_storage_and_transfer(calendar: TradingCalendar) -> None:
    est = cost.estimate("t3.small", calendar, 2026,
                        cost.UsageAssumptions(daily_dump_mb=1000, retention_days=30))
    items = {line.item: line for line in est.lines}
    assert items["EBS gp3 disk"].usd == pytest.approx(30 * cost.EBS_GP3_GB_MONTH_USD)
    assert items["data transfer"].usd == pytest.approx(
        est.trading_days_per_month * cost.TRANSFER_OUT_GB_USD)
    assert items["S3 storage"].usd > 0
    assert "ESTIMATE" in est.render() and "total a month" in est.render()


def test_estimate_counts_the_overlap_t3_credits_and_gst(calendar: TradingCalendar) -> None:
    usage = cost.UsageAssumptions(daily_dump_mb=1000, retention_days=365)
    est = cost.estimate("t3.small", calendar, 2026, usage)
    items = {line.item: line for line in est.lines}
    trading = len(calendar.trading_days(dt.date(2026, 1, 1), dt.date(2026, 12, 31)))
    # each day lives in two dumps (its own and the next day's overlap)
    assert items["S3 storage"].usd == pytest.approx(
        1.0 * 2 * trading * cost.S3_STANDARD_GB_MONTH_USD)
    assert items["T3 unlimited credits"].usd == pytest.approx(
        usage.surplus_vcpu_hours_per_day * est.trading_days_per_month
        * cost.T3_SURPLUS_VCPU_HOUR_USD)
    before_tax = sum(line.usd for line in est.lines if not line.item.startswith("GST"))
    assert items["GST 18%"].usd == pytest.approx(before_tax * 0.18)
    assert est.total_usd == pytest.approx(before_tax * 1.18)


def test_unknown_instance_type_is_refused(calendar: TradingCalendar) -> None:
    from shared.errors import MarketSyncError

    with pytest.raises(MarketSyncError):
        cost.estimate("m5.24xlarge", calendar, 2026)


def test_month_to_date_reads_cost_explorer(clients: AwsClients) -> None:
    spend = cost.month_to_date(clients.ce(), dt.date(2026, 11, 24))
    assert spend is not None and spend.start == dt.date(2026, 11, 1)
    assert spend.total_usd >= 0


def test_month_to_date_is_none_where_cost_explorer_is_denied() -> None:
    import boto3
    from botocore.stub import Stubber

    ce = boto3.client("ce", region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
    with Stubber(ce) as stub:
        stub.add_client_error("get_cost_and_usage", "AccessDeniedException", "not allowed")
        assert cost.month_to_date(ce, dt.date(2026, 11, 24)) is None


def test_cli_cost_prints_both_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import main

    assert main(["cost", "--no-actual"]) == 0
    out = capsys.readouterr().out
    assert "ESTIMATE for t3.small" in out and "ESTIMATE for t3.medium" in out
