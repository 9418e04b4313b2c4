"""``provision``, ``teardown``, ``deploy-agent`` and ``cost``: the AWS side on the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ec2.instance.settings import DISTROS
from installer import template as tpl
from shared.cliutil import print_json
from shared.errors import Cancelled, UsageError
from shared.paths import resolve_config_path

if TYPE_CHECKING:
    from ec2.instance.settings import Distro, InstanceSettings
    from installer.stack import ChangePlan
    from shared.aws import AwsClients
    from shared.config import AwsConfig, Config
    from shared.secrets import SecretStore

Ask = Callable[[str], str]


def register(commands: argparse._SubParsersAction[Any]) -> None:
    p = commands.add_parser(
        "provision", help="create or update the whole AWS side (one CloudFormation stack)",
        description="Create or update the stack through a change set: shows the changes, "
        "asks, applies them with live progress, makes this laptop's operator key (into the "
        "OS keyring) and writes the laptop config. Needs administrator credentials for this "
        "run only (--profile, AWS_PROFILE or AWS_ACCESS_KEY_ID); they are never stored. "
        "Re-running is safe.")
    _aws_options(p)
    p.add_argument("--email", help="where alarms go (default: the stack's current value)")
    p.add_argument("--ip", help="your public IPv4 address; only it may reach the app port")
    p.add_argument("--app-source", help="s3://…/app.tar.gz, an https git URL, or a local "
                   ".tar.gz to upload")
    p.add_argument("--instance-type", choices=tpl.INSTANCE_TYPES,
                   help="the EC2 instance type (its monthly cost: `market-sync cost`)")
    p.add_argument("--retention-days", type=int, help="days a dump is kept in S3 (default 365)")
    p.add_argument("--app-port", type=int, default=None,
                   help="the market app's port on the instance")
    p.add_argument("--database", metavar="CONNINFO",
                   help="the laptop's PostgreSQL (libpq conninfo without password)")
    p.add_argument("--distro", choices=DISTROS, default=None,
                   help="the instance's Linux (default al2023; fixed for the stack's life)")
    p.add_argument("--app-database", metavar="CONNINFO",
                   help="the app's own PostgreSQL as the instance reaches it, for the backup "
                   '(libpq conninfo without password, e.g. "host=127.0.0.1 port=5432 '
                   'dbname=market user=market")')
    p.add_argument("--app-database-password-file", type=Path, metavar="FILE",
                   help="a file holding that database's password: read once, kept only in "
                   "SSM SecureString")
    p.add_argument("--app-source-token-file", type=Path, metavar="FILE",
                   help="a file holding the deploy token of a private git --app-source: read "
                   "once, kept only in SSM SecureString")
    p.add_argument("--app-postgres-service", metavar="NAME",
                   help="the app's PostgreSQL compose service (default: detected)")
    p.add_argument("--image-id", metavar="AMI",
                   help="boot a new instance from this image (default: the distro's newest)")
    p.add_argument("--wheel", type=Path, help="upload this agent wheel instead of building one")
    _wheelhouse_option(p)
    p.add_argument("--yes", action="store_true", help="apply the changes without asking")
    p.add_argument("--print-template", action="store_true",
                   help="print the template that would be deployed, and nothing else")
    p.add_argument("--print-user-data", action="store_true",
                   help="print the instance's user-data for these options, and nothing else "
                   "(read-only AWS calls: the account and the stack)")
    p.set_defaults(handler=_provision)

    t = commands.add_parser(
        "teardown", help="delete the stack; the bucket and its dumps stay unless you say so")
    _aws_options(t)
    t.add_argument("--delete-data", action="store_true",
                   help="also empty and delete the bucket, with every dump in it")
    t.add_argument("--confirm-bucket", metavar="NAME",
                   help="with --delete-data and no terminal: the bucket name, as confirmation")
    t.add_argument("--yes", action="store_true", help="delete the stack without asking")
    t.set_defaults(handler=_teardown)

    d = commands.add_parser(
        "deploy-agent", help="build the agent wheel, upload it and update the instance (SSM)")
    _aws_options(d)
    d.add_argument("--wheel", type=Path, help="upload this wheel instead of building one")
    _wheelhouse_option(d)
    d.add_argument("--upload-only", action="store_true",
                   help="only upload; the instance installs it at its next setup run")
    d.add_argument("--force", action="store_true",
                   help="update even during the app's hours (it may restart the app)")
    d.set_defaults(handler=_deploy_agent)

    c = commands.add_parser("cost", help="estimated monthly cost, and this month's spend")
    _aws_options(c, admin=False)
    c.add_argument("--instance-type", choices=tpl.INSTANCE_TYPES, action="append",
                   help="estimate for this type (repeatable; default t3.small and t3.medium)")
    c.add_argument("--daily-mb", type=float, default=50.0,
                   help="compressed dump size per trading day in MB (default 50)")
    c.add_argument("--retention-days", type=int, default=tpl.DEFAULT_RETENTION_DAYS,
                   help=f"days a dump is kept in S3 ({tpl.DEFAULT_RETENTION_DAYS})")
    c.add_argument("--no-actual", action="store_true", help="skip Cost Explorer")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(handler=_cost)


def _wheelhouse_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wheelhouse", type=Path, metavar="DIR",
                        help="the agent's dependencies as wheels for the instance (Linux "
                        "x86_64, Python 3.11); default: fetched here with pip download")


def _aws_options(parser: argparse.ArgumentParser, admin: bool = True) -> None:
    parser.add_argument("--stack", default=None,
                        help="stack name (default: the config's, else market-sync)")
    parser.add_argument("--region", help="AWS region (default: the config's, else ap-south-1)")
    if admin:
        parser.add_argument("--profile", help="administrator AWS profile for this run (else "
                            "AWS_PROFILE or AWS_ACCESS_KEY_ID from the environment; never "
                            "the laptop's operator key)")
    else:
        parser.add_argument("--profile", help="AWS profile (default: the laptop's operator key "
                            "from the OS keyring)")
    parser.add_argument("--endpoint-url", help="another AWS endpoint (https, or 127.0.0.1)")


# -- shared plumbing ---------------------------------------------------------------------------
def _existing_config(args: argparse.Namespace) -> Config | None:
    from shared.config import load_config

    path = resolve_config_path(args.config)
    return load_config(path) if path.exists() else None


def _aws_config(args: argparse.Namespace, config: Config | None) -> AwsConfig:
    from shared.config import AwsConfig

    old = config.aws if config else None
    endpoint = args.endpoint_url or (old.endpoint_url if old else None)
    if endpoint and not endpoint.startswith(("https://", "http://127.", "http://localhost")):
        raise UsageError(f"--endpoint-url {endpoint} is not https",
                         "only https endpoints are used, except on this machine")
    return AwsConfig(region=args.region or (old.region if old else "ap-south-1"),
                     bucket=old.bucket if old else "",
                     profile=args.profile or (old.profile if old else None),
                     endpoint_url=endpoint, prefix=old.prefix if old else "",
                     instance_id=old.instance_id if old else None,
                     stack=old.stack if old else None)


def _stack(args: argparse.Namespace, config: Config | None) -> str:
    """--stack, else the stack the laptop config names, else market-sync."""
    return str(args.stack or (config.aws.stack if config and config.aws.stack else None)
               or "market-sync")


def _admin_clients(args: argparse.Namespace, config: Config | None,
                   command: str) -> AwsClients:
    """provision/teardown/deploy-agent: explicit administrator credentials, this run only."""
    from shared.credentials import administrator_clients, announce

    clients = administrator_clients(_aws_config(args, config), args.profile, command)
    announce(clients)
    return clients


def _secrets(required: bool) -> SecretStore | None:
    from shared.secrets import SecretStore, SecretStoreError

    try:
        return SecretStore.default()
    except SecretStoreError:
        if required:
            raise
        return None


def _ask(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise UsageError("this needs an answer and there is no terminal",
                         "pass --yes (and for --delete-data, --confirm-bucket NAME)")
    return input(prompt)


# -- provision ---------------------------------------------------------------------------------
def _provision(args: argparse.Namespace, ask: Ask = _ask) -> int:
    from installer.artifacts import SecretText
    from installer.provision import Provisioner, ProvisionProgress, ProvisionRequest
    from installer.stack import StackDeployer

    for option, path in (("--wheelhouse", args.wheelhouse),):
        if path is not None and not path.is_dir():
            raise UsageError(f"{option} {path} is not a directory")
    password = (SecretText.from_file(args.app_database_password_file)
                if args.app_database_password_file else None)
    token = (SecretText.from_file(args.app_source_token_file, "token")
             if args.app_source_token_file else None)
    config = _existing_config(args)
    clients = _admin_clients(args, config, "provision")
    secrets = _secrets(required=not (args.print_template or args.print_user_data))
    stack = _stack(args, config)
    previous = StackDeployer(clients.cloudformation(), stack).state()
    old = dict(previous.parameters) if previous else {}
    email = args.email or old.get("AlertEmail")
    ip = args.ip or (old["TraderCidr"] if "TraderCidr" in old else None)
    source = args.app_source or old.get("AppSource")
    missing = [name for name, value in (("--email", email), ("--ip", ip),
                                        ("--app-source", source)) if not value]
    if missing:
        raise UsageError(f"a new stack needs {', '.join(missing)}",
                         "e.g. --email you@example.com --ip 203.0.113.7 "
                         "--app-source https://github.com/you/market-app.git")
    assert email and ip and source
    request = ProvisionRequest(
        alert_email=email, trader_ip=ip, app_source=source, region=clients.config.region,
        stack_name=stack, prefix=clients.config.prefix,
        instance_type=args.instance_type or old.get("InstanceType", tpl.DEFAULT_INSTANCE_TYPE),
        retention_days=args.retention_days or int(old.get("DumpRetentionDays",
                                                          tpl.DEFAULT_RETENTION_DAYS)),
        app_port=args.app_port or int(old.get("AppPort", 8000)),
        database_conninfo=args.database,
        tables=config.tables if config else (),
        distro=_distro(args.distro or old.get("Distro", "al2023")),
        app_database=args.app_database, app_database_password=password,
        app_source_token=token,
        app_postgres_service=args.app_postgres_service, image_id=args.image_id)
    provisioner = Provisioner(clients, request, resolve_config_path(args.config),
                              secrets=secrets, wheel=args.wheel, wheelhouse=args.wheelhouse)
    if args.print_user_data:
        sys.stdout.write(provisioner.render_user_data())
        return 0
    if args.print_template:
        print(tpl.template_body(provisioner.render_template()))
        return 0

    def show(step: ProvisionProgress) -> None:
        if step.phase == "changes" and step.changes:
            print("Changes:")
            for change in step.changes:
                print("  " + change.describe())
        else:
            print(step.message, flush=True)

    def confirm(plan: ChangePlan) -> bool:
        if plan.replacements:
            print("WARNING: these resources will be REPLACED (an instance replacement starts "
                  "from a new disk):")
            for change in plan.replacements:
                print("  " + change.describe())
        if args.yes:
            return True
        return ask("Apply these changes? [y/N] ").strip().lower() in ("y", "yes")

    try:
        result = provisioner.run(show, confirm)
    except Cancelled as exc:
        print(exc.message)
        return 1
    print(f"bucket {result.bucket}, instance {result.instance_id or '-'}, "
          f"region {result.region}")
    print(f"config written to {result.config_path}")
    if result.operator_key_stored:
        print(f"this laptop now acts as {result.operator_user}: its access key is in the OS "
              "keyring; the administrator credentials of this run were not stored")
    if result.changed:
        print(f"AWS sent a confirmation e-mail to {email}: click its link to get alarms.")
    return 0


def _distro(name: str) -> Distro:
    for distro in DISTROS:
        if distro == name:
            return distro
    raise UsageError(f"distro {name!r} is not supported", f"choose one of {', '.join(DISTROS)}")


# -- teardown ----------------------------------------------------------------------------------
def _teardown(args: argparse.Namespace, ask: Ask = _ask) -> int:
    from installer.teardown import Teardown

    config = _existing_config(args)
    clients = _admin_clients(args, config, "teardown")
    stack = _stack(args, config)
    teardown = Teardown(clients, stack, secrets=_secrets(required=False))
    bucket = teardown.bucket() or (config.aws.bucket if config and config.aws.bucket else None)
    if teardown.deployer.state() is None and not args.delete_data:
        print(f"there is no stack {stack} in {clients.config.region}: nothing to delete")
        return 0
    if args.delete_data:
        if not bucket:
            raise UsageError("there is no bucket to delete", "pass --config of the laptop")
        answer = args.confirm_bucket or ask(
            f"This deletes the bucket {bucket} and EVERY dump in it, for good.\n"
            "Type the bucket name to confirm: ")
        if answer.strip() != bucket:
            print("the name did not match: nothing was deleted")
            return 1
    elif not args.yes and ask(f"Delete the stack {stack} (instance, roles, alarms; the "
                              f"bucket {bucket} and its dumps stay)? [y/N] ").strip().lower() \
            not in ("y", "yes"):
        print("nothing was deleted")
        return 1
    result = teardown.run(delete_data=args.delete_data, bucket=bucket,
                          on_event=lambda e: print(e.describe(), flush=True))
    if result.stack_deleted:
        print(f"deleted the stack {stack}")
    if result.bucket_deleted:
        print(f"deleted the bucket {result.bucket} ({result.objects_deleted} object versions)")
    elif result.bucket:
        print(f"kept the bucket {result.bucket} and its dumps; `market-sync teardown "
              "--delete-data` removes them")
    return 0


# -- deploy-agent ------------------------------------------------------------------------------
def _deploy_agent(args: argparse.Namespace) -> int:
    import dataclasses

    from installer.agent import InstanceUpdater, deploy_agent, refuse_during_app_hours
    from installer.artifacts import read_settings
    from installer.provision import Provisioner
    from installer.stack import ProvisionError, StackDeployer

    config = _existing_config(args)
    clients = _admin_clients(args, config, "deploy-agent")
    stack = _stack(args, config)
    state = StackDeployer(clients.cloudformation(), stack).state()
    if state is None:
        raise ProvisionError(f"there is no stack {stack} in {clients.config.region}",
                             "run `market-sync provision` first")
    params = state.parameters
    outputs = Provisioner.outputs_of(clients, stack)
    bucket = outputs.get("BucketName") or params["BucketName"]
    instance_id = outputs.get("InstanceId")
    if not args.upload_only and instance_id and not args.force:
        refuse_during_app_hours()
    current = read_settings(clients.s3(), bucket)
    if current is None:
        raise ProvisionError(f"s3://{bucket} holds no instance settings",
                             "run `market-sync provision` once with this version")

    def settings_for(key: str) -> InstanceSettings:
        return dataclasses.replace(
            current, agent_wheel_key=key, tables=config.tables if config else current.tables,
            prefix=clients.config.prefix, endpoint_url=clients.config.endpoint_url)

    updater = None if args.upload_only else InstanceUpdater(clients.ssm())
    result = deploy_agent(clients.s3(), updater, bucket, settings_for, instance_id,
                          wheel=args.wheel, wheelhouse=args.wheelhouse)
    print(f"uploaded s3://{bucket}/{result.wheel_key} and the instance's settings")
    if result.command is not None:
        print(f"the instance {instance_id} is updated (Run Command {result.command.command_id})")
    return 0


# -- cost --------------------------------------------------------------------------------------
def _cost(args: argparse.Namespace) -> int:
    from installer.cost import UsageAssumptions, calendar_year, estimate, month_to_date
    from shared.calendar import TradingCalendar, today_ist
    from shared.errors import AwsError

    calendar = TradingCalendar.load()
    today = today_ist()
    year = calendar_year(calendar, today)
    usage = UsageAssumptions(daily_dump_mb=args.daily_mb, retention_days=args.retention_days)
    estimates = [estimate(t, calendar, year, usage)
                 for t in (args.instance_type or ["t3.small", "t3.medium"])]
    actual = None
    note = ""
    if not args.no_actual:
        config = _existing_config(args)
        try:
            from shared.credentials import announce, laptop_clients, secret_store

            clients = laptop_clients(_aws_config(args, config), None if args.profile else
                                     secret_store())
            announce(clients)
            actual = month_to_date(clients.ce(), today)
            if actual is None:
                note = "Cost Explorer is not allowed for these credentials (or not enabled)."
        except AwsError as exc:
            note = f"Cost Explorer could not be read: {exc.message}"
    if args.json:
        print_json({"ok": True, "estimates": [e.to_json() for e in estimates],
                    "month_to_date": None if actual is None else {
                        "start": actual.start, "end": actual.end,
                        "total_usd": round(actual.total_usd, 2),
                        "by_service": dict(actual.by_service)},
                    "note": note})
        return 0
    print("\n\n".join(e.render() for e in estimates))
    if actual is not None:
        print("\n" + actual.render())
    elif note:
        print("\n" + note)
    return 0
