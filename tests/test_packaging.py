"""The packaging's inputs agree with the code (the build itself is proved in tests/package)."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import launcher
from desktop.system import installation
from desktop.system.autostart import tray_command
from installer.wheelprune import read_services

ROOT = Path(__file__).resolve().parents[1]


def test_every_aws_client_the_code_makes_has_its_model_in_the_package() -> None:
    listed = read_services(ROOT / "packaging" / "botocore-services.txt")
    used = set()
    for package in ("shared", "desktop", "installer", "ec2"):
        for path in (ROOT / package).rglob("*.py"):
            used |= set(re.findall(r'\bclient\(\s*"([a-z0-9-]+)"', path.read_text()))
    assert used and used <= listed, sorted(used - listed)


def test_the_instance_botocore_keeps_the_model_of_every_client_the_agent_makes() -> None:
    # The agent (ec2/) makes its clients through shared.aws.AwsClients, whose methods are
    # named after their services, or by name with client("...").
    methods = dict(re.findall(r'def (\w+)\(self\) -> \w+:\s+(?:"""[^"]*"""\s+)?return '
                              r'self(?:\.session)?\.client\(\s*"([a-z0-9-]+)"',
                              (ROOT / "shared" / "aws.py").read_text()))
    assert {"s3", "ssm", "sns", "cloudwatch", "ec2"} <= set(methods)
    used = set()
    for path in (ROOT / "ec2").rglob("*.py"):
        text = path.read_text()
        used |= set(re.findall(r'\bclient\(\s*"([a-z0-9-]+)"', text))
        used |= {methods[m] for m in re.findall(r"(?:clients|AwsClients\([^()]*\))\.(\w+)\b",
                                                text) if m in methods}
    listed = read_services(ROOT / "packaging" / "instance-botocore-services.txt")
    assert used == listed


def test_the_frozen_app_starts_its_worker_and_login_item_from_its_own_executable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert installation.worker_command() == (sys.executable, "-m", "desktop.proc.worker")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/market-sync/market-sync")
    assert installation.worker_command() == ("/opt/market-sync/market-sync", "__worker__")
    assert tray_command() == ["/opt/market-sync/market-sync", "tray"]
    # Windows: the worker runs from the console twin, the login item from the windowed one.
    exe = r"C:\Users\asha\AppData\Local\market-sync\market-sync-tray.exe"
    assert installation.frozen_executable(False, "win32", exe).endswith("market-sync.exe")
    assert installation.frozen_executable(True, "win32", exe).endswith("market-sync-tray.exe")


def test_the_launcher_dispatches_the_worker_switch_and_opens_the_tray_without_arguments(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr("desktop.proc.worker.main",
                        lambda argv: calls.append(("worker", argv)) or 0)
    monkeypatch.setattr("desktop.cli.main", lambda argv: calls.append(("cli", argv)) or 0)
    launcher.main(["__worker__", "status"])
    launcher.main([])
    launcher.main(["-psn_0_12345"])  # what an older macOS Finder adds
    launcher.main(["sync", "--json"])
    assert calls == [("worker", ["status"]), ("cli", ["tray"]), ("cli", ["tray"]),
                     ("cli", ["sync", "--json"])]


def test_the_icon_files_hold_every_size_as_png(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "desktop.ui.iconfiles", str(tmp_path)],
                          capture_output=True, text=True, check=False,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    ico = (tmp_path / "market-sync.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind, count) == (0, 1, 7)
    for i in range(count):
        *_, size, offset = struct.unpack("<BBBBHHII", ico[6 + 16 * i: 22 + 16 * i])
        assert ico[offset:offset + 8] == b"\x89PNG\r\n\x1a\n" and size > 0
    icns = (tmp_path / "market-sync.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    assert b"ic10" in icns and b"ic07" in icns
