"""The tray's test world: the real engine against moto (S3 + EC2) and throwaway
PostgreSQL, an in-memory keyring, and the app under test (controller + shell)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from desktop.ui.refcounts import guard_singletons
from shared.config import Config
from shared.devtools.motoserver import MotoServer
from tests.desktop.ec2_world import AppServer, at, ec2_client, laptop_config, launch
from tests.fakes import MemoryKeyring
from tests.helpers import TICKS_DDL, World

# PySide6 6.12.0 on CPython 3.11 under-counts None/True/False: without this, a test session
# can abort at exit (bool_dealloc) after every test passed. See desktop/ui/refcounts.py.
guard_singletons()

# A Saturday: outside market hours, so Stop needs no force and nothing depends on today.
SATURDAY = at("2025-06-14", 11, 0)


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    import keyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def app_server() -> Iterator[AppServer]:
    with AppServer() as server:
        yield server


@dataclass
class TrayWorld:
    """A World (instance db, laptop db, bucket, agent) plus an EC2 instance in moto and the
    laptop config that names it."""

    world: World
    config: Config
    instance_id: str
    ec2: Any

    def backup(self, day: str) -> None:
        self.world.backup(at(day, 16, 0))

    def ticks(self, day: str, count: int, token: int = 256265) -> None:
        self.world.instance(
            "INSERT INTO my_schema.ticks SELECT %s, (%s::date + time '09:15') AT TIME ZONE "
            "'Asia/Kolkata' + make_interval(secs => s), %s::date, 100 + s %% 7, s "
            "FROM generate_series(0, %s - 1) s", (token, day, day, count))

    def laptop_count(self) -> int:
        return int(self.world.laptop("SELECT count(*) FROM my_schema.ticks")[0][0])


@pytest.fixture
def tray_world(tmp_home: Path, instance_db: str, laptop_db: str, bucket: str,
               moto_server: MotoServer, app_server: AppServer) -> TrayWorld:
    world = World(tmp_home, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    world.instance(TICKS_DDL)
    world.laptop(TICKS_DDL)
    ec2 = ec2_client(moto_server.endpoint_url)
    instance_id = launch(ec2)
    config = laptop_config(tmp_home, endpoint=moto_server.endpoint_url, bucket=bucket,
                           conninfo=laptop_db, instance_id=instance_id,
                           health_url=app_server.url("/health"))
    return TrayWorld(world, config, instance_id, ec2)


def fixed_clock(moment: dt.datetime = SATURDAY) -> Any:
    return lambda: moment


# What the offscreen platform cannot do (raise a window, size hints, host a tray icon): it
# says so as a Qt warning. Those lines, and only those, are not failures here.
OFFSCREEN_LIMITS = (r"This plugin does not support (raise|propagateSizeHints)\(\)|"
                    r"systemTrayWindowChanged")


def open_shell(world: TrayWorld, *, use_tray: bool, **options: Any) -> Iterator[Any]:
    """A Shell over the tray world with a fixed clock, disposed when the test ends: the body
    of each test module's ``shell`` fixture."""
    from desktop.ui.controller import AppController
    from desktop.ui.shell import Shell

    controller = AppController(world.config)
    controller.clock = fixed_clock()
    shell = Shell(controller, use_tray=use_tray, **options)
    yield shell
    dispose(shell)


def poll(qtbot: Any, controller: Any, timeout: int) -> None:
    """One poll of ``controller``, waited for until its job is done."""
    with qtbot.waitSignal(controller.viewChanged, timeout=timeout,
                          check_params_cb=lambda _v: controller._poll_job is None):
        controller.poll()


def dispose(shell: Any) -> None:
    """Tear a Shell down now (children, windows, controller, runner), not whenever the GC
    runs: what ``run_tray`` does at Quit."""
    import gc

    shell.dispose()
    gc.collect()
