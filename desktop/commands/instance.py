"""``status``, ``start`` and ``stop``: the instance on the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from shared.cliutil import config_from_args, positive_float, print_json
from shared.config import Config
from shared.errors import ConfigError

if TYPE_CHECKING:
    from desktop.engine.instance import InstanceController


def register(commands: argparse._SubParsersAction[Any]) -> None:
    status = commands.add_parser(
        "status", help="instance state, app health, newest backup, last sync, pending dumps, "
        "gaps",
        description="One look at everything the tray shows. Each part is read on its own: "
        "what cannot be read is reported and the rest is still shown. Exit 1 when a part "
        "could not be read, 4 when a trading day has no dump.")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=_status)

    start = commands.add_parser("start", help="start the EC2 instance")
    start.add_argument("--wait", action="store_true", help="wait until it is running")
    start.add_argument("--keep-running-until", metavar="TIME",
                       help="keep it up until TIME (HH:MM today, or an ISO time; IST unless "
                       "given): its guard powers it off once TIME has passed")
    start.add_argument("--timeout", type=positive_float, default=300, metavar="SECONDS",
                       help="how long --wait waits (300)")
    start.add_argument("--json", action="store_true", help="print the state as JSON")
    start.set_defaults(handler=_start)

    stop = commands.add_parser(
        "stop", help="stop the EC2 instance (during market hours only with --force)")
    stop.add_argument("--wait", action="store_true", help="wait until it is stopped")
    stop.add_argument("--force", action="store_true",
                      help="stop even during market hours (09:00–15:30 IST on a trading day)")
    stop.add_argument("--timeout", type=positive_float, default=300, metavar="SECONDS",
                      help="how long --wait waits (300)")
    stop.add_argument("--json", action="store_true", help="print the state as JSON")
    stop.set_defaults(handler=_stop)


def _status(args: argparse.Namespace) -> int:
    from desktop.commands.sync import database_password
    from desktop.engine.status import collect_status
    from shared.credentials import announce, laptop_clients, secret_store

    config = config_from_args(args)
    clients = laptop_clients(config.aws, secret_store(config.ui.allow_insecure_keyring))
    announce(clients)
    snapshot = collect_status(config, clients, password=database_password())
    if args.json:
        print_json(snapshot.to_json())
    else:
        print(snapshot.summary())
    if snapshot.errors:
        return 1
    return 4 if snapshot.gaps else 0


def _controller(config: Config) -> InstanceController:
    from desktop.engine.instance import InstanceController
    from desktop.engine.status import health_url_for
    from shared.credentials import announce, laptop_clients, secret_store

    if not config.aws.instance_id:
        raise ConfigError(f"{config.path}: [aws] has no instance_id",
                          "add the id of the market-data instance, e.g. "
                          'instance_id = "i-0123456789abcdef0"')
    clients = laptop_clients(config.aws, secret_store(config.ui.allow_insecure_keyring))
    announce(clients)
    return InstanceController(clients.ec2(), config.aws.instance_id,
                              health_url=health_url_for(config))


def keep_running_until(text: str, now: dt.datetime) -> dt.datetime:
    """``18:30`` (today, IST) or an ISO time (IST unless it has an offset); in the future."""
    from shared.calendar import IST
    from shared.errors import UsageError

    local = now.astimezone(IST)
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}", text.strip()):
            moment = dt.datetime.combine(local.date(), dt.time.fromisoformat(
                text.strip().zfill(5)), tzinfo=IST)
        else:
            moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--keep-running-until {text!r} is not a time",
                         "e.g. 18:30 (today, IST) or 2026-11-28T18:30+05:30") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=IST)
    if moment <= now:
        raise UsageError(f"--keep-running-until {text} is already past",
                         "give a time later today, or a date")
    return moment


def _start(args: argparse.Namespace) -> int:
    controller = _controller(config_from_args(args))
    if args.keep_running_until:
        from ec2.guard import now

        until = keep_running_until(args.keep_running_until, now())
        controller.set_keep_running_until(until)  # before the boot: its guard reads the tag
        if not args.json:
            print(f"kept running until {until:%Y-%m-%d %H:%M %Z}")
    state = controller.start(wait=args.wait, timeout=args.timeout)
    _show(args, state.to_json(), f"Starting: {state.describe()}" if not args.wait
          else state.describe())
    return 0


def _stop(args: argparse.Namespace) -> int:
    controller = _controller(config_from_args(args))
    state = controller.stop(force=args.force, wait=args.wait, timeout=args.timeout)
    _show(args, state.to_json(), f"Stopping: {state.describe()}" if not args.wait
          else state.describe())
    return 0


def _show(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    if args.json:
        print_json({"ok": True, "instance": document})
    else:
        print(text)
