"""Screenshots of the real windows against the demo world (run by ``scripts/screenshots``
under Xvfb): the tray menu, sync progress and its finished summary, conflicts, history,
status, and the first-run wizard's tables and summary pages."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication, QWidget

from desktop.engine.progress import SyncProgress

if TYPE_CHECKING:
    from desktop.demo.world import DemoWorld

logger = logging.getLogger(__name__)


def wait_until(app: QApplication, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QApplication, seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def save(widget: QWidget, path: Path) -> None:
    widget.grab().save(str(path))
    logger.info("saved %s", path)


def wizard_pages(app: QApplication, world: DemoWorld, out: Path) -> None:
    """The wizard's tables page (proposed from the demo's laptop database) and summary."""

    from desktop.ui.wizard import SetupWizard, WizardDeps
    from installer.wizard_state import WizardState, check_database
    from shared.errors import MarketSyncError

    def no_provisioning(*_args: object) -> Any:
        raise MarketSyncError("not in the screenshots")

    state_dir = world.folder / "wizard"
    WizardState(page=3, profile="default", public_ip="49.36.10.20",
                email="trader@example.com", app_source="https://github.com/you/market-app.git",
                conninfo=world.laptop_conninfo).save(state_dir)
    deps = WizardDeps(state_dir=state_dir, config_path=world.folder / "wizard.toml",
                      secrets=None, profiles=lambda: ["default"],
                      detect_ip=lambda: "49.36.10.20", check_database=check_database,
                      provision=no_provisioning)
    wizard = SetupWizard(deps)
    wizard.resize(920, 520)
    wizard.move(40, 40)
    wizard.show()
    page = wizard.tables_page
    wait_until(app, lambda: page.table.rowCount() > 0)
    settle(app)
    save(wizard, out / "wizard-tables.png")
    wizard.next()
    settle(app)
    save(wizard, out / "wizard-summary.png")
    wizard.reject()


def main(out: Path) -> int:
    from desktop.demo.scenario import demo_controller, make_conflict, simulate_days
    from desktop.demo.world import demo_world
    from desktop.ui.app import application, start_shell

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out.mkdir(parents=True, exist_ok=True)
    app = application()  # first: if Qt cannot start here, nothing of the demo was made yet
    app.setStyle("Fusion")
    host = None
    tray_host = shutil.which("stalonetray") or shutil.which("trayer")
    if tray_host:
        host = subprocess.Popen([tray_host], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    try:
        with demo_world(days=3) as world:
            simulate_days(world, logger.info)
            demo_controller(world).start()
            shell = start_shell(world.laptop_config, demo=True, use_tray=True)
            controller = shell.controller
            wait_until(app, lambda: controller.snapshot is not None)

            status = shell.show_status()
            status.move(60, 60)
            settle(app)
            save(status, out / "status.png")

            # First sync: grab the progress window mid-way.
            grabbed: list[bool] = []

            def grab_progress(p: SyncProgress) -> None:
                window = shell.sync_window
                view = controller.view
                if not grabbed and window is not None and view.progress and \
                        view.progress > 0.4 and p.phase == "applying":
                    grabbed.append(True)
                    save(window, out / "progress.png")

            job = controller.sync_now()
            assert job is not None
            job.progressed.connect(grab_progress)
            window = shell.show_progress()
            window.move(80, 80)
            wait_until(app, lambda: controller.sync_job is None)
            if not grabbed:
                save(window, out / "progress.png")

            # A conflict, a second sync, the report.
            make_conflict(world)
            controller.poll()
            wait_until(app, lambda: controller._poll_job is None)
            controller.sync_now()
            wait_until(app, lambda: controller.sync_job is None)
            settle(app)
            save(window, out / "progress-done.png")
            window.hide()

            conflicts = shell.show_conflicts()
            wait_until(app, lambda: bool(conflicts.records))
            conflicts.move(40, 40)
            settle(app)
            save(conflicts, out / "conflicts.png")
            conflicts.hide()

            history = shell.show_history()
            wait_until(app, lambda: history.model.rowCount() > 0)
            settle(app)
            save(history, out / "history.png")
            history.hide()

            controller.poll()
            wait_until(app, lambda: controller._poll_job is None)
            assert shell.tray is not None
            menu = shell.tray.menu
            menu.popup(QPoint(700, 40))
            settle(app)
            save(menu, out / "tray-menu.png")
            menu.hide()

            save(shell.show_status(), out / "status.png")
            wizard_pages(app, world, out)
            shell.quit()
    finally:
        if host is not None:
            host.terminate()
            host.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots")))
