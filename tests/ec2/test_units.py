"""The systemd units, checked by systemd's own tools (systemd-analyze)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ec2.instance import layout
from ec2.instance.schedule import SCHEDULE
from ec2.instance.settings import InstanceSettings
from ec2.instance.units import render_units, unit_names, units_to_enable
from tests.ec2.tools import require_tool, write_stub

logger = logging.getLogger(__name__)

SETTINGS = InstanceSettings(
    region="ap-south-1", bucket="market-data-asha", prefix="",
    agent_wheel_key="artifacts/market_sync-0.1.0-py3-none-any.whl",
    app_source="s3://market-data-asha/artifacts/app.tar.gz",
    sns_topic_arn="arn:aws:sns:ap-south-1:123456789012:market-sync",
)
_EXEC = re.compile(r"^(?:Exec\w+)=[-+!@:]*(/\S+)", re.MULTILINE)


def exec_paths(units: dict[str, str]) -> set[str]:
    return {m.group(1) for text in units.values() for m in _EXEC.finditer(text)}


@pytest.fixture(scope="module")
def systemd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filesystem root: systemd's own units from this machine, ours in /etc, a stub
    docker.service, and a stub for every program our units run."""
    require_tool("systemd-analyze")
    root = tmp_path_factory.mktemp("root")
    system = Path("/usr/lib/systemd/system")
    if not (system / "multi-user.target").exists():
        pytest.fail("systemd's units are missing: apt-get install -y systemd", pytrace=False)
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    units = render_units(SETTINGS)
    for name, text in units.items():
        path = root / "etc/systemd/system" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "etc/systemd/system/docker.service").write_text(
        "[Unit]\nDescription=stand-in for Docker\n\n[Service]\nExecStart=/usr/bin/dockerd\n")
    for program in exec_paths(units) | {"/usr/bin/dockerd"}:
        write_stub(root / program.lstrip("/"))
    return root


def analyze(*args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [require_tool("systemd-analyze"), *args]
    if root is not None:
        command.insert(2, f"--root={root}")
    env = {**os.environ, "TZ": "Asia/Kolkata", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                          timeout=120)


def test_every_template_placeholder_is_filled() -> None:
    for name, text in render_units(SETTINGS).items():
        assert not re.search(r"@[A-Z_]+@", text), name


def test_units_run_the_agent_from_its_virtualenv() -> None:
    paths = exec_paths(render_units(SETTINGS))
    assert layout.AGENT in paths
    assert paths <= {layout.AGENT, layout.DOCKER, layout.SYSTEMCTL, layout.JOURNALCTL, "/bin/sh"}


@pytest.mark.parametrize("unit", [n for n in unit_names() if "/" not in n])
def test_unit_passes_systemd_analyze_verify_without_warnings(systemd_root: Path,
                                                               unit: str) -> None:
    if unit.endswith("@.service"):
        unit = unit.replace("@.service", "@market-sync-backup.service.service")
    done = analyze("verify", "--man=no", unit, root=systemd_root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == "", (
        f"systemd-analyze verify {unit} warned:\n{done.stdout}{done.stderr}")


def test_verify_notices_a_broken_unit(systemd_root: Path) -> None:
    """The check can fail: a typo'd key is a warning, a missing program an error."""
    broken = systemd_root / "etc/systemd/system/market-sync-broken.service"
    broken.write_text("[Unit]\nDescription=x\n[Service]\nType=oneshot\nExecStrat=/bin/true\n"
                      "ExecStart=/opt/nowhere/bin/tool\n")
    try:
        done = analyze("verify", "--man=no", "market-sync-broken.service", root=systemd_root)
    finally:
        broken.unlink()
    assert done.returncode != 0
    assert "ExecStrat" in done.stderr and "/opt/nowhere/bin/tool" in done.stderr


def test_the_hardening_drop_in_applies_to_every_service(systemd_root: Path) -> None:
    done = analyze("security", "--offline=true", "market-sync-backup.service",
                   root=systemd_root)
    assert "✓ CapabilityBoundingSet=" in done.stdout or "CapabilityBoundingSet=" in done.stdout
    assert re.search(r"✓ ProtectSystem=\s+Service has strict read-only", done.stdout), done.stdout


SECURITY_CEILING = {  # exposure, 0 (locked down) .. 10 (unsafe); lower is better
    "market-sync-backup.service": 2.0,
    "market-sync-guard.service": 2.0,
    "market-sync-guard-periodic.service": 2.0,
    "market-sync-poweroff.service": 2.0,
    "market-sync-notify@market-sync-backup.service.service": 2.0,
    "market-sync-health.service": 2.0,
    "market-sync-app-start.service": 2.0,
    "market-sync-app-stop.service": 2.0,
    "market-sync-journal.service": 2.0,
    "market-sync-app.service": 2.0,
}


@pytest.mark.parametrize("unit", sorted(SECURITY_CEILING))
def test_systemd_analyze_security_score(systemd_root: Path, unit: str) -> None:
    done = analyze("security", "--offline=true", "--no-pager", unit, root=systemd_root)
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", done.stdout)
    assert match, done.stdout + done.stderr
    score = float(match.group(1))
    logger.warning("systemd-analyze security %s: %s %s", unit, score, match.group(2))
    assert score <= SECURITY_CEILING[unit], done.stdout


def _next_elapses(expression: str, base: str, count: int) -> list[dt.datetime]:
    """Elapses after ``base`` (local time of the tool, which runs with TZ=Asia/Kolkata)."""
    done = analyze("calendar", f"--base-time={base}", f"--iterations={count}", expression)
    assert done.returncode == 0, done.stderr
    assert "Normalized form:" in done.stdout
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) IST",
                        done.stdout)
    return [dt.datetime.fromisoformat(s) for s in stamps]


