"""The systemd units and timers, rendered from the templates in ``files/units``.

The sandboxing common to all services is one drop-in
(``market-sync-.service.d/50-hardening.conf``). Templates hold ``@NAME@``
placeholders; every one must be filled (a leftover is a bug, raised here, not
shipped). The timers' ``OnCalendar=`` expressions come
from :data:`ec2.instance.schedule.SCHEDULE`, in Asia/Kolkata.
"""

from __future__ import annotations

import re
from importlib import resources

from ec2.instance import layout
from ec2.instance.schedule import SCHEDULE, TIMEZONE, WEEKDAYS
from ec2.instance.settings import InstanceSettings

HEALTH_WAIT_SECONDS = 300
GUARD_EVERY_MINUTES = 15  # the periodic guard: how late an expired keep-running tag is noticed
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
DROP_IN_DIR = "market-sync-.service.d"  # applies to every market-sync-*.service


def unit_names() -> list[str]:
    """The unit files, then the shared drop-in as ``<dir>/<file>``."""
    folder = resources.files("ec2.instance").joinpath("files/units")
    units = sorted(item.name for item in folder.iterdir()
                   if item.name.endswith((".service", ".timer")))
    drop_ins = sorted(f"{DROP_IN_DIR}/{item.name}"
                      for item in folder.joinpath(DROP_IN_DIR).iterdir()
                      if item.name.endswith(".conf"))
    return units + drop_ins


def compose_command(settings: InstanceSettings) -> str:
    """``docker compose`` for the app's project with the production override."""
    return (f"{layout.DOCKER} compose --project-name {layout.COMPOSE_PROJECT} "
            f"--project-directory {layout.APP_DIR} "
            f"--file {layout.APP_DIR}/{settings.app_compose_file} "
            f"--file {layout.COMPOSE_OVERRIDE}")


def unit_values(settings: InstanceSettings) -> dict[str, str]:
    return {
        "AGENT": layout.AGENT,
        "APP_DIR": layout.APP_DIR,
        "COMPOSE": compose_command(settings),
        "SYSTEMCTL": layout.SYSTEMCTL,
        "JOURNALCTL": layout.JOURNALCTL,
        "JOURNAL_LOG": layout.JOURNAL_LOG,
        "SPOOL_DIR": layout.SPOOL_DIR,
        "PGPASS": layout.PGPASS,
        "COMPOSE_ENV": layout.COMPOSE_ENV,
        "GUARD_CALENDAR": f"*:00/{GUARD_EVERY_MINUTES}",
        "STOP_GRACE": str(settings.stop_grace_seconds),
        "STOP_TIMEOUT": f"{settings.stop_grace_seconds + 120}s",
        "HEALTH_WAIT": str(HEALTH_WAIT_SECONDS),
        "APP_START": f"{SCHEDULE.app_start:%H:%M}",
        "APP_STOP": f"{SCHEDULE.app_stop:%H:%M}",
        "BACKUP": f"{SCHEDULE.backup:%H:%M}",
        "APP_START_CALENDAR": SCHEDULE.on_calendar(SCHEDULE.app_start),
        "APP_STOP_CALENDAR": SCHEDULE.on_calendar(SCHEDULE.app_stop),
        "BACKUP_CALENDAR": SCHEDULE.on_calendar(SCHEDULE.backup),
        "HEALTH_CALENDAR": f"{WEEKDAYS} 09..15:00/15 {TIMEZONE}",
    }


def fill(template: str, values: dict[str, str], name: str) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{name}: no value for @{key}@")
        return values[key]

    return _PLACEHOLDER.sub(replace, template)


def render_units(settings: InstanceSettings) -> dict[str, str]:
    """Path under ``/etc/systemd/system`` (unit name, or drop-in dir/file) → its text."""
    folder = resources.files("ec2.instance").joinpath("files/units")
    values = unit_values(settings)
    return {name: fill(folder.joinpath(name).read_text("utf-8"), values, name)
            for name in unit_names()}


def units_to_enable() -> list[str]:
    """What ``systemctl enable`` gets: the timers, the boot guard, the journal copy."""
    return [name for name in unit_names()
            if name.endswith(".timer")
            or name in ("market-sync-guard.service", "market-sync-journal.service")]
