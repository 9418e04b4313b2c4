"""What ``provision`` and ``deploy-agent`` put where the instance finds it.

S3 ``artifacts/``: the agent wheel, its dependencies as wheels (the instance
installs from them with ``pip --no-index``: no PyPI), the settings bundle and
the settings record. SSM: the app database's password (SecureString). The
user-data never changes with any of them.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ec2.instance import layout
from ec2.instance.settings import (
    InstanceSettings,
    app_source_token_parameter,
    database_password_parameter,
    settings_from_json,
    settings_to_json,
)
from installer.agent import DeployError, put_bytes, upload_artifact
from shared.aws import aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)

# The instance: x86_64 (t3.*) Linux with Python 3.11 on every supported distro.
INSTANCE_PLATFORM = ("--platform", "manylinux2014_x86_64", "--python-version", "3.11",
                     "--implementation", "cp", "--only-binary=:all:")


def build_wheelhouse(wheel: Path, out_dir: Path, python: str = sys.executable) -> list[Path]:
    """The agent's dependencies as wheels for the instance (``pip download`` here, on the
    laptop, which has the internet; the instance does not need it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [python, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
               *INSTANCE_PLATFORM, "--dest", str(out_dir), str(wheel)]
    logger.info("fetching the agent's dependencies: %s", shlex.join(command))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeployError(f"could not run pip to fetch the agent's dependencies: {exc}") \
            from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise DeployError(f"pip could not fetch the agent's dependencies:\n{tail}",
                          "pip needs the internet here once; or pass --wheelhouse DIR")
    return dependency_wheels(out_dir, wheel)


def dependency_wheels(folder: Path, agent_wheel: Path) -> list[Path]:
    """The wheels in ``folder`` except the agent's own."""
    return sorted(p for p in folder.glob("*.whl") if p.name != agent_wheel.name)


def upload_wheelhouse(s3: S3Client, bucket: str, wheels: list[Path]) -> list[str]:
    """Each wheel under ``artifacts/wheels/``; one already there (same name, same size) is
    not sent again. Returns the keys uploaded."""
    from botocore.exceptions import BotoCoreError, ClientError

    sent = []
    for wheel in wheels:
        key = layout.WHEELHOUSE_PREFIX + wheel.name
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
            if head.get("ContentLength") == wheel.stat().st_size:
                continue
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey",
                                                                  "NotFound"):
                raise aws_error(exc, f"look at s3://{bucket}/{key}") from None
        except BotoCoreError as exc:
            raise aws_error(exc, f"look at s3://{bucket}/{key}") from None
        upload_artifact(s3, bucket, key, wheel)
        sent.append(key)
    return sent


def upload_settings(s3: S3Client, settings: InstanceSettings) -> None:
    """The settings bundle the bootstrap unpacks, and the record ``deploy-agent`` reads."""
    from ec2.instance.userdata import render_bundle

    put_bytes(s3, settings.bucket, layout.SETTINGS_KEY, render_bundle(settings))
    record = json.dumps(settings_to_json(settings), indent=1, sort_keys=True).encode()
    put_bytes(s3, settings.bucket, layout.SETTINGS_JSON_KEY, record)


def read_settings(s3: S3Client, bucket: str) -> InstanceSettings | None:
    """The settings ``provision`` last uploaded; None before the first."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=layout.SETTINGS_JSON_KEY)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise aws_error(exc, f"read s3://{bucket}/{layout.SETTINGS_JSON_KEY}") from None
    except BotoCoreError as exc:
        raise aws_error(exc, f"read s3://{bucket}/{layout.SETTINGS_JSON_KEY}") from None
    return settings_from_json(json.loads(body))


@dataclass(frozen=True)
class SecretText:
    """A secret read once from a file the trader named (a password, a deploy token)."""

    value: str

    def __repr__(self) -> str:  # never in a log or a traceback
        return "SecretText(***)"

    @classmethod
    def from_file(cls, path: Path, what: str = "password") -> SecretText:
        from shared.errors import UsageError

        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the {what} file {path}: "
                             f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
        value = text.rstrip("\r\n")
        if not value or "\n" in value:
            raise UsageError(f"the {what} file {path} must hold one non-empty line")
        return cls(value)


def put_secret(ssm: SSMClient, name: str, secret: SecretText, description: str) -> str:
    """SSM SecureString (AWS-managed key); returns the parameter's name."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        ssm.put_parameter(Name=name, Value=secret.value, Type="SecureString",
                          KeyId="alias/aws/ssm", Overwrite=True, Description=description)
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, f"store {description} in {name}") from None
    return name


def put_database_password(ssm: SSMClient, stack_name: str, password: SecretText) -> str:
    return put_secret(ssm, database_password_parameter(stack_name), password,
                      "the app database's password for the backup agent")


def put_app_source_token(ssm: SSMClient, stack_name: str, token: SecretText) -> str:
    return put_secret(ssm, app_source_token_parameter(stack_name), token,
                      "the deploy token of the app's git repository")
