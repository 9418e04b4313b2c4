"""First-time provisioning, update and teardown of the whole AWS side.

:class:`Provisioner` is what ``market-sync provision`` and the wizard run.
A new stack is made in two passes — everything but the instance, then the
agent wheel into the new bucket, then the instance — so the instance finds
its wheel on first boot. Re-running is safe: what exists is updated, an
unchanged stack is reported as such.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ec2.instance.settings import DISTROS, Distro, InstanceSettings
from installer import template as tpl
from installer.agent import build_wheel, upload_artifact, wheel_key
from installer.agentwheel import agent_wheel, shipped_wheelhouse
from installer.artifacts import (
    SecretText,
    build_wheelhouse,
    dependency_wheels,
    put_app_source_token,
    put_database_password,
    upload_settings,
    upload_wheelhouse,
)
from installer.laptop_config import LaptopAws, write_laptop_config
from installer.powers import (
    Step,
    operator_key,
    pin_os_release,
    put_budget,
)
from installer.stack import ChangePlan, ProvisionError, ResourceChange, StackDeployer, StackEvent
from shared.aws import AwsClients, aws_error
from shared.config import has_password
from shared.errors import UsageError
from shared.tables import TableSpec

if TYPE_CHECKING:
    from shared.secrets import SecretStore

logger = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_STACK = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")


@dataclass(frozen=True)
class ProvisionRequest:
    """What the trader chose (wizard pages or command-line options)."""

    alert_email: str
    trader_ip: str  # "203.0.113.7" or "203.0.113.7/32"
    app_source: str  # s3://…/app.tar.gz, an https git URL, or a local .tar.gz to upload
    region: str = "ap-south-1"
    stack_name: str = "market-sync"
    instance_type: str = tpl.DEFAULT_INSTANCE_TYPE
    retention_days: int = tpl.DEFAULT_RETENTION_DAYS
    app_port: int = 8000
    database_conninfo: str | None = None  # the laptop's PostgreSQL
    tables: tuple[TableSpec, ...] = ()  # the trader's [[tables]], for the agent
    distro: Distro = "al2023"
    # the app's own PostgreSQL as the instance reaches it (libpq conninfo, no password)
    app_database: str | None = None
    app_database_password: SecretText | None = None  # goes to SSM SecureString only
    app_source_token: SecretText | None = None  # a private git app source's deploy token: SSM
    app_postgres_service: str | None = None  # its compose service; None: detected
    image_id: str | None = None  # this AMI instead of the distro's newest (a new instance only)
    prefix: str = ""  # the laptop config's [aws] prefix: dumps live under <prefix>dumps/

    def validate(self) -> None:
        if not _EMAIL.match(self.alert_email):
            raise UsageError(f"{self.alert_email!r} is not an e-mail address")
        trader_cidr(self.trader_ip)
        check_app_source(self.app_source)
        if not _STACK.match(self.stack_name):
            raise UsageError(f"{self.stack_name!r} is not a stack name",
                             "letters, digits and dashes, starting with a letter")
        if self.instance_type not in tpl.INSTANCE_TYPES:
            raise UsageError(f"instance type {self.instance_type!r} is not offered",
                             f"choose one of {', '.join(tpl.INSTANCE_TYPES)}")
        if not 1 <= self.retention_days <= 3650:
            raise UsageError("retention must be 1 to 3650 days")
        if self.distro not in DISTROS:
            raise UsageError(f"distro {self.distro!r} is not supported",
                             f"choose one of {', '.join(DISTROS)}")
        if self.image_id is not None and not re.match(r"^ami-[0-9a-f]{8,17}$", self.image_id):
            raise UsageError(f"{self.image_id!r} is not an AMI id", "e.g. ami-0123456789abcdef0")
        if self.app_database is not None and has_password(self.app_database):
            raise UsageError("--app-database contains a password",
                             "remove it; pass the password with --app-database-password-file")


def check_app_source(source: str) -> None:
    """A URL with credentials in it would land in a stack parameter, a tag, .git/config
    and logs: refused, with where the token goes instead."""
    import urllib.parse

    text = source.strip()
    if text.startswith(("https://", "s3://")) and "@" in urllib.parse.urlsplit(text).netloc:
        raise UsageError("the app source URL carries credentials",
                         "give the URL without them and the deploy token with "
                         "--app-source-token-file: it is kept in SSM (SecureString), never "
                         "in the URL, the stack, the instance's tags or a log")


def trader_cidr(ip: str) -> str:
    """``203.0.113.7`` → ``203.0.113.7/32``; anything but one public IPv4 address is refused."""
    text = ip.strip().removesuffix("/32")
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise UsageError(f"{ip!r} is not an IPv4 address",
                         "give your public address, e.g. 203.0.113.7") from None
    if not address.is_global:
        raise UsageError(f"{address} is not a public address",
                         "the instance sees your router's public address; look it up")
    return f"{address}/32"


@dataclass(frozen=True)
class ProvisionProgress:
    """One step of provisioning, for the CLI's lines and the wizard's log."""

    phase: str  # account | plan | changes | apply | event | artifacts | config | keyring |
    #             secrets | budget | os | done
    message: str
    event: StackEvent | None = None
    changes: tuple[ResourceChange, ...] = ()


@dataclass(frozen=True)
class ProvisionResult:
    stack_name: str
    region: str
    bucket: str
    instance_id: str | None
    topic_arn: str
    config_path: Path
    changed: bool
    operator_user: str | None = None
    operator_key_stored: bool = False
    changes: tuple[ResourceChange, ...] = field(default=())


Progress = Callable[[ProvisionProgress], None]
Confirm = Callable[[ChangePlan], bool]


def _quiet(_: ProvisionProgress) -> None:
    return None


def _yes(_: ChangePlan) -> bool:
    return True


@dataclass(frozen=True)
class _Account:
    account_id: str
    partition: str


@dataclass(frozen=True)
class _Names:
    account: _Account
    exists: bool
    previous: dict[str, str]
    bucket: str
    topic_arn: str


@dataclass(frozen=True)
class _Inputs(_Names):
    subnet: str
    app_source: str
    app_upload: Path | None
    base: dict[str, str]


class Provisioner:
    """Create or update the stack, upload the agent, write the laptop config."""

    def __init__(self, clients: AwsClients, request: ProvisionRequest, config_path: Path, *,
                 secrets: SecretStore | None, wheel: Path | None = None,
                 wheelhouse: Path | None = None, poll_seconds: float = 5.0,
                 build: Callable[[Path, Path], Path] = build_wheel,
                 fetch_wheels: Callable[[Path, Path], list[Path]] = build_wheelhouse) -> None:
        """``clients`` act as the administrator for this run only (never stored);
        ``secrets`` is the OS keyring that receives the laptop's operator key."""
        request.validate()
        self.clients = clients
        self.request = request
        self.config_path = config_path
        self.secrets = secrets
        self.wheel = wheel
        self.wheelhouse = wheelhouse
        self.build = build
        self.fetch_wheels = fetch_wheels
        self.deployer = StackDeployer(clients.cloudformation(), request.stack_name,
                                      poll_seconds=poll_seconds)

    # -- names and inputs -------------------------------------------------------------------
    def _account(self) -> _Account:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            identity = self.clients.sts().get_caller_identity()
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, "find out which AWS account these credentials belong to") \
                from None
        partition = identity["Arn"].split(":")[1] if identity.get("Arn") else "aws"
        return _Account(identity["Account"], partition)

    def _network(self, previous: dict[str, str]) -> tuple[str, str]:
        if "VpcId" in previous and "SubnetId" in previous:
            return previous["VpcId"], previous["SubnetId"]
        from botocore.exceptions import BotoCoreError, ClientError

        ec2 = self.clients.ec2()
        try:
            vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
            if not vpcs:
                raise ProvisionError(
                    f"this account has no default VPC in {self.request.region}",
                    "make one with `aws ec2 create-default-vpc` (free), then run this again")
            vpc = vpcs[0]["VpcId"]
            subnets = ec2.describe_subnets(Filters=[
                {"Name": "vpc-id", "Values": [vpc]},
                {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, "find the default VPC") from None
        if not subnets:
            raise ProvisionError(f"the default VPC {vpc} has no default subnet",
                                 "make one with `aws ec2 create-default-subnet --availability-"
                                 f"zone {self.request.region}a`")
        subnet = sorted(subnets, key=lambda s: s.get("AvailabilityZone", ""))[0]
        return vpc, subnet["SubnetId"]

    def _image(self, previous: dict[str, str]) -> str:
        if "ImageId" in previous:
            return previous["ImageId"]  # an update keeps the AMI: no surprise replacement
        if self.request.image_id:
            return self.request.image_id
        from installer.images import current_image

        return current_image(self.clients.ssm(), self.clients.ec2(), self.request.distro,
                             self.request.region)

    def _app_source(self, bucket: str) -> tuple[str, Path | None]:
        source = self.request.app_source.strip()
        if source.startswith(("s3://", "https://")):
            return source, None
        local = Path(source).expanduser()
        if local.is_file() and local.name.endswith((".tar.gz", ".tgz")):
            return f"s3://{bucket}/{app_key(local)}", local
        raise UsageError(f"the app source {source!r} is neither s3://…, https://… nor a local "
                         ".tar.gz file")

    # -- the run ----------------------------------------------------------------------------
    def _names(self) -> _Names:
        """The account and the stack's names (read-only calls: STS, CloudFormation)."""
        req = self.request
        account = self._account()
        state = self.deployer.state()
        previous = dict(state.parameters) if state else {}
        running = previous.get("Distro", "al2023" if "ImageId" in previous else req.distro)
        if running != req.distro:
            raise UsageError(f"the instance of {req.stack_name} runs {running}, not "
                             f"{req.distro}", f"pass --distro {running} (changing it needs "
                             "`market-sync teardown` and a new stack)")
        bucket = previous.get("BucketName") or bucket_name(req.stack_name, account.account_id,
                                                           req.region)
        topic = previous.get("TopicName") or f"{req.stack_name}-alerts"
        return _Names(account, state is not None, previous, bucket,
                      f"arn:{account.partition}:sns:{req.region}:{account.account_id}:{topic}")

    def _inputs(self) -> _Inputs:
        req = self.request
        names = self._names()
        account, previous, bucket = names.account, names.previous, names.bucket
        topic = previous.get("TopicName") or f"{req.stack_name}-alerts"
        vpc, subnet = self._network(previous)
        app_source, app_upload = self._app_source(bucket)
        base = {
            "TraderCidr": trader_cidr(req.trader_ip), "AlertEmail": req.alert_email,
            "DumpRetentionDays": str(req.retention_days), "BucketName": bucket,
            "TopicName": topic, "VpcId": vpc, "AppPort": str(req.app_port),
        }
        return _Inputs(
            account=account, exists=names.exists, previous=previous, bucket=bucket,
            topic_arn=names.topic_arn, subnet=subnet, app_source=app_source,
            app_upload=app_upload, base=base)

    def settings(self, bucket: str, topic_arn: str, app_source: str, key: str,
                 wheels: tuple[str, ...] = ()) -> InstanceSettings:
        """What the instance gets from this request (user-data and settings bundle)."""
        req = self.request
        settings = InstanceSettings(
            region=req.region, bucket=bucket, prefix=req.prefix, agent_wheel_key=key,
            app_source=app_source, sns_topic_arn=topic_arn, distro=req.distro,
            app_port=req.app_port, tables=req.tables, stack_name=req.stack_name,
            endpoint_url=self.clients.config.endpoint_url,
            postgres_service=req.app_postgres_service, wheels=wheels)
        if req.app_database:
            settings = replace(settings, database_conninfo=req.app_database)
        return settings

    def _full(self, inputs: _Inputs, key: str) -> tuple[tpl.Template, dict[str, str]]:
        from ec2.instance.userdata import render_user_data

        req = self.request
        settings = self.settings(inputs.bucket, inputs.topic_arn, inputs.app_source, key)
        template = tpl.build_template(render_user_data(settings.boot()), req.distro,
                                      prefix=req.prefix)
        parameters = {**inputs.base, "InstanceType": req.instance_type,
                      "ImageId": self._image(inputs.previous), "SubnetId": inputs.subnet,
                      "AppSource": inputs.app_source, "AgentWheelKey": key,
                      "Distro": req.distro}
        return template, parameters

    def render_user_data(self) -> str:
        """The user-data ``run`` gives the instance. It depends only on the stack's names
        (bucket, topic, region, endpoint, distro), so no wheel is built and nothing is
        written: read-only calls (STS, CloudFormation) only."""
        from ec2.instance.userdata import render_user_data

        names = self._names()
        source = self.request.app_source.strip()
        app_source = source if source.startswith(("s3://", "https://")) \
            else f"s3://{names.bucket}/{app_key(Path(source))}"
        settings = self.settings(names.bucket, names.topic_arn, app_source,
                                 default_wheel_key())
        return render_user_data(settings.boot())

    def render_template(self) -> tpl.Template:
        """The template ``run`` would deploy now (read-only calls only)."""
        key = wheel_key(self.wheel) if self.wheel else default_wheel_key()
        return self._full(self._inputs(), key)[0]

    def run(self, progress: Progress = _quiet, confirm: Confirm = _yes) -> ProvisionResult:
        req = self.request
        if self.secrets is None:  # before anything changes: the operator key needs a home
            raise ProvisionError("there is no OS keyring to keep this laptop's operator key in",
                                 "install or unlock one (GNOME Keyring, KWallet, Keychain, "
                                 "Windows Credential Manager), then run this again")
        inputs = self._inputs()
        progress(ProvisionProgress("account", f"AWS account {inputs.account.account_id}, "
                                   f"region {req.region}, stack {req.stack_name}"))
        changed = False
        all_changes: list[ResourceChange] = []
        with tempfile.TemporaryDirectory(prefix="market-sync-") as tmp:
            wheel = self.wheel or agent_wheel(Path(tmp), self.build)
            key = wheel_key(wheel)
            has_instance = inputs.exists and "Instance" in self.deployer.physical_ids()
            if not has_instance:
                progress(ProvisionProgress("plan", "first pass: bucket, topic, roles, "
                                           "security group"))
                first = self._apply(tpl.build_template(None, prefix=req.prefix), inputs.base,
                                    progress, confirm)
                changed |= first is not None
                all_changes += first or []
            s3 = self.clients.s3()
            progress(ProvisionProgress("artifacts", f"uploading {wheel.name} to "
                                       f"s3://{inputs.bucket}/{key}"))
            upload_artifact(s3, inputs.bucket, key, wheel)
            if inputs.app_upload is not None:
                upload_artifact(s3, inputs.bucket, app_key(inputs.app_upload),
                                inputs.app_upload)
            wheelhouse = self.wheelhouse or shipped_wheelhouse()
            wheels = (dependency_wheels(wheelhouse, wheel) if wheelhouse
                      else self.fetch_wheels(wheel, Path(tmp) / "wheelhouse"))
            sent = upload_wheelhouse(s3, inputs.bucket, wheels)
            progress(ProvisionProgress("artifacts", f"{len(wheels)} dependency wheel(s) under "
                                       f"s3://{inputs.bucket}/artifacts/wheels/ "
                                       f"({len(sent)} new)"))
            upload_settings(s3, self.settings(inputs.bucket, inputs.topic_arn,
                                              inputs.app_source, key,
                                              tuple(w.name for w in wheels)))
            progress(ProvisionProgress("artifacts", "the instance's settings uploaded" + (
                " (the running instance applies them with `market-sync deploy-agent`)"
                if has_instance else "")))
            if req.app_database_password is not None:
                name = put_database_password(self.clients.ssm(), req.stack_name,
                                             req.app_database_password)
                progress(ProvisionProgress("artifacts", f"the app database's password is in "
                                           f"SSM {name} (SecureString)"))
            if req.app_source_token is not None:
                name = put_app_source_token(self.clients.ssm(), req.stack_name,
                                            req.app_source_token)
                progress(ProvisionProgress("artifacts", f"the app's deploy token is in SSM "
                                           f"{name} (SecureString)"))

        full, parameters = self._full(inputs, key)
        progress(ProvisionProgress("plan", "the instance, its schedules and alarms"))
        second = self._apply(full, parameters, progress, confirm)
        changed |= second is not None
        all_changes += second or []

        outputs = self.outputs()
        operator_user = outputs.get("OperatorUserName")
        if not operator_user:
            raise ProvisionError("the stack has no operator user for this laptop",
                                 "run `market-sync provision` again")
        assert self.secrets is not None
        self._report(progress, operator_key(self.clients, self.secrets, operator_user))
        self._report(progress, put_budget(self.clients, req, inputs.account.account_id))
        if req.distro == "al2023":  # Debian/Ubuntu: unattended-upgrades needs no pin
            from installer.images import current_image

            newest = current_image(self.clients.ssm(), self.clients.ec2(), "al2023", req.region)
            self._report(progress, pin_os_release(self.clients, req.stack_name, newest))
        bucket = outputs.get("BucketName", inputs.bucket)
        config = write_laptop_config(
            self.config_path,
            LaptopAws(region=req.region, bucket=bucket, instance_id=outputs.get("InstanceId"),
                      stack=req.stack_name, endpoint_url=self.clients.config.endpoint_url),
            req.database_conninfo)
        progress(ProvisionProgress("config", f"wrote {config}"))
        result = ProvisionResult(
            stack_name=req.stack_name, region=req.region, bucket=bucket,
            instance_id=outputs.get("InstanceId"),
            topic_arn=outputs.get("AlertTopicArn", inputs.topic_arn), config_path=config,
            changed=changed, operator_user=operator_user, operator_key_stored=True,
            changes=tuple(all_changes))
        progress(ProvisionProgress("done", "the stack is ready" if changed
                                   else "the stack is up to date: nothing changed"))
        return result

    def _apply(self, template: tpl.Template, parameters: dict[str, str], progress: Progress,
               confirm: Confirm) -> list[ResourceChange] | None:
        body = tpl.template_body(template)
        if len(body.encode()) > tpl.TEMPLATE_BODY_LIMIT:
            raise ProvisionError(f"the template is {len(body.encode())} bytes, over "
                                 "CloudFormation's inline limit", "shorten [[tables]]")
        wanted = {k: v for k, v in parameters.items() if k in template["Parameters"]}

        def on_event(event: StackEvent) -> None:
            progress(ProvisionProgress("event", event.describe(), event=event))

        plan = self.deployer.plan(body, wanted, on_event)
        if plan.empty:
            progress(ProvisionProgress("changes", "no changes"))
            return None
        progress(ProvisionProgress("changes", f"{len(plan.changes)} change(s)",
                                   changes=plan.changes))
        if not confirm(plan):
            self.deployer.discard(plan)
            from shared.errors import Cancelled

            raise Cancelled("nothing was changed: you declined the changes")
        progress(ProvisionProgress("apply", "creating the stack" if plan.creating
                                   else "updating the stack"))
        self.deployer.execute(plan, on_event)
        return list(plan.changes)

    @staticmethod
    def _report(progress: Progress, step: Step) -> None:
        progress(ProvisionProgress(step.phase, step.message))

    def outputs(self) -> dict[str, str]:
        return self.outputs_of(self.clients, self.request.stack_name)

    @staticmethod
    def outputs_of(clients: AwsClients, stack_name: str) -> dict[str, str]:
        """The stack's outputs; where an output is missing, the resource's physical id."""
        deployer = StackDeployer(clients.cloudformation(), stack_name)
        state = deployer.state()
        if state is None:
            raise ProvisionError(f"the stack {stack_name} does not exist",
                                 "run `market-sync provision` first")
        outputs = dict(state.outputs)
        ids = deployer.physical_ids()
        for output, logical in (("BucketName", "DataBucket"), ("InstanceId", "Instance"),
                                ("AlertTopicArn", "AlertTopic"),
                                ("OperatorPolicyArn", "OperatorPolicy"),
                                ("OperatorUserName", "OperatorUser")):
            if output not in outputs and logical in ids:
                outputs[output] = ids[logical]
        return outputs


def bucket_name(stack: str, account_id: str, region: str) -> str:
    """Globally unique and stable for re-runs: stack, account and region."""
    return f"{stack.lower()}-{account_id}-{region}"[:63].rstrip("-")


def default_wheel_key() -> str:
    """The key of this version's wheel, as ``pip wheel`` names it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        current = version("market-sync")
    except PackageNotFoundError:
        current = "0.0.0"
    return f"artifacts/market_sync-{current}-py3-none-any.whl"


def app_key(local: Path) -> str:
    return "artifacts/app.tar.gz" if local.name.endswith(".tar.gz") else "artifacts/app.tgz"
