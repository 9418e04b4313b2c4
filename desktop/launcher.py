"""The packaged app's executable: the tray, the command line and the tray's worker in one.

``market-sync __worker__ OP …`` is the worker (:func:`desktop.proc.worker.main`); anything
else is the command line; opened without arguments (a double-click, the Start menu, a
``.desktop`` file, the ``.app``) it is the tray. ``packaging/entry.py`` calls :func:`main`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from desktop.system.installation import WORKER_SWITCH


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    args = [a for a in args if not a.startswith("-psn_")]  # older macOS Finder launches
    if args[:1] == [WORKER_SWITCH]:
        from desktop.proc.worker import main as worker_main

        return worker_main(args[1:])
    from desktop.cli import main as cli_main

    return cli_main(args or ["tray"])


if __name__ == "__main__":
    raise SystemExit(main())
