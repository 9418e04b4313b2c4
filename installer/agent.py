"""``deploy-agent``: build the agent wheel, put it under ``artifacts/``, update the instance.

The instance is updated through SSM Run Command (no SSH): the new settings
bundle (units, ``agent.toml``, ``setup.env``, the setup script, rendered by
``ec2/``) goes to S3 and the instance's bootstrap fetches it and runs
``market-sync-setup`` again; it is idempotent. The user-data is not touched.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import logging
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ec2.instance import layout
from ec2.instance.settings import InstanceSettings
from shared.aws import aws_error
from shared.errors import MarketHoursError, MarketSyncError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)

ARTIFACTS = "artifacts/"
_WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.]+-[A-Za-z0-9_.+!]+-[a-z0-9_.]+-[a-z0-9_.]+-[a-z0-9_.]+"
                         r"\.whl$")
_DONE = ("Success", "Failed", "Cancelled", "TimedOut", "Cancelling")


class DeployError(MarketSyncError):
    """The agent could not be built, uploaded or installed on the instance."""


def source_root() -> Path:
    """The market-sync source tree this installer runs from (where pyproject.toml is)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise DeployError("the market-sync sources are not next to this installation",
                          "run deploy-agent from a checkout of market-sync, or pass --wheel")
    return root


def build_wheel(source: Path, out_dir: Path, python: str = sys.executable) -> Path:
    """``pip wheel --no-deps`` of ``source`` into ``out_dir``; the wheel it made."""
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    command = [python, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
               "--quiet", "--wheel-dir", str(out_dir), str(source)]
    logger.info("building the agent wheel: %s", shlex.join(command))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeployError(f"could not run pip to build the agent wheel: {exc}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise DeployError(f"pip could not build a wheel of {source}:\n{tail}",
                          "fix the error above (pip needs the internet to fetch setuptools)")
    made = sorted(set(out_dir.glob("*.whl")) - before) or sorted(out_dir.glob("*.whl"))
    if len(made) != 1:
        raise DeployError(f"pip made {len(made)} wheels in {out_dir}, expected one")
    return made[0]


def wheel_key(wheel: Path) -> str:
    if not _WHEEL_NAME.match(wheel.name):
        raise DeployError(f"{wheel.name} is not a wheel file name")
    return ARTIFACTS + wheel.name


def put_bytes(s3: S3Client, bucket: str, key: str, data: bytes) -> None:
    """Upload with S3's SHA-256 checksum, so a damaged transfer is refused by S3."""
    from botocore.exceptions import BotoCoreError, ClientError

    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256",
                      ChecksumSHA256=digest)
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, f"upload s3://{bucket}/{key}") from None


def upload_artifact(s3: S3Client, bucket: str, key: str, path: Path) -> None:
    put_bytes(s3, bucket, key, path.read_bytes())
    logger.info("uploaded %s to s3://%s/%s", path.name, bucket, key)


def update_commands() -> list[str]:
    """What SSM runs: the bootstrap fetches the new settings bundle and runs setup."""
    return ["set -euo pipefail", f"{shlex.quote(layout.BOOTSTRAP_SCRIPT)} --update"]


def refuse_during_app_hours(at: dt.datetime | None = None) -> None:
    """An update may restart the app (new images, Docker's config): not while it collects."""
    from ec2.guard import in_app_hours, now
    from ec2.instance.schedule import SCHEDULE
    from shared.calendar import TradingCalendar

    moment = at or now()
    if in_app_hours(moment, TradingCalendar.load()):
        raise MarketHoursError(
            "the market app is collecting now "
            f"({SCHEDULE.app_start:%H:%M}–{SCHEDULE.app_stop:%H:%M} IST on a session day) and "
            "an update may restart it",
            f"run it after {SCHEDULE.app_stop:%H:%M} IST, or pass --force (or --upload-only)")


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    status: str
    output: str

    @property
    def ok(self) -> bool:
        return self.status == "Success"


