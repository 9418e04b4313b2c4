"""Start the tray at login: HKCU Run on Windows, a LaunchAgent on macOS, XDG autostart on Linux.

Each platform is one small class with ``enable``/``disable``/``is_enabled``; where
things are written (a folder, a registry key) is injected so tests check the real
content without touching the machine's login items. :func:`autostart_for` picks
the one for this platform.
"""

from __future__ import annotations

import importlib
import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from desktop.system.installation import frozen_executable, is_frozen
from shared.paths import write_atomically

APP_NAME = "market-sync"
LAUNCH_AGENT_LABEL = "in.market-sync.tray"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


class Autostart(Protocol):
    def enable(self) -> None: ...

    def disable(self) -> None: ...

    def is_enabled(self) -> bool: ...


def tray_command() -> list[str]:
    """How to start the tray: the installed ``market-sync`` script, else this Python."""
    if is_frozen():  # the packaged app: its (windowed, on Windows) executable is the tray
        return [frozen_executable(gui=True), "tray"]
    script = shutil.which(APP_NAME)
    if script:
        return [script, "tray"]
    python = Path(sys.executable)
    windowless = python.with_name("pythonw.exe")
    if sys.platform == "win32" and windowless.exists():
        python = windowless  # no console window at login
    return [str(python), "-m", "desktop.cli", "tray"]


# -- Linux (and other XDG desktops) ------------------------------------------------------------
def _desktop_exec_arg(arg: str) -> str:
    """Quote one argument for a .desktop ``Exec=`` key (Desktop Entry spec, "The Exec key")."""
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`="):
        return arg
    quoted = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    # The value is also a string: its backslashes are escaped once more.
    return '"' + quoted.replace("\\", "\\\\") + '"'


def render_desktop_entry(command: Sequence[str]) -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=market-sync",
        "Comment=Your market-data instance on AWS, synced to this laptop",
        "Exec=" + " ".join(_desktop_exec_arg(a) for a in command),
        "Icon=market-sync",
        "Terminal=false",
        "Categories=Office;Finance;",
        "X-GNOME-Autostart-enabled=true",
        "",
    ])


def xdg_autostart_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart"


class XdgAutostart:
    """``$XDG_CONFIG_HOME/autostart/market-sync.desktop``."""

    def __init__(self, command: Sequence[str] | None = None, folder: Path | None = None) -> None:
        self.command = list(command or tray_command())
        self.path = (folder or xdg_autostart_dir()) / f"{APP_NAME}.desktop"

    def enable(self) -> None:
        write_atomically(self.path, render_desktop_entry(self.command))

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)

    def is_enabled(self) -> bool:
        return self.path.is_file()


# -- macOS --------------------------------------------------------------------------------
def render_launch_agent(command: Sequence[str]) -> bytes:
    return plistlib.dumps({
        "Label": LAUNCH_AGENT_LABEL,
        "ProgramArguments": list(command),
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    })


class LaunchAgentAutostart:
    """``~/Library/LaunchAgents/in.market-sync.tray.plist``, read by launchd at login."""

    def __init__(self, command: Sequence[str] | None = None, folder: Path | None = None) -> None:
        self.command = list(command or tray_command())
        folder = folder or Path.home() / "Library" / "LaunchAgents"
        self.path = folder / f"{LAUNCH_AGENT_LABEL}.plist"

    def enable(self) -> None:
        write_atomically(self.path, render_launch_agent(self.command))

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)

    def is_enabled(self) -> bool:
        return self.path.is_file()


# -- Windows ------------------------------------------------------------------------------
class RunKey(Protocol):
    """The values of ``HKCU\\...\\Run`` (a fake in tests, :class:`WinregRunKey` on Windows)."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


class WinregRunKey:
    """The real ``HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``."""

    def __init__(self) -> None:
        self.winreg: Any = importlib.import_module("winreg")  # Windows only

    def get(self, name: str) -> str | None:
        reg = self.winreg
        try:
            with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY, 0, reg.KEY_READ) as key:
                value, _kind = reg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, name: str, value: str) -> None:
        reg = self.winreg
        with reg.CreateKeyEx(reg.HKEY_CURRENT_USER, RUN_KEY, 0, reg.KEY_SET_VALUE) as key:
            reg.SetValueEx(key, name, 0, reg.REG_SZ, value)

    def delete(self, name: str) -> None:
        reg = self.winreg
        try:
            with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY, 0, reg.KEY_SET_VALUE) as key:
                reg.DeleteValue(key, name)
        except FileNotFoundError:
            pass


def render_run_value(command: Sequence[str]) -> str:
    """The command line Windows runs at login (quoted by the MSVC runtime's rules)."""
    return subprocess.list2cmdline(list(command))


class WindowsRunAutostart:
    """A ``market-sync`` value under HKCU Run."""

    def __init__(self, command: Sequence[str] | None = None, key: RunKey | None = None) -> None:
        self.command = list(command or tray_command())
        self._key = key

    @property
    def key(self) -> RunKey:
        if self._key is None:
            self._key = WinregRunKey()
        return self._key

    def enable(self) -> None:
        self.key.set(APP_NAME, render_run_value(self.command))

    def disable(self) -> None:
        self.key.delete(APP_NAME)

    def is_enabled(self) -> bool:
        return self.key.get(APP_NAME) is not None


def autostart_for(platform: str | None = None,
                  command: Sequence[str] | None = None) -> Autostart:
    """The start-at-login switch for ``platform`` (default: this machine's)."""
    platform = platform or sys.platform
    if platform == "win32":
        return WindowsRunAutostart(command)
    if platform == "darwin":
        return LaunchAgentAutostart(command)
    return XdgAutostart(command)