def _on_calendar(unit: str) -> str:
    match = re.search(r"^OnCalendar=(.+)$", render_units(SETTINGS)[unit], re.MULTILINE)
    assert match, unit
    return match.group(1)


@pytest.mark.parametrize(("timer", "at"), [
    ("market-sync-app-start.timer", SCHEDULE.app_start),
    ("market-sync-app-stop.timer", SCHEDULE.app_stop),
    ("market-sync-backup.timer", SCHEDULE.backup),
])
def test_timer_elapses_at_the_intended_ist_time_on_weekdays(timer: str, at: dt.time) -> None:
    expression = _on_calendar(timer)
    assert expression.endswith("Asia/Kolkata")
    # From Friday 2026-11-20 12:00 IST: Fri (if still ahead), Mon, Tue, Wed, Thu, Fri.
    elapses = _next_elapses(expression, "2026-11-20 12:00", 6)
    assert len(elapses) == 6
    assert all(e.time() == at for e in elapses)
    assert all(e.weekday() < 5 for e in elapses), "no weekend elapses"
    days = [e.date() for e in elapses]
    friday_first = at > dt.time(12, 0)
    start = dt.date(2026, 11, 20) if friday_first else dt.date(2026, 11, 23)
    assert days[0] == start
    assert dt.date(2026, 11, 21) not in days and dt.date(2026, 11, 22) not in days


def test_the_same_ist_time_whatever_the_machines_zone() -> None:
    """A UTC instance still elapses at 08:55 IST (03:25 UTC)."""
    done = subprocess.run(
        [require_tool("systemd-analyze"), "calendar", "--base-time=2026-11-23 00:00 UTC",
         _on_calendar("market-sync-app-start.timer")],
        capture_output=True, text=True, env={**os.environ, "TZ": "UTC"}, check=True)
    assert "Next elapse: Mon 2026-11-23 03:25:00 UTC" in done.stdout


def test_health_timer_fires_every_quarter_hour_of_the_session() -> None:
    elapses = _next_elapses(_on_calendar("market-sync-health.timer"),
                            "2026-11-23 00:00", 28)
    monday = [e for e in elapses if e.date() == dt.date(2026, 11, 23)]
    assert monday[0].time() == dt.time(9, 0) and monday[-1].time() == dt.time(15, 45)
    assert len(monday) == 28


def test_timers_and_the_guard_are_enabled_and_persistent_where_needed() -> None:
    units = render_units(SETTINGS)
    enabled = units_to_enable()
    assert {"market-sync-app-start.timer", "market-sync-app-stop.timer",
            "market-sync-backup.timer", "market-sync-health.timer",
            "market-sync-guard.service"} <= set(enabled)
    assert "Persistent=true" in units["market-sync-backup.timer"]
    assert "Persistent=true" not in units["market-sync-app-stop.timer"]
    assert "WantedBy=multi-user.target" in units["market-sync-guard.service"]


def test_every_scheduled_service_skips_days_without_a_session() -> None:
    units = render_units(SETTINGS)
    for service in ("market-sync-app-start.service", "market-sync-app-stop.service",
                    "market-sync-backup.service"):
        assert f"ExecCondition={layout.AGENT} trading-day" in units[service], service


def test_every_service_notifies_on_failure_except_the_notifier() -> None:
    for name, text in render_units(SETTINGS).items():
        if name.endswith(".service") and name != "market-sync-journal.service":
            has = "OnFailure=market-sync-notify@%n.service" in text
            assert has == (name != "market-sync-notify@.service"), name


def test_the_periodic_guard_asks_every_quarter_hour_day_and_night() -> None:
    elapses = _next_elapses(_on_calendar("market-sync-guard-periodic.timer"),
                            "2026-11-28 13:50", 8)  # a Saturday
    assert [e.strftime("%H:%M") for e in elapses] == [
        "14:00", "14:15", "14:30", "14:45", "15:00", "15:15", "15:30", "15:45"]
    assert "market-sync-guard-periodic.timer" in units_to_enable()
    text = render_units(SETTINGS)["market-sync-guard-periodic.service"]
    assert f"ExecCondition={layout.AGENT} guard --periodic" in text
    assert "is-active --quiet market-sync-backup.service" in text  # never mid-backup


def test_the_backup_spools_to_disk_and_reads_its_password_from_a_root_only_file() -> None:
    text = render_units(SETTINGS)["market-sync-backup.service"]
    assert "Environment=TMPDIR=/var/tmp" in text
    assert f"Environment=PGPASSFILE={layout.PGPASS}" in text
    assert not layout.PGPASS.startswith(("/home", "/root", "/tmp"))  # ProtectHome, PrivateTmp
    assert f"ExecStartPre=+{layout.AGENT} write-secrets pgpass" in text
    assert f"EnvironmentFile={layout.COMPOSE_ENV}" in text


def test_the_app_gets_its_env_first_never_builds_and_stops_what_it_started() -> None:
    text = render_units(SETTINGS)["market-sync-app.service"]
    pre = text.index(f"ExecStartPre=-+{layout.AGENT} write-secrets app-env")
    assert pre < text.index("ExecStart=+")
    assert "up --detach --remove-orphans --no-build --pull never" in text
    assert "ExecStop=" not in text  # ExecStopPost also runs after a failed health check
    assert re.search(r"^ExecStopPost=\+\S+ compose .* stop --timeout 120$", text, re.MULTILINE)
