"""What the stack costs a month: an ESTIMATE from list prices, and the real month-to-date
spend where Cost Explorer is allowed.

The instance runs on trading days only (EventBridge starts it at 08:50 IST and
stops it at the latest at 16:30 IST; on an exchange holiday it powers itself
off right after boot), so its hours come from :class:`TradingCalendar`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ec2.instance.schedule import SCHEDULE
from installer.template import ROOT_VOLUME_GB
from shared.calendar import TradingCalendar
from shared.errors import MarketSyncError

if TYPE_CHECKING:
    from mypy_boto3_ce import CostExplorerClient

logger = logging.getLogger(__name__)

# --- Prices: AWS on-demand list prices for ap-south-1 (Mumbai), USD, excluding taxes. -----
# Source: https://aws.amazon.com/ec2/pricing/on-demand/ (Linux), https://aws.amazon.com/ebs/
# pricing/, https://aws.amazon.com/s3/pricing/, https://aws.amazon.com/vpc/pricing/ (public
# IPv4), https://aws.amazon.com/cloudwatch/pricing/ — as listed in November 2024. Prices
# change: this is an ESTIMATE; the bill is what Cost Explorer says.
PRICE_DATE = "2024-11"
EC2_HOURLY_USD = {
    "t3.micro": 0.0112,
    "t3.small": 0.0224,
    "t3.medium": 0.0448,
    "t3.large": 0.0896,
}
EBS_GP3_GB_MONTH_USD = 0.0912
S3_STANDARD_GB_MONTH_USD = 0.025
S3_PUT_PER_1000_USD = 0.005
S3_GET_PER_1000_USD = 0.0004
TRANSFER_OUT_GB_USD = 0.1093  # to the internet; the first 100 GB a month are free per account
PUBLIC_IPV4_HOURLY_USD = 0.005
CLOUDWATCH_ALARM_MONTH_USD = 0.10
CLOUDWATCH_METRIC_MONTH_USD = 0.30
CLOUDWATCH_LOGS_GB_USD = 0.50
# T3 instances launch "unlimited": CPU above the baseline past the earned credits is billed
# per vCPU-hour (https://aws.amazon.com/ec2/pricing/on-demand/#T2.2FT3.2FT4g_Unlimited_Mode_Pricing).
T3_SURPLUS_VCPU_HOUR_USD = 0.05
# AWS India (AISPL) adds 18 % GST to the bill of a trader in India.
GST_RATE = 0.18
USD_TO_INR = 84.0  # only for the rupee hint next to the dollar total
# Each dump carries its own trading day and re-covers the previous one (the overlap that
# catches late rows), so every day's rows are stored in two dumps.
DUMP_COPIES_PER_DAY = 2

ALARMS = 3  # status check, disk, backup missing
CUSTOM_METRICS = 7  # BackupSucceeded + the CloudWatch agent's disk/mem/swap (two dimension sets)
HOLIDAY_BOOT_HOURS = 0.1  # started 08:50 on a weekday holiday, powered off by the boot guard


class CostError(MarketSyncError):
    """Cost Explorer could not be read."""


@dataclass(frozen=True)
class UsageAssumptions:
    """What the estimate assumes; each can be changed on the command line."""

    daily_dump_mb: float = 50.0  # compressed dump size per trading day
    retention_days: int = 365
    volume_gb: int = ROOT_VOLUME_GB
    log_gb_month: float = 0.2
    requests_per_day: int = 200  # PUT + LIST + GET, instance and laptop together
    surplus_vcpu_hours_per_day: float = 0.25  # T3 unlimited: bursts past the credits


@dataclass(frozen=True)
class CostLine:
    item: str
    detail: str
    usd: float


@dataclass(frozen=True)
class CostEstimate:
    instance_type: str
    year: int
    trading_days_per_month: float
    instance_hours_per_month: float
    lines: tuple[CostLine, ...]

    @property
    def total_usd(self) -> float:
        return sum(line.usd for line in self.lines)

    def render(self) -> str:
        width = max(len(line.item) for line in self.lines)
        rows = [f"ESTIMATE for {self.instance_type} in ap-south-1 (list prices of {PRICE_DATE}, "
                f"USD, with {GST_RATE:.0%} GST, before the free tier):"]
        rows += [f"  {line.item:<{width}}  {line.usd:>7.2f}   {line.detail}"
                 for line in self.lines]
        rows.append(f"  {'total a month':<{width}}  {self.total_usd:>7.2f}   "
                    f"(about ₹{self.total_usd * USD_TO_INR:,.0f})")
        rows.append(f"  based on {self.trading_days_per_month:.1f} trading days a month "
                    f"(NSE {self.year}) and {self.instance_hours_per_month:.0f} instance hours")
        return "\n".join(rows)

    def to_json(self) -> dict[str, Any]:
        return {"instance_type": self.instance_type, "estimate": True,
                "price_date": PRICE_DATE, "total_usd": round(self.total_usd, 2),
                "trading_days_per_month": round(self.trading_days_per_month, 2),
                "instance_hours_per_month": round(self.instance_hours_per_month, 1),
                "lines": [{"item": x.item, "detail": x.detail, "usd": round(x.usd, 2)}
                          for x in self.lines]}


def hours_per_trading_day() -> float:
    start, stop = SCHEDULE.instance_start, SCHEDULE.safety_stop
    return (stop.hour * 60 + stop.minute - start.hour * 60 - start.minute) / 60


def calendar_year(calendar: TradingCalendar, today: dt.date) -> int:
    """The year the estimate counts: this one if the holiday list covers it, else the latest."""
    if today.year in calendar.years:
        return today.year
    return max(y for y in calendar.years if y <= today.year) if any(
        y <= today.year for y in calendar.years) else min(calendar.years)


def estimate(instance_type: str, calendar: TradingCalendar, year: int,
             usage: UsageAssumptions = UsageAssumptions()) -> CostEstimate:
    """The monthly cost of the stack with ``instance_type`` under the trading schedule."""
    if instance_type not in EC2_HOURLY_USD:
        raise MarketSyncError(f"no price for instance type {instance_type!r}",
                              f"choose one of {', '.join(EC2_HOURLY_USD)}")
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    trading = calendar.trading_days(first, last)
    weekday_holidays = sum(1 for d in calendar.holidays if d.year == year and d.weekday() < 5)
    days_month = len(trading) / 12
    hours = (len(trading) * hours_per_trading_day() + weekday_holidays * HOLIDAY_BOOT_HOURS) / 12
    stored_gb = (usage.daily_dump_mb / 1000 * DUMP_COPIES_PER_DAY * len(trading)
                 * min(usage.retention_days, 3650) / 365)
    downloaded_gb = usage.daily_dump_mb / 1000 * days_month
    requests = usage.requests_per_day * days_month
    surplus = usage.surplus_vcpu_hours_per_day * days_month
    services = (
        CostLine("EC2 instance", f"{instance_type} × {hours:.0f} h at "
                 f"${EC2_HOURLY_USD[instance_type]}/h", hours * EC2_HOURLY_USD[instance_type]),
        CostLine("public IPv4", f"{hours:.0f} h at ${PUBLIC_IPV4_HOURLY_USD}/h (only while "
                 "running)", hours * PUBLIC_IPV4_HOURLY_USD),
        CostLine("EBS gp3 disk", f"{usage.volume_gb} GB at ${EBS_GP3_GB_MONTH_USD}/GB "
                 "(all month, also while stopped)", usage.volume_gb * EBS_GP3_GB_MONTH_USD),
        CostLine("T3 unlimited credits", f"about {surplus:.0f} vCPU-hours above the baseline "
                 f"at ${T3_SURPLUS_VCPU_HOUR_USD}/vCPU-h (bursts: backup, app start)",
                 surplus * T3_SURPLUS_VCPU_HOUR_USD),
        CostLine("S3 storage", f"{stored_gb:.1f} GB of dumps kept {usage.retention_days} days "
                 f"({usage.daily_dump_mb:.0f} MB a trading day, each day in "
                 f"{DUMP_COPIES_PER_DAY} dumps: the overlap)",
                 stored_gb * S3_STANDARD_GB_MONTH_USD),
        CostLine("S3 requests", f"about {requests:,.0f} a month",
                 requests / 2 / 1000 * (S3_PUT_PER_1000_USD + S3_GET_PER_1000_USD)),
        CostLine("data transfer", f"{downloaded_gb:.1f} GB to the laptop at "
                 f"${TRANSFER_OUT_GB_USD}/GB (first 100 GB/month free)",
                 downloaded_gb * TRANSFER_OUT_GB_USD),
        CostLine("CloudWatch", f"{ALARMS} alarms, {CUSTOM_METRICS} metrics, "
                 f"{usage.log_gb_month} GB logs (much of it in the free tier)",
                 ALARMS * CLOUDWATCH_ALARM_MONTH_USD + CUSTOM_METRICS
                 * CLOUDWATCH_METRIC_MONTH_USD + usage.log_gb_month * CLOUDWATCH_LOGS_GB_USD),
        CostLine("SNS, Scheduler, Budgets", "e-mails, schedule runs and one budget stay in "
                 "the free tier", 0.0),
    )
    subtotal = sum(line.usd for line in services)
    gst = CostLine(f"GST {GST_RATE:.0%}", "on all of the above (AWS India bills it)",
                   subtotal * GST_RATE)
    return CostEstimate(instance_type, year, days_month, hours, (*services, gst))


@dataclass(frozen=True)
class MonthToDate:
    start: dt.date
    end: dt.date
    total_usd: float
    by_service: tuple[tuple[str, float], ...]

    def render(self) -> str:
        rows = [f"Actual spend {self.start} … {self.end} (Cost Explorer, whole account): "
                f"${self.total_usd:.2f}"]
        rows += [f"  {service}: ${usd:.2f}" for service, usd in self.by_service if usd >= 0.005]
        return "\n".join(rows)


def month_to_date(ce: CostExplorerClient, today: dt.date) -> MonthToDate | None:
    """This month's spend so far, or None where Cost Explorer is not allowed."""
    from botocore.exceptions import BotoCoreError, ClientError

    from shared.aws import aws_error

    start = today.replace(day=1)
    end = today + dt.timedelta(days=1)
    try:
        response = ce.get_cost_and_usage(
            TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
            Granularity="MONTHLY", Metrics=["UnblendedCost"],
            GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                    "DataUnavailableException", "OptInRequired"):
            logger.info("Cost Explorer is not available: %s", code)
            return None
        raise aws_error(exc, "read this month's spend from Cost Explorer") from None
    except BotoCoreError as exc:
        raise aws_error(exc, "read this month's spend from Cost Explorer") from None
    services: dict[str, float] = {}
    for period in response.get("ResultsByTime", []):
        for group in period.get("Groups", []):
            amount = float(group.get("Metrics", {}).get("UnblendedCost", {}).get("Amount", 0))
            name = group.get("Keys", ["?"])[0]
            services[name] = services.get(name, 0.0) + amount
        total = period.get("Total", {}).get("UnblendedCost", {}).get("Amount")
        if total is not None and not period.get("Groups"):
            services["total"] = services.get("total", 0.0) + float(total)
    ranked = tuple(sorted(services.items(), key=lambda kv: kv[1], reverse=True))
    return MonthToDate(start, today, sum(services.values()), ranked)
