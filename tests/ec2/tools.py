"""The real tools the ec2/ tests run. A missing one fails the test with how to get it."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS_DIR = Path(os.environ.get("MARKET_SYNC_TOOLS_DIR", REPO / ".cache" / "tools"))
CLOUD_INIT_SITE = TOOLS_DIR / "cloud-init" / "usr" / "lib" / "python3" / "dist-packages"

_INSTALL = {
    "systemd-analyze": "apt-get install -y systemd",
    "shellcheck": "apt-get install -y shellcheck",
    "bash": "apt-get install -y bash",
}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `{_INSTALL.get(name, 'apt-get install ' + name)}` "
                    "(.ci/run installs it)", pytrace=False)
    return path


def cloud_init_schema_module() -> object:
    """cloud-init's ``cloudinit.config.schema``, from Debian's package extracted by
    scripts/fetch-test-tools."""
    if not (CLOUD_INIT_SITE / "cloudinit" / "config" / "schema.py").is_file():
        pytest.fail(f"cloud-init is not in {TOOLS_DIR}: run ./scripts/fetch-test-tools "
                    "(scripts/test does)", pytrace=False)
    if str(CLOUD_INIT_SITE) not in sys.path:
        sys.path.append(str(CLOUD_INIT_SITE))
    from cloudinit.config import schema  # type: ignore[import-not-found]

    return schema


def write_stub(path: Path, body: str = "exit 0\n", shell: str = "/bin/sh") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{shell}\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def write_recording_stubs(bin_dir: Path, stubs: dict[str, str], shell: str = "/bin/sh") -> None:
    """One stub per program: it appends ``NAME ARGS`` to ``$CALLS``, then runs its body."""
    for name, body in stubs.items():
        write_stub(bin_dir / name, f'echo "{name} $*" >>"$CALLS"\n{body}', shell)


def write_tree(root: Path, files: Iterable[tuple[str, str]]) -> None:
    """(absolute path, text) pairs written under ``root``."""
    for path, text in files:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
