"""A simulated trading week under a faked clock: our real units and timers, systemd's own
calendar arithmetic (systemd-analyze calendar), and the real agent deciding each
ExecCondition=. The week of 2026-11-23: Tuesday the 24th is Guru Nanak Jayanti."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

import ec2.guard
import shared.calendar
from ec2.cli import main
from ec2.guard import KEEP_RUNNING_TAG
from ec2.instance import layout
from ec2.instance.settings import InstanceSettings
from ec2.instance.units import render_units
from shared.devtools.motoserver import MotoServer
from tests.ec2.fake_imds import FakeImds, running_imds
from tests.ec2.tools import require_tool

MONDAY = dt.datetime(2026, 11, 23)
SETTINGS = InstanceSettings(
    region="ap-south-1", bucket="market-data-asha", prefix="",
    agent_wheel_key="artifacts/market_sync-0.1.0-py3-none-any.whl",
    app_source="s3://market-data-asha/artifacts/app.tar.gz",
)


def parse_unit(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = defaultdict(list)
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values[key].append(value)
    return values


def elapses(expression: str, start: dt.datetime, days: int) -> list[dt.datetime]:
    """systemd's own answer: every elapse of ``expression`` from ``start`` for ``days``."""
    done = subprocess.run(
        [require_tool("systemd-analyze"), "calendar", f"--base-time={start:%Y-%m-%d %H:%M}",
         "--iterations=1000", expression],
        capture_output=True, text=True, check=True, env={**os.environ, "TZ": "Asia/Kolkata"})
    found = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) IST", done.stdout)
    moments = [dt.datetime.fromisoformat(text) for text in found]
    return [m for m in moments if m < start + dt.timedelta(days=days)]


class SimulatedInstance:
    def __init__(self, config: Path) -> None:
        self.units = {name: parse_unit(text) for name, text in render_units(SETTINGS).items()
                      if "/" not in name}
        self.config = str(config)
        self.now = MONDAY
        self.up = False
        self.active: set[str] = set()
        self.log: list[tuple[dt.datetime, str]] = []
        self.last_trigger: dict[str, dt.datetime] = {}

    def record(self, event: str) -> None:
        self.log.append((self.now, event))

    def exec(self, line: str) -> int:
        line = line.replace("${POSTGRES_SERVICE}", "postgres")  # EnvironmentFile=compose.env
        argv = shlex.split(line.lstrip("+-!@:"))
        if argv[:2] == ["/bin/sh", "-c"] and argv[2].startswith("! "):
            return 0 if self.exec(argv[2][2:]) != 0 else 1
        if argv[0] == layout.AGENT:
            args = [a for a in argv[1:] if a != "--verbose"]
            if args[0] == "write-secrets":
                return 0  # tested in test_instance_secrets.py
            if args[0] in ("backup", "report-backup", "notify", "health", "os-updates"):
                self.record(" ".join(args))  # the effects are tested elsewhere
                return 0
            return main(["--config", self.config, *args])
        if argv[0] == layout.SYSTEMCTL:
            words = [a for a in argv[1:] if not a.startswith("--")]
            verb, unit = words[0], words[-1]
            if verb == "poweroff":
                self.record("power off")
                self.up = False
                self.active.clear()
            elif verb == "start":
                self.start(unit)
            elif verb == "stop":
                self.stop(unit)
            elif verb == "is-active":
                return 0 if unit in self.active else 3
            return 0
        if argv[0] == layout.DOCKER:
            self.record("compose " + " ".join(argv[argv.index("--file", 8) + 2:]))
            return 0
        if argv[0] == layout.JOURNALCTL:
            return 0
        raise AssertionError(f"the simulation does not know {line}")

    def start(self, name: str) -> None:
        unit = self.units[name]
        if name in self.active or not self.up:
            return
        for condition in unit["ExecCondition"]:
            code = self.exec(condition)
            if code == 255:
                self.record(f"{name} failed")
                return
            if code != 0:
                return  # skipped: not run, not failed
        for key in ("ExecStartPre", "ExecStart", "ExecStartPost"):
            for line in unit[key]:
                if self.exec(line) != 0:
                    self.record(f"{name} failed")
                    for stop in unit["ExecStopPost"]:
                        self.exec(stop)
                    return
        if unit["RemainAfterExit"] == ["yes"]:
            self.active.add(name)
        for follow in unit["OnSuccess"]:
            self.start(follow)

    def stop(self, name: str) -> None:
        if name in self.active:
            self.active.discard(name)
            for line in self.units[name]["ExecStop"] + self.units[name]["ExecStopPost"]:
                self.exec(line)

    def boot(self) -> None:
        if self.up:
            return
        self.up = True
        self.record("boot")
        for name, unit in sorted(self.units.items()):
            if "multi-user.target" in unit["WantedBy"] and self.up:
                self.start(name)
        for timer, unit in sorted(self.units.items()):  # Persistent=true catches up
            if self.up and unit["Persistent"] == ["true"]:
                missed = [e for e in self.timer_elapses[timer]
                          if self.last_trigger.get(timer, MONDAY) < e <= self.now]
                if missed:
                    self.fire(timer)

    def fire(self, timer: str) -> None:
        self.last_trigger[timer] = self.now
        self.start(self.units[timer]["Unit"][0])

    def run(self, days: int, boots: list[dt.datetime], stops: list[dt.datetime]) -> None:
        self.timer_elapses = {
            name: elapses(unit["OnCalendar"][0], MONDAY, days)
            for name, unit in self.units.items() if name.endswith(".timer")}
        events: list[tuple[dt.datetime, int, str]] = [(b, 0, "boot") for b in boots]
        events += [(s, 2, "safety stop") for s in stops]
        events += [(e, 1, name) for name, moments in self.timer_elapses.items()
                   for e in moments]
        for moment, _, what in sorted(events):
            self.now = moment
            if what == "boot":
                self.boot()
            elif what == "safety stop":
                if self.up:
                    self.stop("market-sync-app.service")
                    self.record("stopped by the EventBridge safety net")
                    self.up = False
            elif self.up:
                self.fire(what)

    def day(self, day: int) -> list[str]:
        """The events of MONDAY + day, as "HH:MM what", health checks left out."""
        date = (MONDAY + dt.timedelta(days=day)).date()
        return [f"{t:%H:%M} {e}" for t, e in self.log
                if t.date() == date and e != "health --wait 60"]

    def health_checks(self, day: int) -> int:
        date = (MONDAY + dt.timedelta(days=day)).date()
        return sum(1 for t, e in self.log if t.date() == date and e == "health --wait 60")


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    with running_imds() as server:
        yield server


