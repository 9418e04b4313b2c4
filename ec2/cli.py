"""``market-sync-agent``: the commands that run on the instance."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.cliutil import print_json, run_handler
from shared.logsetup import configure_cli_logging

DEFAULT_AGENT_CONFIG = "/etc/market-sync/agent.toml"


def _backup(args: argparse.Namespace) -> int:
    from ec2.backup import BackupAgent
    from shared.config import load_config

    config = load_config(Path(args.config))
    result = BackupAgent.from_config(config).run(full=args.full)
    if args.json:
        print_json(result.to_json())
    else:
        print(result.summary())
    return 0


def _trading_day(args: argparse.Namespace) -> int:
    from shared.calendar import TradingCalendar, today_ist

    calendar = TradingCalendar.load()
    day = dt.date.fromisoformat(args.date) if args.date else today_ist()
    if calendar.is_trading_day(day):
        print(f"{day} is a trading day")
        return 0
    special = calendar.special_sessions.get(day)
    if special is not None:
        timing = " (timing not yet announced)"
        if special.open and special.close:
            timing = f" {special.open:%H:%M}–{special.close:%H:%M} IST"
        print(f"{day} has a special session: {special.name}{timing}")
        return 0
    holiday = calendar.holiday(day)
    reason = holiday.name if holiday else "weekend" if day.weekday() >= 5 else "no session"
    if not calendar.covers(day):
        print(f"{day}: the holiday list has no data for {day.year}", file=sys.stderr)
    print(f"{day} is not a trading day ({reason})")
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="market-sync-agent",
        description="market-sync's agent on the EC2 instance: backups to S3, trading-day checks.",
    )
    parser.add_argument("--config", metavar="PATH", default=DEFAULT_AGENT_CONFIG,
                        help=f"agent config (default {DEFAULT_AGENT_CONFIG})")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    backup = commands.add_parser(
        "backup", help="dump the new days to S3 (one snapshot, one part per table per day)")
    backup.add_argument("--full", action="store_true", help="dump everything, not just new days")
    backup.add_argument("--json", action="store_true", help="print the result as JSON")
    backup.set_defaults(handler=_backup)

    trading = commands.add_parser(
        "trading-day", help="exit 0 if DATE (default today, IST) has an NSE session, 1 if not")
    trading.add_argument("date", nargs="?", metavar="DATE", help="YYYY-MM-DD")
    trading.set_defaults(handler=_trading_day)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_cli_logging(args.verbose)
    return run_handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
