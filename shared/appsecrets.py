"""The trader's app secrets in SSM Parameter Store: written from the laptop, never read there.

Every entry of the market app's ``.env`` (``KITE_API_KEY``, ``KITE_API_SECRET``,
``KITE_ACCESS_TOKEN``…) is one ``SecureString`` parameter, encrypted with the
AWS-managed key ``alias/aws/ssm``, at ``/market-sync/<stack>/app-env/<VAR>``; the
instance renders them into the app's ``.env`` (root, 0600) before the app starts.
The laptop's operator policy may put and delete exactly these parameters and list
their names; it cannot read any value, and this module never asks for one.

The names of the stack's SSM path are the shared contract of the team brief; this
module is their one home (the policies, the installer and the instance use them).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from shared.aws import aws_error, error_code
from shared.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

    from shared.config import AwsConfig

logger = logging.getLogger(__name__)

ACCESS_TOKEN = "KITE_ACCESS_TOKEN"  # KiteConnect's token: expires every day
SSM_KEY = "alias/aws/ssm"  # the AWS-managed key: no key policy to keep, no monthly fee
_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
VALUE_LIMIT = 4096  # a Standard parameter's limit


def ssm_path(stack_name: str = "${AWS::StackName}") -> str:
    """``/market-sync/<stack>``: every parameter of one stack lives under it (the default
    is the CloudFormation reference the policies are written with)."""
    return f"/market-sync/{stack_name}"


def app_env_path(stack_name: str = "${AWS::StackName}") -> str:
    """The trader's app ``.env``, one SecureString parameter per variable."""
    return f"{ssm_path(stack_name)}/app-env"


def app_source_token_parameter(stack_name: str) -> str:
    """A private git source's deploy token (never in a URL, tag, user-data or log)."""
    return f"{ssm_path(stack_name)}/app-source-token"


def database_password_parameter(stack_name: str) -> str:
    """The app database's password for the backup agent."""
    return f"{ssm_path(stack_name)}/agent/database-password"


def os_release_parameter(stack_name: str) -> str:
    """The AL2023 release the instance's security updates go up to (ec2/osupdates.py)."""
    return f"{ssm_path(stack_name)}/os-releasever"


def check_name(name: str) -> str:
    """An environment variable's name, as the app's ``.env`` has them."""
    if not _NAME.match(name):
        raise UsageError(f"{name!r} is not a variable name for the app's .env",
                         "capital letters, digits and underscores, e.g. KITE_API_SECRET")
    return name


def check_value(name: str, value: str) -> str:
    if not value:
        raise UsageError(f"{name} needs a value", "paste it again")
    if "\n" in value or "\r" in value or "\0" in value:
        raise UsageError(f"the value of {name} has a line break",
                         "a .env value is one line; paste it without the line break")
    if len(value.encode()) > VALUE_LIMIT:
        raise UsageError(f"the value of {name} is longer than {VALUE_LIMIT} bytes")
    return value


def stack_of(aws: AwsConfig) -> str:
    if not aws.stack:
        raise ConfigError("the config does not name the stack ([aws] stack)",
                          "run `market-sync provision` once more: it writes it")
    return aws.stack


class AppSecrets:
    """Names, put and delete of the app's secrets for one stack; values are write-only."""

    def __init__(self, ssm: SSMClient, stack: str) -> None:
        self.ssm = ssm
        self.path = app_env_path(stack)

    def names(self) -> list[str]:
        """The variables stored, sorted (``DescribeParameters``: metadata, never a value)."""
        found: list[str] = []
        try:
            pages = self.ssm.get_paginator("describe_parameters").paginate(
                ParameterFilters=[{"Key": "Path", "Option": "OneLevel",
                                   "Values": [self.path]}])
            for page in pages:
                found += [p["Name"].rsplit("/", 1)[-1] for p in page.get("Parameters", [])
                          if "Name" in p]
        except Exception as exc:
            raise aws_error(exc, f"list the app's secrets under {self.path}") from None
        return sorted(found)

    def put(self, name: str, value: str) -> None:
        """Store (or replace) one variable as a SecureString."""
        check_name(name)
        check_value(name, value)
        try:
            self.ssm.put_parameter(Name=f"{self.path}/{name}", Value=value,
                                   Type="SecureString", KeyId=SSM_KEY, Overwrite=True,
                                   Description="market-sync: one entry of the app's .env")
        except Exception as exc:
            raise aws_error(exc, f"store {name} under {self.path}") from None
        logger.info("stored %s under %s", name, self.path)  # the name, never the value

    def delete(self, name: str) -> None:
        check_name(name)
        try:
            self.ssm.delete_parameter(Name=f"{self.path}/{name}")
        except Exception as exc:
            if error_code(exc) == "ParameterNotFound":
                return
            raise aws_error(exc, f"delete {name} under {self.path}") from None
        logger.info("deleted %s under %s", name, self.path)