@pytest.fixture
def instance(tmp_path: Path, moto_server: MotoServer, imds: FakeImds,
             monkeypatch: pytest.MonkeyPatch) -> SimulatedInstance:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[aws]\nregion = "ap-south-1"\nbucket = "data-b"\n'
        f'endpoint_url = "{moto_server.endpoint_url}"\n'
        f'[database]\nconninfo = "host=127.0.0.1"\n[agent]\nimds_url = "{imds.url}"\n')
    sim = SimulatedInstance(config)
    monkeypatch.setattr(ec2.guard, "now", lambda: sim.now.replace(tzinfo=shared.calendar.IST))
    monkeypatch.setattr(shared.calendar, "today_ist", lambda now=None: sim.now.date())
    return sim


def eventbridge(days: range, at: dt.time) -> list[dt.datetime]:
    """The installer's schedules: Mon–Fri only."""
    moments = [dt.datetime.combine((MONDAY + dt.timedelta(days=d)).date(), at) for d in days]
    return [m for m in moments if m.weekday() < 5]


TRADING_DAY = [
    "08:50 boot",
    "08:55 compose up --detach --remove-orphans --no-build --pull never",
    "08:55 health --wait 300",
    "15:35 compose stop --timeout 120",
    "15:40 os-updates",  # tests/ec2/test_os_updates.py
    "16:00 compose up --detach --wait --no-build --pull never postgres",
    "16:00 backup",
    "16:00 report-backup succeeded",
    "16:00 power off",
]


def test_a_trading_week_with_guru_nanak_jayanti_and_a_weekend(
        instance: SimulatedInstance) -> None:
    week = range(7)
    instance.run(7, boots=eventbridge(week, dt.time(8, 50)),
                 stops=eventbridge(week, dt.time(16, 30)))
    for day in (0, 3, 4):  # Mon, Thu, Fri
        assert instance.day(day) == TRADING_DAY, (MONDAY + dt.timedelta(days=day)).date()
    for day in (0, 2, 3, 4):
        assert instance.health_checks(day) == 27  # 09:00 … 15:30, every 15 minutes
    assert instance.day(1) == ["08:50 boot", "08:50 power off"]  # the holiday
    # Wednesday: Persistent=true runs Tuesday's missed 16:00 elapse at boot (trading-day
    # passes for Wednesday; the overlap is harmless); the guard keeps the instance up.
    assert instance.day(2) == TRADING_DAY[:1] + [
        "08:50 compose up --detach --wait --no-build --pull never postgres",
        "08:50 backup",
        "08:50 report-backup succeeded",
    ] + TRADING_DAY[1:]
    assert instance.day(5) == [] and instance.day(6) == []  # the weekend: never started


