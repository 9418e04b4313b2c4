"""What both command-line tools do the same way: run a handler, map errors to exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.errors import MarketSyncError

if TYPE_CHECKING:
    from shared.config import Config

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def run_handler(args: argparse.Namespace) -> int:
    """Call ``args.handler``; an expected failure is one clear message and its exit code."""
    from shared.credentials import tell_identities

    handler: Handler = args.handler
    try:
        code = handler(args)
        tell_identities(success=True)
        return code
    except MarketSyncError as exc:
        tell_identities(success=False)
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": exc.message, "hint": exc.hint,
                              "error_type": type(exc).__name__}))
        else:
            print(f"market-sync: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        tell_identities(success=False)
        print("market-sync: interrupted; nothing half-applied was kept", file=sys.stderr)
        return 130


def print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=1, default=str, ensure_ascii=False))


def config_from_args(args: argparse.Namespace) -> Config:
    """The config named by ``--config``, ``$MARKET_SYNC_CONFIG`` or the platform default."""
    from shared.config import load_config
    from shared.paths import resolve_config_path

    return load_config(resolve_config_path(args.config))
