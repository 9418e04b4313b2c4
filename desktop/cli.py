"""``market-sync``: the command line over the same engine as the tray.

Each command group lives in its own module with a ``register(subparsers)``
function; this file only wires them together.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from shared.cliutil import Parser, describe_subcommands, run_handler
from shared.logsetup import configure_cli_logging


def build_parser() -> argparse.ArgumentParser:
    from desktop.commands import demo, instance, sync, tray
    from desktop.system.installation import app_version
    from installer import cli as installer_cli

    parser = Parser(
        prog="market-sync",
        description="Your market-data instance on AWS, synced to this laptop's PostgreSQL.",
        epilog="Exit codes: 0 ok, 1 failed, 2 usage, 3 conflicts under --policy abort, "
        "4 gap found.",
    )
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $MARKET_SYNC_CONFIG, then the platform's "
                        "config folder/market-sync/config.toml)")
    parser.add_argument("--version", action="version", version=f"market-sync {app_version()}",
                        help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (sync.register, instance.register, demo.register, installer_cli.register,
                     tray.register):
        register(commands)
    describe_subcommands(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_cli_logging(args.verbose)
    return run_handler(args)


def gui_main() -> int:
    """The ``market-sync-tray`` GUI script: ``market-sync tray`` without a console."""
    return main(["tray"])


if __name__ == "__main__":
    raise SystemExit(main())
