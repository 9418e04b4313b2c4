"""Is there a screen to draw on? Asked before Qt is started: Qt aborts the process when
its platform cannot connect, which a trader would see as a crash (or, from a launcher,
as nothing at all)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path


def display_problem(environ: dict[str, str] | None = None,
                    x11_sockets: Path = Path("/tmp/.X11-unix")) -> str | None:
    """Why no window can be shown here (a sentence), or ``None`` when one can."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("WAYLAND_DISPLAY"):
        return None
    display = env.get("DISPLAY", "")
    if not display:
        return "there is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    local = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if local and not (x11_sockets / f"X{local.group(1)}").exists():
        return f"the display {display} is not running (no X server answers there)"
    return None
