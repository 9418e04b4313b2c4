"""One ``SyncEngine.run`` in a process of its own, so its peak RSS is the sync's alone.

``python -m bench.child CONFIG DOWNLOADS`` prints one JSON object: the engine's
report, wall-clock marks taken from the engine's own progress callbacks
(download+verify until the ``applying`` phase, apply until ``done``, which is
after COMMIT), and the process's peak RSS: ``VmHWM`` (Linux; the high-water mark of
this process's own address space since exec) and ``ru_maxrss`` (which on Linux
also carries the forking parent's high-water mark over exec, so it is only a
fallback where /proc is missing).
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any


def peak_rss_kib() -> dict[str, int | None]:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there, KiB on Linux
        maxrss //= 1024
    hwm = None
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return {"ru_maxrss_kib": maxrss, "vmhwm_kib": hwm}


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    logging.basicConfig(level=logging.WARNING)
    from desktop.engine.progress import SyncProgress
    from desktop.engine.sync import SyncEngine
    from shared.aws import AwsClients
    from shared.config import load_config
    from shared.dumpstore import DumpStore

    config = load_config(Path(argv[0]))
    store = DumpStore(AwsClients(config.aws).s3(), config.aws.bucket, config.aws.prefix)
    engine = SyncEngine(config, store, Path(argv[1]))
    marks: dict[str, float] = {}

    def progress(state: SyncProgress) -> None:
        now = time.perf_counter()
        marks.setdefault(state.phase, now)  # the first time each phase is entered
        if state.phase == "done":
            marks["done"] = now

    imported = time.perf_counter()
    report = engine.run(progress=progress)
    finished = time.perf_counter()
    out: dict[str, Any] = {
        "report": report.to_json(),
        "exit_code": report.exit_code,
        "startup_seconds": imported - started,
        "run_seconds": finished - imported,
        "download_seconds": marks.get("applying", finished) - marks.get("downloading", imported),
        "apply_seconds": marks.get("done", finished) - marks.get("applying", finished),
        **peak_rss_kib(),
    }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
