"""``market-sync-agent``: the commands that run on the instance."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from shared.cliutil import (
    Parser,
    add_version,
    describe_subcommands,
    iso_date,
    positive_int,
    print_json,
    run_handler,
)
from shared.logsetup import configure_cli_logging

if TYPE_CHECKING:
    from ec2.imds import Imds
    from shared.aws import AwsClients
    from shared.config import Config

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
    day = args.date or today_ist()
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


def _at(args: argparse.Namespace) -> dt.datetime:
    from ec2 import guard
    from shared.calendar import IST

    if getattr(args, "at", None):
        try:
            moment = dt.datetime.fromisoformat(args.at)
        except ValueError:
            from shared.errors import UsageError

            raise UsageError(f"--at {args.at!r} is not an ISO time",
                             "e.g. 2026-11-24T08:50+05:30") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=IST)
    return guard.now()


def _agent_context(args: argparse.Namespace) -> tuple[Config, AwsClients, Imds]:
    from ec2.imds import Imds
    from shared.aws import AwsClients
    from shared.config import load_config

    config = load_config(Path(args.config))
    return config, AwsClients(config.aws), Imds(config.agent.imds_url)


def _instance_id(config: Config, imds: Imds) -> str:
    return config.aws.instance_id or imds.instance_id()


def _publish(config: Config | None, clients: AwsClients | None, subject: str,
             message: str) -> None:
    """Best effort: a guard that is about to power off says why, even when SNS fails."""
    from ec2.notify import Notifier
    from shared.errors import MarketSyncError

    if config is None or clients is None:
        return
    try:
        Notifier(clients.sns(), config.agent.sns_topic_arn).publish(subject, message)
    except MarketSyncError as exc:
        print(f"market-sync guard: could not notify: {exc}", file=sys.stderr)


def _guard(args: argparse.Namespace) -> int:
    """Exit 0: power off; 1: stay up. On any error it powers off (after saying why through
    SNS): an instance nobody decided to keep must not run on."""
    from ec2.guard import KeepRunningOverride, Moment, decide
    from shared.calendar import IST, TradingCalendar

    moment = (Moment.AFTER_BACKUP if args.after_backup
              else Moment.PERIODIC if args.periodic else Moment.BOOT)
    config: Config | None = None
    clients: AwsClients | None = None
    try:
        at = _at(args)
        config, clients, imds = _agent_context(args)
        calendar = TradingCalendar.load()
        day = at.astimezone(IST).date()
        if not calendar.covers(day) and moment is Moment.BOOT:
            warning = (f"The NSE holiday list in this market-sync has no data for {day.year}: "
                       "the instance cannot tell holidays from trading days and runs on every "
                       "weekday. Update market-sync on the laptop and run `market-sync "
                       "deploy-agent`.")
            print(f"market-sync guard: WARNING: {warning}", file=sys.stderr)
            _publish(config, clients, f"market-sync: the holiday list has no {day.year}",
                     warning)
        override = KeepRunningOverride(imds, clients.ec2, config.aws.instance_id).read()
        decision = decide(at, calendar, override, moment,
                          power_off_after_backup=config.agent.power_off_after_backup)
    except Exception as exc:  # any failure: power off, never stay up unasked
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        print(f"market-sync guard: cannot decide, powering off: {reason}", file=sys.stderr)
        _publish(config, clients, "market-sync: the guard could not decide; powering off",
                 f"The market-sync guard ({moment}) could not decide whether the instance is "
                 f"needed, so it powers it off: {reason}\nStart it again from the tray or "
                 "with `market-sync start` if it is needed today.")
        return 0
    print(decision.describe())
    return 0 if decision.power_off else 1


def _app_hours(args: argparse.Namespace) -> int:
    from ec2.guard import in_app_hours
    from ec2.instance.schedule import SCHEDULE
    from shared.calendar import IST, TradingCalendar

    at = _at(args).astimezone(IST)
    inside = in_app_hours(at, TradingCalendar.load())
    where = "inside" if inside else "outside"
    print(f"{at:%Y-%m-%d %H:%M} IST is {where} the app's hours "
          f"({SCHEDULE.app_start:%H:%M}–{SCHEDULE.app_stop:%H:%M} IST on session days)")
    return 0 if inside else 1


def _notify(args: argparse.Namespace) -> int:
    from ec2 import guard
    from ec2.metrics import put_backup_result
    from ec2.notify import FailureNotice, Notifier, journal_tail
    from shared.errors import MarketSyncError

    config, clients, imds = _agent_context(args)
    instance_id = _instance_id(config, imds)
    at = guard.now()
    notice = FailureNotice(args.unit, instance_id, at, journal_tail(args.unit, args.lines))
    message_id = Notifier(clients.sns(), config.agent.sns_topic_arn).send(notice)
    print(f"notified: {notice.subject} (SNS message {message_id})")
    if args.unit.startswith("market-sync-backup."):
        try:
            put_backup_result(clients.cloudwatch(), config.agent.metric_namespace, instance_id,
                              False, at)
        except MarketSyncError as exc:
            logging.getLogger("ec2.metrics").warning("%s", exc)
    return 0


def _report_backup(args: argparse.Namespace) -> int:
    from ec2 import guard
    from ec2.metrics import BACKUP_METRIC, put_backup_result

    config, clients, imds = _agent_context(args)
    instance_id = _instance_id(config, imds)
    succeeded = args.result == "succeeded"
    put_backup_result(clients.cloudwatch(), config.agent.metric_namespace, instance_id,
                      succeeded, guard.now())
    print(f"{config.agent.metric_namespace}/{BACKUP_METRIC}={int(succeeded)} "
          f"(InstanceId={instance_id})")
    return 0


def _health(args: argparse.Namespace) -> int:
    from ec2.health import wait_healthy
    from shared.config import load_config

    url = args.url
    if url is None:
        config = load_config(Path(args.config))
        url = config.app.health_url or f"http://127.0.0.1:{config.app.port}/health"
    health = wait_healthy(url, args.wait, interval=args.interval)
    if args.json:
        print_json({"ok": health.healthy, "url": health.url, "status": health.status,
                    "detail": health.detail, "seconds": round(health.seconds, 3)})
    else:
        print(health.describe())
    return 0 if health.healthy else 1


def _os_updates(args: argparse.Namespace) -> int:
    from ec2 import osupdates

    config, clients, imds = _agent_context(args)

    def pin() -> str | None:
        stack = imds.tag(osupdates.STACK_TAG)
        return osupdates.read_pin(clients.ssm(), stack) if stack else None

    plan = osupdates.plan_updates(osupdates.which, pin)
    print(plan.describe)
    osupdates.run_updates(plan)
    return 0


def _add_instance_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    updates = commands.add_parser(
        "os-updates", help="install the operating system's security updates (AL2023: up to "
        "the release pinned in SSM; Ubuntu/Debian: unattended-upgrades)")
    updates.set_defaults(handler=_os_updates)

    guard = commands.add_parser(
        "guard", help="may the instance power off now? exit 0: yes (not needed, or it "
        "cannot tell: then it says why through SNS), 1: no (trading day, special session or "
        "keep-running tag)")
    when = guard.add_mutually_exclusive_group()
    when.add_argument("--after-backup", action="store_true",
                      help="ask after the day's backup instead of at boot")
    when.add_argument("--periodic", action="store_true",
                      help="ask while running (the 15-minute timer): power off once the day's "
                      "work is over or the keep-running tag has expired")
    guard.add_argument("--at", metavar="ISO", help="decide for this time instead of now")
    guard.set_defaults(handler=_guard)

    hours = commands.add_parser(
        "app-hours", help="exit 0 if the app should be running now (session day, 08:55–15:35 IST)")
    hours.add_argument("--at", metavar="ISO", help="ask for this time instead of now")
    hours.set_defaults(handler=_app_hours)

    notify = commands.add_parser(
        "notify", help="publish UNIT's failure with its journal tail to the SNS topic")
    notify.add_argument("unit", metavar="UNIT", help="the systemd unit that failed")
    notify.add_argument("--lines", type=positive_int, default=40,
                        help="journal lines to include (40)")
    notify.set_defaults(handler=_notify)

    report = commands.add_parser(
        "report-backup", help="publish MarketSync/BackupSucceeded (1 or 0) for this instance")
    report.add_argument("result", choices=("succeeded", "failed"),
                        help="how the day's backup went")
    report.set_defaults(handler=_report_backup)

    health = commands.add_parser("health", help="exit 0 if the market app answers its health URL")
    health.add_argument("--url", help="default: [app] health_url in the config")
    health.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="keep trying this long before giving up")
    health.add_argument("--interval", type=float, default=5.0, metavar="SECONDS",
                        help=argparse.SUPPRESS)
    health.add_argument("--json", action="store_true", help="print the result as JSON")
    health.set_defaults(handler=_health)


class _JournalFormatter(logging.Formatter):
    """Under systemd, a ``<N>`` syslog priority prefix lets journald keep the level."""

    _PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                 logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        priority = self._PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{record.name}: {super().format(record)}"


def _log_to_journal_if_under_systemd() -> None:
    if not os.environ.get("JOURNAL_STREAM"):
        return
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_JournalFormatter("%(message)s"))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="market-sync-agent",
        description="market-sync's agent on the EC2 instance: backups to S3, trading-day checks.",
    )
    parser.add_argument("--config", metavar="PATH", default=DEFAULT_AGENT_CONFIG,
                        help=f"agent config (default {DEFAULT_AGENT_CONFIG})")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    add_version(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    backup = commands.add_parser(
        "backup", help="dump the new days to S3 (one snapshot, one part per table per day)")
    backup.add_argument("--full", action="store_true", help="dump everything, not just new days")
    backup.add_argument("--json", action="store_true", help="print the result as JSON")
    backup.set_defaults(handler=_backup)

    trading = commands.add_parser(
        "trading-day", help="exit 0 if DATE (default today, IST) has an NSE session, 1 if not")
    trading.add_argument("date", nargs="?", metavar="DATE", type=iso_date,
                         help="YYYY-MM-DD (a date that is not one: exit 2)")
    trading.set_defaults(handler=_trading_day)
    _add_instance_commands(commands)
    from ec2 import setup_cli

    setup_cli.register(commands)
    describe_subcommands(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_cli_logging(args.verbose)
    _log_to_journal_if_under_systemd()
    return run_handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
