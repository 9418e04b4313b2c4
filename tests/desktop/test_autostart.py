"""Start at login: the Linux .desktop file for real under tmp_home; the macOS LaunchAgent and
the Windows Run value through injected folders and a fake registry, content asserted."""

from __future__ import annotations

import configparser
import plistlib
import shlex
from pathlib import Path

import pytest

from desktop.system.autostart import (
    LAUNCH_AGENT_LABEL,
    LaunchAgentAutostart,
    WindowsRunAutostart,
    XdgAutostart,
    autostart_for,
    render_desktop_entry,
    tray_command,
)

COMMAND = ["/opt/market sync/bin/market-sync", "tray"]


def _entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_linux_enable_writes_the_xdg_autostart_entry(tmp_home: Path) -> None:
    switch = XdgAutostart(COMMAND)

    switch.enable()

    path = tmp_home / "config" / "autostart" / "market-sync.desktop"
    assert switch.path == path and switch.is_enabled()
    entry = _entry(path)
    assert entry["Type"] == "Application" and entry["Name"] == "market-sync"
    assert entry["Exec"] == '"/opt/market sync/bin/market-sync" tray'
    assert entry["X-GNOME-Autostart-enabled"] == "true" and entry["Terminal"] == "false"


def test_linux_disable_removes_it_and_is_idempotent(tmp_home: Path) -> None:
    switch = XdgAutostart(COMMAND)
    switch.enable()

    switch.disable()
    switch.disable()

    assert not switch.is_enabled()
    assert not (tmp_home / "config" / "autostart" / "market-sync.desktop").exists()


def test_linux_enable_twice_keeps_one_current_entry(tmp_home: Path) -> None:
    XdgAutostart(["/old/market-sync", "tray"]).enable()
    XdgAutostart(COMMAND).enable()

    folder = tmp_home / "config" / "autostart"
    assert [p.name for p in folder.iterdir()] == ["market-sync.desktop"]
    assert "/opt/market sync" in (folder / "market-sync.desktop").read_text()


def test_desktop_exec_quotes_by_the_desktop_entry_rules() -> None:
    text = render_desktop_entry(["/usr/bin/python3", "-m", "desktop.cli", "tray",
                                 '50% "x" $HOME\\y'])

    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    # % doubled; inside quotes " ` $ \ escaped, then every backslash escaped again.
    assert exec_line == ('Exec=/usr/bin/python3 -m desktop.cli tray '
                         '"50%% \\\\"x\\\\" \\\\$HOME\\\\\\\\y"')


def test_macos_launch_agent_plist(tmp_path: Path) -> None:
    switch = LaunchAgentAutostart(COMMAND, folder=tmp_path / "LaunchAgents")

    switch.enable()

    path = tmp_path / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
    assert switch.is_enabled() and path.is_file()
    plist = plistlib.loads(path.read_bytes())
    assert plist == {"Label": "in.market-sync.tray", "ProgramArguments": COMMAND,
                     "RunAtLoad": True, "KeepAlive": False, "ProcessType": "Interactive",
                     "LimitLoadToSessionType": "Aqua"}
    switch.disable()
    assert not switch.is_enabled() and not path.exists()


def test_macos_default_folder_is_library_launchagents(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))

    switch = LaunchAgentAutostart(COMMAND)

    assert switch.path == tmp_path / "Library/LaunchAgents/in.market-sync.tray.plist"


class FakeRunKey:
    """HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run as a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {"OneDrive": '"C:\\OneDrive.exe" /background'}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def test_windows_run_value_is_the_quoted_command_line() -> None:
    key = FakeRunKey()
    switch = WindowsRunAutostart([r"C:\Program Files\market-sync\pythonw.exe", "-m",
                                  "desktop.cli", "tray"], key=key)

    switch.enable()

    assert switch.is_enabled()
    assert key.values["market-sync"] == ('"C:\\Program Files\\market-sync\\pythonw.exe" '
                                         "-m desktop.cli tray")
    switch.disable()
    switch.disable()
    assert not switch.is_enabled()
    assert key.values == {"OneDrive": '"C:\\OneDrive.exe" /background'}  # others untouched


@pytest.mark.parametrize(("platform", "kind"), [
    ("linux", XdgAutostart), ("freebsd14", XdgAutostart), ("darwin", LaunchAgentAutostart),
    ("win32", WindowsRunAutostart)])
def test_autostart_for_picks_the_platforms_mechanism(platform: str, kind: type) -> None:
    assert isinstance(autostart_for(platform, COMMAND), kind)


def test_the_default_command_starts_the_tray_and_runs(tmp_home: Path) -> None:
    command = tray_command()

    assert command[-1] == "tray" and Path(command[0]).exists()
    XdgAutostart().enable()
    exec_line = _entry(tmp_home / "config/autostart/market-sync.desktop")["Exec"]
    assert shlex.split(exec_line) == command
