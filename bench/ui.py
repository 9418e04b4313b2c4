"""Tray figures: start to tray visible, idle RSS, the longest UI stall during a big sync.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.ui [--idle 60] [--days 6 --step 1]

* start: a fresh process (run twice: the second is the warm figure) from interpreter
  start to the tray icon shown and the event loop's first turn (target ≤ 0.3 s warm);
* idle: that process's RSS after ``--idle`` seconds of polling (target ≤ 70 MB);
* stall: the demo world with ~1M ticks (8 instruments × 22,500 s / step × days), a sync
  run by the tray's controller while a 10 ms QTimer heartbeat measures the longest gap
  between its ticks on the UI thread (target ≤ 50 ms). The tray runs in a process of its
  own, as it does for the trader: the demo's moto server (S3) stays in this one, where
  its request threads cannot take the tray's GIL; the sync itself runs in the tray's
  child worker, as always.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
[aws]
region = "ap-south-1"
endpoint_url = "http://127.0.0.1:9"
bucket = "bench"
instance_id = "i-0123456789abcdef0"

[database]
conninfo = "host=127.0.0.1 port=9 dbname=bench connect_timeout=1"
"""

CHILD = r"""
import json, sys, time
t0 = float(sys.argv[1]); idle = float(sys.argv[3])
from pathlib import Path
from PySide6.QtCore import QTimer
from desktop.ui.app import application, start_shell
from shared.config import load_config
app = application()
shell = start_shell(load_config(Path(sys.argv[2])), use_tray=True)
result = {}
def shown():
    result["start_s"] = time.time() - t0
    result["visible"] = shell.tray.icon.isVisible()
    QTimer.singleShot(int(idle * 1000), done)
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
def done():
    result["idle_rss_mb"] = rss_mb()
    result["heavy"] = sorted(m for m in ("boto3", "psycopg") if m in sys.modules)
    shell.quit()
QTimer.singleShot(0, shown)
app.exec()
print(json.dumps(result))
"""


STALL_CHILD = r"""
import json, sys, time
from pathlib import Path
from PySide6.QtCore import QElapsedTimer, QTimer
from desktop.ui.app import application
from desktop.ui.controller import AppController
from shared.config import load_config
app = application()
controller = AppController(load_config(Path(sys.argv[1])))
clock = QElapsedTimer()
gaps = []
last = [0]
def beat():
    now = clock.elapsed()
    gaps.append(now - last[0])
    last[0] = now
heartbeat = QTimer()
heartbeat.setInterval(10)
heartbeat.timeout.connect(beat)
outcome = []
controller.syncFinished.connect(outcome.append)
progress = [0]
controller.viewChanged.connect(lambda _v: progress.__setitem__(0, progress[0] + 1))
def go():
    clock.start()
    heartbeat.start()
    QTimer.singleShot(50, controller.sync_now)  # amid the beats: spawning the child counts
QTimer.singleShot(0, go)
started = time.monotonic()
while not outcome:
    app.processEvents()
    time.sleep(0.001)
seconds = time.monotonic() - started
heartbeat.stop()
controller.shutdown()
worst = max(gaps) - 10 if gaps else 0
print(json.dumps({"sync_s": round(seconds, 1), "longest_stall_ms": worst,
                  "outcome": outcome[0].line, "beats": len(gaps),
                  "heavy": sorted(m for m in ("boto3", "psycopg") if m in sys.modules)}))
"""


def start_and_idle(idle: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG)
        env = {**os.environ, "XDG_STATE_HOME": tmp, "XDG_CACHE_HOME": tmp}
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        done = subprocess.run([sys.executable, "-c", CHILD, repr(time.time()), str(config),
                               str(idle)], capture_output=True, text=True, env=env, check=True)
        line = done.stdout.strip().splitlines()[-1]
        return json.loads(line)  # type: ignore[no-any-return]


def stall(days: int, step: int) -> dict[str, object]:
    from desktop.demo.scenario import simulate_days
    from desktop.demo.world import demo_world

    with demo_world(days=days, step_seconds=step) as world:
        simulate_days(world, lambda _line: None, step)
        env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
        done = subprocess.run([sys.executable, "-c", STALL_CHILD,
                               str(world.laptop_config.path)], capture_output=True, text=True,
                              env=env, check=True)
        line = done.stdout.strip().splitlines()[-1]
        return json.loads(line)  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.ui")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle before RSS")
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--step", type=int, default=1, help="seconds between ticks (1: 180k "
                        "ticks a day)")
    parser.add_argument("--skip-stall", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    cold = start_and_idle(0.5)
    warm = start_and_idle(args.idle)
    print(f"start to tray visible: cold {cold['start_s']:.3f} s, warm {warm['start_s']:.3f} s "
          "(target ≤ 0.3 s warm)")
    print(f"idle RSS after {args.idle:g} s: {warm['idle_rss_mb']:.1f} MB (target ≤ 70 MB); "
          f"heavy modules loaded: {warm['heavy'] or 'none'}")
    if not args.skip_stall:
        figures = stall(args.days, args.step)
        print(f"sync of ~{8 * (22500 // args.step) * args.days:,} ticks: "
              f"{figures['sync_s']} s, {figures['outcome']}")
        print(f"longest UI event-loop stall: {figures['longest_stall_ms']} ms over "
              f"{figures['beats']} heartbeats (target ≤ 50 ms); heavy modules in the tray: "
              f"{figures['heavy'] or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
