"""The instance's trading day, in IST: one place for the times the units and the guard use."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

TIMEZONE = "Asia/Kolkata"
WEEKDAYS = "Mon..Fri"


@dataclass(frozen=True)
class DaySchedule:
    """What happens on a trading day, IST. EventBridge (installer) starts the instance
    at ``instance_start`` and stops it at ``safety_stop`` as a net under the timers."""

    instance_start: dt.time = dt.time(8, 50)
    app_start: dt.time = dt.time(8, 55)
    app_stop: dt.time = dt.time(15, 35)
    backup: dt.time = dt.time(16, 0)
    safety_stop: dt.time = dt.time(16, 30)

    def on_calendar(self, at: dt.time) -> str:
        """The systemd ``OnCalendar=`` expression for ``at`` on weekdays, IST."""
        return f"{WEEKDAYS} {at:%H:%M} {TIMEZONE}"


SCHEDULE = DaySchedule()
