"""Whether the instance is needed now: the boot guard and the power-off after the backup.

The decision is pure (:func:`decide`); what it needs from the world (the
trading calendar, the keep-running tag) is read by :class:`KeepRunningOverride`
and the CLI. All times are Asia/Kolkata.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ec2.imds import Imds, TagsNotInMetadata
from ec2.instance.schedule import SCHEDULE
from shared.calendar import IST, TradingCalendar
from shared.errors import MarketSyncError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_ec2 import EC2Client

logger = logging.getLogger(__name__)

KEEP_RUNNING_TAG = "market-sync:keep-running-until"


def now() -> dt.datetime:
    """The current time in IST (the one clock the agent's decisions read)."""
    return dt.datetime.now(IST)


class Moment(enum.StrEnum):
    BOOT = "boot"
    AFTER_BACKUP = "after-backup"
    PERIODIC = "periodic"  # every 15 minutes while running: is the instance still needed?


class OverrideError(MarketSyncError):
    """The keep-running tag is present but unreadable: the instance stays up."""


@dataclass(frozen=True)
class GuardDecision:
    power_off: bool
    reason: str

    def describe(self) -> str:
        return ("power off: " if self.power_off else "stay up: ") + self.reason


def parse_keep_running(value: str) -> dt.datetime:
    """The tag's ISO time; a time without an offset is IST."""
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise OverrideError(
            f"the tag {KEEP_RUNNING_TAG} is {value!r}, not an ISO time",
            "set it like 2026-11-24T18:00+05:30 (the tray does), or delete it",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=IST)


def decide(at: dt.datetime, calendar: TradingCalendar, keep_running_until: dt.datetime | None,
           moment: Moment, *, power_off_after_backup: bool = True) -> GuardDecision:
    """May the instance power off at ``at``? Stays up on any doubt."""
    local = at.astimezone(IST)
    day = local.date()
    if keep_running_until is not None and keep_running_until > at:
        return GuardDecision(False, f"{KEEP_RUNNING_TAG} is "
                             f"{keep_running_until.astimezone(IST):%Y-%m-%d %H:%M} IST")
    if moment is Moment.AFTER_BACKUP:
        if not power_off_after_backup:
            return GuardDecision(False, "power_off_after_backup is false in agent.toml")
        if calendar.has_session(day) and local.time() < SCHEDULE.app_stop:
            return GuardDecision(False, f"the app's hours run until {SCHEDULE.app_stop:%H:%M} IST")
        return GuardDecision(True, "the backup is done and the app's hours are over")
    if moment is Moment.PERIODIC and calendar.has_session(day):
        if local.time() < SCHEDULE.safety_stop:
            return GuardDecision(False, f"{day} has a session; the day's work runs until "
                                 f"{SCHEDULE.safety_stop:%H:%M} IST")
        if not power_off_after_backup:
            return GuardDecision(False, "power_off_after_backup is false in agent.toml")
        return GuardDecision(True, f"the day's work is over ({SCHEDULE.safety_stop:%H:%M} IST) "
                             "and nothing keeps the instance running")
    if calendar.is_trading_day(day):
        return GuardDecision(False, f"{day} is a trading day")
    special = calendar.special_sessions.get(day)
    if special is not None:
        return GuardDecision(False, f"{day} has a special session ({special.name})")
    holiday = calendar.holiday(day)
    why = holiday.name if holiday else "weekend" if day.weekday() >= 5 else "no session"
    return GuardDecision(True, f"{day} is not a trading day ({why})")


def in_app_hours(at: dt.datetime, calendar: TradingCalendar) -> bool:
    """Should the app be running at ``at``: a session day, between app start and stop."""
    local = at.astimezone(IST)
    return (calendar.has_session(local.date())
            and SCHEDULE.app_start <= local.time() < SCHEDULE.app_stop)


class KeepRunningOverride:
    """Reads ``market-sync:keep-running-until`` from the instance's tags.

    IMDSv2 first (instance tags in metadata, no AWS call); where the instance's
    metadata does not carry its tags, ``ec2:DescribeTags`` on itself.
    """

    def __init__(self, imds: Imds, ec2: Callable[[], EC2Client] | None = None,
                 instance_id: str | None = None) -> None:
        self.imds = imds
        self.ec2 = ec2  # made only when the metadata has no tags (a client costs ~0.4 s)
        self.instance_id = instance_id

    def read(self) -> dt.datetime | None:
        try:
            value = self.imds.tag(KEEP_RUNNING_TAG)
        except TagsNotInMetadata:
            logger.info("instance tags are not in the metadata; asking EC2 for them")
            value = self._describe_tag()
        if value is None or not value.strip():
            return None
        return parse_keep_running(value)

    def _describe_tag(self) -> str | None:
        if self.ec2 is None:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        from shared.aws import aws_error

        instance_id = self.instance_id or self.imds.instance_id()
        try:
            response = self.ec2().describe_tags(Filters=[
                {"Name": "resource-id", "Values": [instance_id]},
                {"Name": "key", "Values": [KEEP_RUNNING_TAG]},
            ])
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, f"read the tags of {instance_id}") from None
        for tag in response.get("Tags", []):
            if tag.get("Key") == KEEP_RUNNING_TAG:
                return tag.get("Value")
        return None
