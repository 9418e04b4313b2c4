"""The packaged app's figures: size, start to tray icon (cold and warm), idle RSS.

    .venv/bin/python -m bench.package [--app dist/market-sync] [--idle 60] [--runs 3]

Without ``--app`` it builds the app first (``scripts/package`` into a temporary folder).
Each start runs in a session of its own making (Xvfb, a private D-Bus bus and the
StatusNotifier tray host of ``shared/devtools/traysession.py``) with a fresh home, and is
timed from ``exec`` to the moment the tray icon registers with the host: what a trader
waits for. The baseline, in the same run and session, is the same tray started from
the sources (``python -m desktop.cli tray``).

* cold: the app freshly unpacked from its tarball, its files dropped from the page cache
  (``posix_fadvise(DONTNEED)`` on each: this needs no root and leaves the rest of the
  machine's cache alone; shared system libraries such as libc and libX11 stay cached),
  a new home (no font cache);
* warm: the same again, ``--runs`` times, median;
* idle RSS: the tray's ``VmRSS`` after ``--idle`` seconds (its status polls fail fast
  against closed ports, as a laptop's do offline; each runs in a child of its own);
* size: the unpacked folder (bytes of its files), the part of it that is the instance's
  wheels (the agent and its dependencies, shipped for ``provision``), and the tarball.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench.ui import CONFIG
from shared.devtools.traysession import TraySession, tray_session

ROOT = Path(__file__).resolve().parent.parent


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def drop_from_page_cache(folder: Path) -> None:
    os.sync()
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def start_to_icon(command: list[str], session: TraySession, home: Path,
                  idle: float = 0.0) -> tuple[float, float | None]:
    """Seconds from exec to the icon's registration; the RSS after ``idle`` seconds."""
    host = session.host
    assert host is not None
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.toml"
    config.write_text(CONFIG)
    env = session.environment({"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                               "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    seen = len(host.registrations)
    started = time.monotonic()
    tray = subprocess.Popen([*command, "--config", str(config), "tray"], env=env, cwd=home,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + 60
        while len(host.registrations) == seen:
            if time.monotonic() > deadline or tray.poll() is not None:
                raise RuntimeError(f"no tray icon from {command[0]}")
            time.sleep(0.002)
        seconds = host.registrations[-1].at - started
        rss = None
        if idle:
            time.sleep(idle)
            rss = rss_mb(tray.pid)
        return seconds, rss
    finally:
        tray.terminate()
        tray.wait(30)


def build(out: Path) -> tuple[Path, float]:
    started = time.monotonic()
    subprocess.run([str(ROOT / "scripts" / "package"), "--dist", str(out / "dist"), "--work",
                    str(out / "work")], cwd=ROOT, check=True,
                   env={**os.environ, "PACKAGE_PYTHON": sys.executable})
    return out / "dist" / "market-sync", time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.package", description=__doc__.split("\n")[0])
    parser.add_argument("--app", type=Path, help="a built one-folder app (default: build one)")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle before RSS")
    parser.add_argument("--runs", type=int, default=3, help="warm starts (median)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        work = Path(tmp)
        app, build_s = (args.app.resolve(), None) if args.app else build(work)
        tarballs = sorted(app.parent.glob("market-sync-*-linux-*.tar.gz"))
        unpacked = folder_bytes(app)
        wheels = folder_bytes(app / "_internal" / "agent")
        print(f"package size: {unpacked / 1e6:.1f} MB unpacked (target ≤ 120 MB): the app "
              f"{(unpacked - wheels) / 1e6:.1f} MB + the instance's agent and dependency "
              f"wheels {wheels / 1e6:.1f} MB"
              + (f"; tarball {tarballs[-1].stat().st_size / 1e6:.1f} MB" if tarballs else "")
              + (f"; built in {build_s:.0f} s" if build_s else ""))
        fresh = work / "fresh"
        if tarballs:
            with tarfile.open(tarballs[-1]) as tar:
                tar.extractall(fresh, filter="data")
            fresh_app = fresh / "market-sync"
        else:
            fresh_app = app
        drop_from_page_cache(fresh_app)
        frozen = [str(fresh_app / "market-sync")]
        source = [sys.executable, "-m", "desktop.cli"]
        with tray_session() as session:
            cold, _ = start_to_icon(frozen, session, work / "home-cold")
            warm_frozen = [start_to_icon(frozen, session, work / "home-warm")[0]
                           for _ in range(args.runs)]
            warm_source = [start_to_icon(source, session, work / "home-source")[0]
                           for _ in range(args.runs)]
            _, frozen_rss = start_to_icon(frozen, session, work / "home-idle", args.idle)
            _, source_rss = start_to_icon(source, session, work / "home-idle-src", args.idle)
        frozen_s, source_s = statistics.median(warm_frozen), statistics.median(warm_source)
        print(f"start to tray icon, packaged app: cold {cold:.3f} s, warm {frozen_s:.3f} s "
              f"(target ≤ 1.0 s warm); from the sources (baseline) warm {source_s:.3f} s: "
              f"{frozen_s / source_s:.2f}×")
        assert frozen_rss is not None and source_rss is not None
        print(f"idle RSS after {args.idle:g} s, packaged app: {frozen_rss:.1f} MB (target ≤ 80 MB)"
              f"; from the sources (baseline) {source_rss:.1f} MB: "
              f"{frozen_rss / source_rss:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
