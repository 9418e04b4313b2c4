"""The configured EC2 instance: its state, start and stop, the app's health, the schedule.

Qt-free and light to import: boto3 and botocore are loaded by the client the caller
injects, and by :func:`shared.aws.aws_error` when a call fails. Every AWS failure
becomes an :class:`~shared.errors.AwsError` in the trader's words at this edge.
All times are Asia/Kolkata.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.calendar import IST, TradingCalendar
from shared.errors import AwsError, CalendarError, MarketHoursError
from shared.isodates import iso_or_none

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

logger = logging.getLogger(__name__)

# The instance's boot guard (ec2/guard.py) reads this tag; keep the two in step.
KEEP_RUNNING_TAG = "market-sync:keep-running-until"

APP_START = dt.time(8, 55)  # the app's systemd timer on the instance
APP_STOP = dt.time(15, 35)
MARKET_OPEN = dt.time(9, 0)  # pre-open included: stopping from here on loses data
MARKET_CLOSE = dt.time(15, 30)
HEALTH_TIMEOUT = 3.0  # seconds; the tray polls, a slow answer is an unhealthy one

STATES = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")


def now_ist() -> dt.datetime:
    return dt.datetime.now(IST)


def current_time() -> dt.datetime:
    """The default clock: :func:`now_ist`, looked up at each call (tests replace it)."""
    return now_ist()


@dataclass(frozen=True)
class InstanceState:
    """What EC2 said about the instance, and when we asked."""

    instance_id: str
    state: str  # pending | running | stopping | stopped | shutting-down | terminated
    public_ip: str | None
    launch_time: dt.datetime | None
    instance_type: str | None
    seen_at: dt.datetime

    @property
    def is_running(self) -> bool:
        return self.state == "running"

    @property
    def is_transitioning(self) -> bool:
        return self.state in ("pending", "stopping", "shutting-down")

    def describe(self) -> str:
        address = f", {self.public_ip}" if self.public_ip else ""
        kind = f" ({self.instance_type})" if self.instance_type else ""
        return (f"{self.instance_id}{kind}: {self.state}{address}, seen "
                f"{self.seen_at.astimezone(IST):%H:%M:%S} IST")

    def to_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "state": self.state,
                "public_ip": self.public_ip, "launch_time": iso_or_none(self.launch_time),
                "instance_type": self.instance_type, "seen_at": iso_or_none(self.seen_at)}


@dataclass(frozen=True)
class AppHealth:
    """One HTTP GET of the app's health URL: 2xx is healthy."""

    ok: bool
    status: int | None
    detail: str
    checked_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status, "detail": self.detail,
                "checked_at": iso_or_none(self.checked_at)}


@dataclass(frozen=True)
class ScheduleInfo:
    """The app's next start (08:55 IST) and stop (15:35 IST), on trading days only."""

    next_start: dt.datetime | None
    next_stop: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"next_start": iso_or_none(self.next_start),
                "next_stop": iso_or_none(self.next_stop)}


def next_schedule(calendar: TradingCalendar, now: dt.datetime) -> ScheduleInfo:
    """The first 08:55 and the first 15:35 IST strictly after ``now`` on a trading day.

    During a session the next start is therefore the next trading day's. A calendar
    that runs out (no trading day within 30 days) gives ``None`` rather than a guess.
    """
    return ScheduleInfo(_next_at(calendar, now, APP_START), _next_at(calendar, now, APP_STOP))


def _next_at(calendar: TradingCalendar, now: dt.datetime, at: dt.time) -> dt.datetime | None:
    local = now.astimezone(IST)
    day = local.date()
    try:
        if not (calendar.is_trading_day(day) and dt.datetime.combine(day, at, IST) > local):
            day = calendar.next_trading_day(day)
    except CalendarError:
        return None
    return dt.datetime.combine(day, at, IST)