def test_a_manual_boot_on_saturday_is_powered_off(instance: SimulatedInstance) -> None:
    instance.run(7, boots=[MONDAY + dt.timedelta(days=5, hours=11)], stops=[])
    assert instance.day(5) == ["11:00 boot", "11:00 power off"]


def test_the_keep_running_tag_keeps_the_holiday_instance_up_but_runs_nothing(
        instance: SimulatedInstance, imds: FakeImds) -> None:
    imds.tags = {KEEP_RUNNING_TAG: "2026-11-24T23:00+05:30"}
    tuesday = MONDAY + dt.timedelta(days=1)
    instance.run(2, boots=[tuesday + dt.timedelta(hours=8, minutes=50)],
                 stops=[tuesday + dt.timedelta(hours=16, minutes=30)])
    assert instance.day(1) == ["08:50 boot", "16:30 stopped by the EventBridge safety net"]
    assert instance.health_checks(1) == 0


def test_a_missed_backup_is_caught_up_at_the_next_boot_without_powering_off(
        instance: SimulatedInstance) -> None:
    # Wednesday: the trader stops the instance at 15:45, before the 16:00 backup.
    boots = eventbridge(range(2, 4), dt.time(8, 50))
    instance.run(4, boots=boots, stops=[MONDAY + dt.timedelta(days=2, hours=15, minutes=45)])
    assert instance.day(2)[-1] == "15:45 stopped by the EventBridge safety net"
    assert "16:00 backup" not in instance.day(2)
    assert instance.day(3)[:5] == [
        "08:50 boot",
        "08:50 compose up --detach --wait --no-build --pull never postgres",
        "08:50 backup",  # Persistent=true: Wednesday's missed backup
        "08:50 report-backup succeeded",
        "08:55 compose up --detach --remove-orphans --no-build --pull never",  # app hours ahead
    ]
    assert instance.day(3)[-1] == "16:00 power off"


def test_a_late_boot_on_a_trading_day_starts_the_app_at_once(
        instance: SimulatedInstance) -> None:
    instance.run(1, boots=[MONDAY + dt.timedelta(hours=10, minutes=20)], stops=[])
    assert instance.day(0)[:2] == ["10:20 boot",
                                   "10:20 compose up --detach --remove-orphans --no-build "
                                   "--pull never"]


def test_an_expired_keep_running_tag_powers_off_within_15_minutes(
        instance: SimulatedInstance, imds: FakeImds) -> None:
    # Saturday: the trader starts the instance at 11:00 and keeps it until 14:00
    imds.tags = {KEEP_RUNNING_TAG: "2026-11-28T14:00+05:30"}
    instance.run(7, boots=[MONDAY + dt.timedelta(days=5, hours=11)], stops=[])
    assert instance.day(5) == ["11:00 boot", "14:00 power off"]


def test_a_kept_instance_is_powered_off_once_the_day_is_over(
        instance: SimulatedInstance, imds: FakeImds) -> None:
    # Monday: kept up past the backup until 18:10; the periodic guard ends it at 18:15
    imds.tags = {KEEP_RUNNING_TAG: "2026-11-23T18:10+05:30"}
    instance.run(1, boots=[MONDAY + dt.timedelta(hours=8, minutes=50)], stops=[])
    assert instance.day(0)[-2:] == ["16:00 report-backup succeeded", "18:15 power off"]


def test_a_failed_health_check_stops_the_containers_it_started(
        instance: SimulatedInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    real = instance.exec

    def unhealthy(line: str) -> int:
        if "health --wait 300" in line:
            instance.record("health --wait 300: unhealthy")
            return 1
        return real(line)

    monkeypatch.setattr(instance, "exec", unhealthy)
    instance.run(1, boots=[MONDAY + dt.timedelta(hours=8, minutes=50)], stops=[])
    assert instance.day(0)[1:5] == [
        "08:55 compose up --detach --remove-orphans --no-build --pull never",
        "08:55 health --wait 300: unhealthy",
        "08:55 market-sync-app.service failed",
        "08:55 compose stop --timeout 120",
    ]
    assert "market-sync-app.service" not in instance.active
