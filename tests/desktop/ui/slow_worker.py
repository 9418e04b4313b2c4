"""The tray's worker with a slow merge of the 13 June dump: time to press Cancel mid-merge.

Run by the cancel test as the child process (``python -m tests.desktop.ui.slow_worker``).
"""

from __future__ import annotations

import time
from typing import Any

from desktop.engine import merge
from desktop.proc import worker

_apply_part = merge.DumpApplier.apply_part


def slow_apply_part(self: merge.DumpApplier, *args: Any, **kwargs: Any) -> Any:
    if self.dump_id.startswith("20250613"):
        time.sleep(1.0)
    return _apply_part(self, *args, **kwargs)


if __name__ == "__main__":
    merge.DumpApplier.apply_part = slow_apply_part  # type: ignore[method-assign]
    raise SystemExit(worker.main())
