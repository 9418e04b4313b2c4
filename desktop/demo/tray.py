"""The tray demo: the real tray app, pointed at the demo world."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from desktop.demo.world import DemoWorld
from desktop.system.display import display_problem
from shared.errors import MarketSyncError


def tray_available() -> str | None:
    """Why the tray cannot run here (a sentence), or ``None`` when it can."""
    import importlib.util

    try:
        if importlib.util.find_spec("desktop.ui.app") is None:
            return "the tray is not part of this build (desktop/ui/app.py is missing)"
    except ModuleNotFoundError as exc:
        return f"the tray cannot load: {exc}"
    if importlib.util.find_spec("PySide6") is None:
        return "the tray needs PySide6 (pip install 'market-sync[desktop]')"
    return display_problem()


def run_demo_tray(world: DemoWorld) -> int:
    """The hook point: the real tray, pointed at the demo world, until the trader quits."""
    problem = tray_available()
    if problem:
        raise MarketSyncError(problem, "run `market-sync demo --headless` for the terminal demo")
    module = importlib.import_module("desktop.ui.app")
    run_tray: Callable[..., int] = module.run_tray
    return run_tray(world.laptop_config, demo=True)


