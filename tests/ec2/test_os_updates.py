"""OS security updates (ec2/osupdates.py) through ``market-sync-agent os-updates``: the pin from
the stack's SSM path (moto), the stack from the instance's tags (a fake IMDSv2 on 127.0.0.1),
and dnf / unattended-upgrade as stubs on PATH that record how they were called."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ec2 import osupdates
from ec2.cli import main
from shared.devtools.motoserver import MotoServer
from shared.errors import MarketSyncError
from tests.ec2.fake_imds import FakeImds, running_imds
from tests.ec2.test_agent_commands import client, write_config

PIN = "2023.9.20251117"


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    with running_imds(FakeImds(tags={"market-sync:stack": "ms-os"})) as server:
        yield server


def _stubs(folder: Path, *names: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name in names:
        stub = folder / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >>"{folder}/calls"\n')
        stub.chmod(0o755)
    return folder


def test_al2023_updates_up_to_the_pinned_release(
        moto_server: MotoServer, imds: FakeImds, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    client(moto_server, "ssm").put_parameter(Name="/market-sync/ms-os/os-releasever",
                                             Value=PIN, Type="SecureString", Overwrite=True)
    bin_dir = _stubs(tmp_path / "bin", "dnf")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = write_config(tmp_path / "agent.toml", moto_server, imds)
    assert main(["--config", str(config), "os-updates"]) == 0
    assert (bin_dir / "calls").read_text().splitlines() == [
        f"dnf --assumeyes --quiet --releasever={PIN} upgrade --security"]
    assert PIN in capsys.readouterr().out


def test_without_a_pin_nothing_is_upgraded(moto_server: MotoServer, imds: FakeImds,
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server.reset()
    bin_dir = _stubs(tmp_path / "bin", "dnf")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = write_config(tmp_path / "agent.toml", moto_server, imds)
    assert main(["--config", str(config), "os-updates"]) == 0
    assert not (bin_dir / "calls").exists()


def test_debian_and_ubuntu_use_unattended_upgrades() -> None:
    plan = osupdates.plan_updates(lambda name: name if name == "unattended-upgrade" else None,
                                  lambda: pytest.fail("no pin is read on Debian"))
    assert plan.commands == (("apt-get", "update", "-q"), ("unattended-upgrade", "--verbose"))


def test_a_failed_update_is_an_error_for_on_failure() -> None:
    plan = osupdates.plan_updates(lambda name: name if name == "dnf" else None, lambda: PIN)
    with pytest.raises(MarketSyncError, match="dnf failed"):
        osupdates.run_updates(plan, run=lambda argv: 1)
    with pytest.raises(MarketSyncError, match="neither dnf nor unattended-upgrade"):
        osupdates.plan_updates(lambda name: None, lambda: PIN)


def test_release_of_an_al2023_image_name() -> None:
    assert osupdates.release_of_image("al2023-ami-2023.9.20251117.0-kernel-6.1-x86_64") == PIN
    assert osupdates.release_of_image("ubuntu/images/hvm-ssd/ubuntu-jammy") is None


def test_the_timer_runs_between_app_stop_and_backup_on_weekdays() -> None:
    from ec2.instance.schedule import SCHEDULE
    from tests.ec2.test_units import _next_elapses, _on_calendar

    elapses = _next_elapses(_on_calendar("market-sync-os-updates.timer"), "2026-11-20 12:00", 6)
    assert len(elapses) == 6 and all(e.weekday() < 5 for e in elapses)
    assert all(SCHEDULE.app_stop < e.time() < SCHEDULE.backup for e in elapses)
