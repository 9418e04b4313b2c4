"""``.ci/run`` on a machine that has some of Qt's xcb libraries but not all: it installs
each one missing (today's failure was a machine with libxkbcommon-x11-0 but without
libxcb-icccm4, whose screenshot run then aborted). apt and dpkg are stand-ins here;
the script itself is the real one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def test_ci_installs_every_missing_qt_xcb_library(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".ci").mkdir(parents=True)
    (checkout / "scripts").mkdir()
    shutil.copy(ROOT / ".ci" / "run", checkout / ".ci" / "run")
    _stub(checkout / "scripts", "test", "echo tests-ran\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    installed = {"libxkbcommon-x11-0", "libxcb1", "libx11-6"}  # some, not all
    log = tmp_path / "apt.log"
    _stub(bin_dir, "dpkg-query", "pkg=\"${!#}\"\ncase \" " + " ".join(sorted(installed))
          + " \" in *\" $pkg \"*) printf 'install ok installed' ;; *) exit 1 ;; esac\n")
    _stub(bin_dir, "apt-get", f'echo "$@" >> {log}\n')
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")

    done = subprocess.run(["bash", str(checkout / ".ci" / "run")], capture_output=True,
                          text=True, env=env, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert "tests-ran" in done.stdout
    install = next(line for line in log.read_text().splitlines() if line.startswith("install"))
    wanted = set(install.split()) - {"install", "-y", "-qq", "--no-install-recommends"}
    assert {"libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxcb-shape0"} <= wanted
    assert not installed & wanted  # what is there is not installed again