def market_hours(calendar: TradingCalendar, now: dt.datetime) -> str | None:
    """Why ``now`` is market hours (a sentence), or ``None`` when it is not."""
    local = now.astimezone(IST)
    day, clock = local.date(), local.time()
    if calendar.is_trading_day(day) and MARKET_OPEN <= clock < MARKET_CLOSE:
        return f"the market is open ({MARKET_OPEN:%H:%M}–{MARKET_CLOSE:%H:%M} IST today)"
    special = calendar.special_sessions.get(day)
    if special and special.open and special.close and special.open <= clock < special.close:
        return (f"{special.name} is in session ({special.open:%H:%M}–{special.close:%H:%M} "
                "IST today)")
    return None


class InstanceController:
    """Start, stop and watch one EC2 instance. The client is injected (moto in tests)."""

    def __init__(self, ec2: EC2Client, instance_id: str, *, health_url: str | None = None,
                 calendar: TradingCalendar | None = None,
                 clock: Callable[[], dt.datetime] = current_time,
                 health_timeout: float = HEALTH_TIMEOUT) -> None:
        self.ec2 = ec2
        self.instance_id = instance_id
        self.health_url = health_url
        self.calendar = calendar or TradingCalendar.load()
        self.clock = clock
        self.health_timeout = health_timeout

    # -- reading ---------------------------------------------------------------------------
    def state(self) -> InstanceState:
        action = f"read the state of instance {self.instance_id}"
        try:
            response = self.ec2.describe_instances(InstanceIds=[self.instance_id])
        except Exception as exc:
            raise _mapped(exc, action) from None
        found = [i for r in response.get("Reservations", []) for i in r.get("Instances", [])
                 if i.get("InstanceId") == self.instance_id]
        if not found:
            raise AwsError(f"the EC2 instance {self.instance_id} does not exist in this region",
                           "check `instance_id` and `region` under [aws] in the config")
        item = found[0]
        launch = item.get("LaunchTime")
        return InstanceState(
            instance_id=self.instance_id,
            state=str(item.get("State", {}).get("Name", "unknown")),
            public_ip=item.get("PublicIpAddress") or None,
            launch_time=launch.astimezone(IST) if launch else None,
            instance_type=item.get("InstanceType"),
            seen_at=self.clock().astimezone(IST),
        )

    def schedule(self, now: dt.datetime | None = None) -> ScheduleInfo:
        return next_schedule(self.calendar, now or self.clock())

    # -- changing --------------------------------------------------------------------------
    def start(self, wait: bool = False, timeout: float = 300) -> InstanceState:
        try:
            self.ec2.start_instances(InstanceIds=[self.instance_id])
        except Exception as exc:
            raise _mapped(exc, f"start instance {self.instance_id}") from None
        logger.info("asked EC2 to start %s", self.instance_id)
        if wait:
            self._wait("instance_running", "running", timeout)
        return self.state()

    def stop(self, force: bool = False, wait: bool = False, timeout: float = 300) -> InstanceState:
        reason = market_hours(self.calendar, self.clock())
        if reason and not force:
            raise MarketHoursError(
                f"not stopping {self.instance_id}: {reason}, and stopping now would cut off "
                "today's data",
                "stop it anyway with force (`market-sync stop --force`), or wait until "
                f"{MARKET_CLOSE:%H:%M} IST")
        if reason:
            logger.warning("stopping %s during market hours (forced): %s",
                           self.instance_id, reason)
        try:
            self.ec2.stop_instances(InstanceIds=[self.instance_id])
        except Exception as exc:
            raise _mapped(exc, f"stop instance {self.instance_id}") from None
        logger.info("asked EC2 to stop %s", self.instance_id)
        if wait:
            self._wait("instance_stopped", "stopped", timeout)
        return self.state()

    def set_keep_running_until(self, until: dt.datetime) -> None:
        """Tag the instance so its boot guard and after-backup power-off leave it up."""
        moment = until if until.tzinfo else until.replace(tzinfo=IST)
        value = moment.astimezone(IST).isoformat(timespec="minutes")
        try:
            self.ec2.create_tags(Resources=[self.instance_id],
                                 Tags=[{"Key": KEEP_RUNNING_TAG, "Value": value}])
        except Exception as exc:
            raise _mapped(exc, f"tag instance {self.instance_id}") from None
        logger.info("tagged %s %s=%s", self.instance_id, KEEP_RUNNING_TAG, value)

    def _wait(self, waiter_name: str, target: str, timeout: float) -> None:
        import botocore.exceptions

        delay, attempts = waiter_timing(timeout)
        waiter = self.ec2.get_waiter(waiter_name)  # type: ignore[call-overload]
        try:
            waiter.wait(InstanceIds=[self.instance_id],
                        WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
        except botocore.exceptions.WaiterError as exc:
            raise self._waiter_failure(exc, target, timeout) from None
        except Exception as exc:
            raise _mapped(exc, f"wait for instance {self.instance_id} to be {target}") from None

    def _waiter_failure(self, exc: Any, target: str, timeout: float) -> AwsError:
        import botocore.exceptions

        action = f"wait for instance {self.instance_id} to be {target}"
        last: dict[str, Any] = exc.last_response or {}
        if "Error" in last:
            from shared.aws import aws_error

            error = botocore.exceptions.ClientError(last, "DescribeInstances")  # type: ignore[arg-type]
            return aws_error(error, action)
        states = [i.get("State", {}).get("Name") for r in last.get("Reservations", [])
                  for i in r.get("Instances", [])]
        seen = states[0] if states else "unknown"
        if "Max attempts exceeded" in str(exc):
            return AwsError(f"instance {self.instance_id} did not become {target} within "
                            f"{timeout:.0f} seconds; it is still {seen}",
                            "look again in a minute; if it stays so, check the EC2 console")
        return AwsError(f"instance {self.instance_id} went {seen} instead of becoming {target}",
                        "check the EC2 console for the reason (e.g. capacity, a stop by "
                        "schedule)")

    # -- the app ---------------------------------------------------------------------------
    def health(self, public_ip: str | None = None) -> AppHealth:
        """GET the health URL (``{ip}`` becomes ``public_ip``); never raises."""
        if not self.health_url:
            return AppHealth(False, None, "no health URL configured", self.clock())
        url = self.health_url
        if "{ip}" in url:
            if not public_ip:
                return AppHealth(False, None, "the instance has no public address",
                                 self.clock())
            url = url.replace("{ip}", public_ip)
        return probe_health(url, self.health_timeout, self.clock)


def waiter_timing(timeout: float) -> tuple[int, int]:
    """(delay, max attempts) for a boto3 waiter that gives up after about ``timeout`` s."""
    delay = max(1, min(15, int(timeout // 20)))
    return delay, max(1, math.ceil(timeout / delay))


def probe_health(url: str, timeout: float,
                 clock: Callable[[], dt.datetime] = current_time) -> AppHealth:
    """One GET of ``url`` with a short timeout; 2xx is healthy, anything else says why."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return AppHealth(False, None, f"the health URL {url!r} is not http or https", clock())
    started = time.monotonic()
    status: int | None = None
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "market-sync"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
            response.read(4096)
        detail = f"HTTP {status}"
    except urllib.error.HTTPError as exc:
        status, detail = exc.code, f"HTTP {exc.code}"
        exc.close()
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            detail = f"no answer within {timeout:g} s"
        elif isinstance(reason, ConnectionRefusedError):
            detail = "connection refused: the app is not listening"
        else:
            detail = f"cannot reach the app: {reason}"
    except TimeoutError:
        detail = f"no answer within {timeout:g} s"
    except (ConnectionError, OSError, ValueError) as exc:
        detail = f"cannot reach the app: {exc}"
    ok = status is not None and 200 <= status < 300
    logger.debug("health %s → %s in %.2fs", url, detail, time.monotonic() - started)
    return AppHealth(ok, status, detail, clock())


def _mapped(exc: BaseException, action: str) -> AwsError:
    from shared.aws import aws_error

    if isinstance(exc, AwsError):
        return exc
    return aws_error(exc, action)