class InstanceUpdater:
    """Send the update to the instance through SSM Run Command and wait for it."""

    def __init__(self, ssm: SSMClient, *, poll_seconds: float = 5.0,
                 timeout_seconds: float = 1800.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.ssm = ssm
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep

    def run(self, instance_id: str, commands: list[str]) -> CommandResult:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            sent = self.ssm.send_command(
                InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                Comment="market-sync deploy-agent",
                Parameters={"commands": commands,
                            "executionTimeout": [str(int(self.timeout_seconds))]},
                TimeoutSeconds=600,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidInstanceId":
                raise DeployError(
                    f"the instance {instance_id} is not reachable through SSM",
                    "it must be running with its SSM agent online; start it "
                    "(`market-sync start --wait`), wait a minute and try again") from None
            raise aws_error(exc, f"send the update to {instance_id}") from None
        except BotoCoreError as exc:
            raise aws_error(exc, f"send the update to {instance_id}") from None
        command_id = sent["Command"]["CommandId"]
        waited = 0.0
        while True:
            try:
                result = self.ssm.get_command_invocation(CommandId=command_id,
                                                         InstanceId=instance_id)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "InvocationDoesNotExist":
                    raise aws_error(exc, "follow the update on the instance") from None
                result = None
            except BotoCoreError as exc:
                raise aws_error(exc, "follow the update on the instance") from None
            if result is not None and result.get("Status") in _DONE:
                output = (result.get("StandardOutputContent", "") + "\n"
                          + result.get("StandardErrorContent", "")).strip()
                return CommandResult(command_id, result["Status"], output)
            if waited > self.timeout_seconds:
                raise DeployError(f"the update on {instance_id} did not finish in time",
                                  f"see Run Command {command_id} in the Systems Manager "
                                  "console")
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds


@dataclass(frozen=True)
class DeployResult:
    wheel_key: str
    command: CommandResult | None


def deploy_agent(s3: S3Client, updater: InstanceUpdater | None, bucket: str,
                 settings_for: Callable[[str], InstanceSettings], instance_id: str | None,
                 wheel: Path | None = None, source: Path | None = None,
                 wheelhouse: Path | None = None,
                 fetch_wheels: Callable[[Path, Path], list[Path]] | None = None) -> DeployResult:
    """Build (unless ``wheel`` is given; see :func:`installer.agentwheel.agent_wheel`),
    upload the wheel, its dependencies and the instance's settings, and — with an
    instance — apply them (the bootstrap, via SSM)."""
    from installer.agentwheel import agent_wheel, shipped_wheelhouse
    from installer.artifacts import (
        build_wheelhouse,
        dependency_wheels,
        upload_settings,
        upload_wheelhouse,
    )

    with tempfile.TemporaryDirectory(prefix="market-sync-wheel-") as tmp:
        built = wheel or (build_wheel(source, Path(tmp)) if source else agent_wheel(Path(tmp)))
        key = wheel_key(built)
        upload_artifact(s3, bucket, key, built)
        wheelhouse = wheelhouse or shipped_wheelhouse()
        wheels = (dependency_wheels(wheelhouse, built) if wheelhouse
                  else (fetch_wheels or build_wheelhouse)(built, Path(tmp) / "wheelhouse"))
        upload_wheelhouse(s3, bucket, wheels)
    upload_settings(s3, dataclasses.replace(settings_for(key),
                                            wheels=tuple(w.name for w in wheels)))
    if updater is None or instance_id is None:
        return DeployResult(key, None)
    result = updater.run(instance_id, update_commands())
    if not result.ok:
        tail = "\n".join(result.output.splitlines()[-15:])
        raise DeployError(f"the update on {instance_id} ended {result.status}:\n{tail}",
                          f"see Run Command {result.command_id} in the Systems Manager console")
    return DeployResult(key, result)
