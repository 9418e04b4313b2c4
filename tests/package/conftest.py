"""The packaged app, built once per test session by ``./scripts/package`` from a clean copy of
the repository's files (what a clone holds: tracked and not-ignored files, no build dirs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from desktop.demo.scenario import simulate_days
from desktop.demo.world import DemoWorld, demo_world
from tests.package.gate import record_passed

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PackagedApp:
    folder: Path  # dist/market-sync: the one-folder app
    tarball: Path

    @property
    def executable(self) -> Path:
        return self.folder / "market-sync"


def clean_copy(destination: Path) -> Path:
    """The files a fresh clone of this working tree has (tracked and new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
        capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="session")
def packaged_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackagedApp]:
    base = tmp_path_factory.mktemp("package")
    source = clean_copy(base / "clone")
    dist = base / "dist"
    done = subprocess.run(
        [str(source / "scripts" / "package"), "--dist", str(dist), "--work",
         str(base / "work")], cwd=source, capture_output=True, text=True,
        env={**os.environ, "PACKAGE_PYTHON": sys.executable}, timeout=1200, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    tarballs = list(dist.glob("market-sync-*-linux-*.tar.gz"))
    assert len(tarballs) == 1, list(dist.iterdir())
    yield PackagedApp(dist / "market-sync", tarballs[0])


@pytest.fixture
def world() -> Iterator[DemoWorld]:
    with demo_world(days=2, step_seconds=60) as world:
        simulate_days(world, lambda _line: None, 60)
        yield world


_outcomes: list[bool] = []


def _all_package_tests() -> int:
    return sum(f.read_text().count("\ndef test_") for f in Path(__file__).parent.glob("test_*.py"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/package/" in report.nodeid.replace("\\", "/") and (
            report.when == "call" or report.outcome != "passed"):
        _outcomes.append(report.outcome == "passed")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Only a run of every package test counts (not a -k subset).
    if len(_outcomes) == _all_package_tests() and all(_outcomes) and exitstatus == 0:
        record_passed()
