"""What both command-line tools do the same way: parse, run a handler, map errors to exit
codes, and never let a traceback reach the trader.

* A usage mistake (argparse's own, or a value one of the types below refuses) is one
  sentence and exit 2; under ``--json`` it is a JSON object on stdout too.
* A :class:`MarketSyncError` is its message and hint, and its exit code.
* Anything else is a bug: one sentence on stderr (JSON under ``--json``), the traceback
  in the log (``-vv`` shows it), exit 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, NoReturn

from shared.errors import MarketSyncError

if TYPE_CHECKING:
    from shared.config import Config

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def version() -> str:
    try:
        return metadata.version("market-sync")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class Parser(argparse.ArgumentParser):
    """argparse with a JSON answer to usage errors when ``--json`` was asked for."""

    def error(self, message: str) -> NoReturn:
        hint = f"see {self.prog} --help"
        if getattr(self, "_json_requested", False):
            print(json.dumps({"ok": False, "error": message, "hint": hint,
                              "error_type": "UsageError"}))
        self.exit(2, f"{self.prog}: {message} ({hint})\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: None = None) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        json_requested = "--json" in argv
        for parser in _all_parsers(self):
            parser._json_requested = json_requested  # type: ignore[attr-defined]
        return super().parse_args(argv, namespace)


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_all_parsers(sub))
    return found


def describe_subcommands(parser: argparse.ArgumentParser) -> None:
    """Every subcommand's ``--help`` gets a description: its one-line help, where it has
    none of its own."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    text = str(helps[name])
                    sub.description = text[:1].upper() + text[1:] + "."


def add_version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}",
                        help="print the version and exit")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small: it must be 1 or more")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds above 0")
    return value


def iso_date(text: str) -> dt.date:
    """An argparse type: a calendar date, YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-23") from None


def run_handler(args: argparse.Namespace) -> int:
    """Call ``args.handler``; a failure is one clear message and its exit code."""
    from shared.credentials import tell_identities

    handler: Handler = args.handler
    as_json = bool(getattr(args, "json", False))
    try:
        code = handler(args)
        tell_identities(success=True)
        return code
    except MarketSyncError as exc:
        tell_identities(success=False)
        _report(as_json, exc.message, exc.hint, type(exc).__name__)
        return exc.exit_code
    except KeyboardInterrupt:
        tell_identities(success=False)
        print("market-sync: interrupted; nothing half-applied was kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `market-sync history | head`: the reader left, nothing is wrong
        return 0
    except Exception as exc:  # a bug: the trader gets a sentence, the log the traceback
        logger.debug("unexpected error", exc_info=exc)  # -vv shows the traceback
        _report(as_json, f"unexpected error: {type(exc).__name__}: {exc}",
                "this is a bug in market-sync; run again with -vv for the details and "
                "report it", type(exc).__name__)
        return 1


def _report(as_json: bool, message: str, hint: str, kind: str) -> None:
    if as_json:
        print(json.dumps({"ok": False, "error": message, "hint": hint, "error_type": kind}))
    else:
        text = f"{message}\n  → {hint}" if hint else message
        print(f"market-sync: {text}", file=sys.stderr)


def print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=1, default=str, ensure_ascii=False))


def config_from_args(args: argparse.Namespace) -> Config:
    """The config named by ``--config``, ``$MARKET_SYNC_CONFIG`` or the platform default."""
    from shared.config import load_config
    from shared.paths import resolve_config_path

    return load_config(resolve_config_path(args.config))
