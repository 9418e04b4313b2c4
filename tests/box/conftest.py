"""Fixtures of the instance-in-a-box tests: the cached rootfs (built when missing), and
boxes that are always destroyed — processes, network namespace, cgroups, mounts, files —
whether the test passed, failed or was interrupted. A missing tool fails, never skips."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.box import rootfs
from tests.box.box import Box, reap_stale

_names = itertools.count(1)


def _require_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("the box tests boot systemd-nspawn containers and must run as root",
                    pytrace=False)
    missing = rootfs.missing_tools()
    if missing:
        pytest.fail(f"the box tests need {', '.join(missing)}: `apt-get install "
                    "systemd-container mmdebstrap zstd iproute2 util-linux` (.ci/run does)",
                    pytrace=False)


@pytest.fixture(scope="session")
def box_rootfs() -> Path:
    """The pristine Debian 12 rootfs, built by mmdebstrap on first use (minutes), then cached."""
    _require_root_and_tools()
    reap_stale()
    return rootfs.ensure_box_rootfs()


@pytest.fixture(scope="session")
def image_rootfs() -> Path:
    """The stand-in app's image rootfs (a gzip tarball), cached like the box's."""
    _require_root_and_tools()
    return rootfs.ensure_image_rootfs()


@pytest.fixture
def new_box(box_rootfs: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], Box]]:
    """Make boxes; each is destroyed at the end of the test (its logs kept on failure)."""
    boxes: list[Box] = []

    def make() -> Box:
        box = Box(f"msbox-{os.getpid()}-{next(_names)}", box_rootfs)
        boxes.append(box)
        return box

    yield make
    failed = getattr(request.node, "rep_call", None)
    keep = failed is None or failed.failed
    for box in boxes:
        box.destroy(keep_logs=keep)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
