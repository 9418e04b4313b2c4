"""What ``provision`` sets up beyond the stack, each with the administrator's clients of
that run: the laptop's operator key (straight into the OS keyring), the monthly budget,
and the OS update pin (SSM).

Each returns the :class:`Step` to report; none prints or logs a secret.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.aws import AwsClients, aws_error
from shared.errors import MarketSyncError

if TYPE_CHECKING:
    from installer.provision import ProvisionRequest
    from shared.secrets import SecretStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    phase: str
    message: str


def operator_key(clients: AwsClients, secrets: SecretStore, user: str) -> Step:
    """Make the laptop user's access key and put it straight into the keyring.

    A key of the user that is not in this keyring is lost to everyone (only this laptop
    ever held it): it is deleted, which also keeps IAM's two-key limit.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from shared.secrets import AwsKeys

    existing = secrets.aws_keys()
    iam = clients.iam()
    try:
        listed = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        if existing and any(k["AccessKeyId"] == existing.access_key_id for k in listed):
            return Step("keyring", f"the key of {user} is already in the keyring")
        for stale in listed:
            iam.delete_access_key(UserName=user, AccessKeyId=stale["AccessKeyId"])
        created = iam.create_access_key(UserName=user)["AccessKey"]
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, f"make an access key for {user}") from None
    secrets.set_aws_keys(AwsKeys(created["AccessKeyId"], created["SecretAccessKey"]))
    return Step("keyring", f"made an access key for {user} and stored it in the OS keyring")


def put_budget(clients: AwsClients, request: ProvisionRequest, account_id: str) -> Step:
    """The monthly budget: the estimate plus a margin, mailing the trader."""
    from installer.budget import BudgetPlan, Budgets
    from installer.cost import UsageAssumptions, calendar_year, estimate
    from shared.calendar import TradingCalendar, today_ist

    calendar = TradingCalendar.load()
    expected = estimate(request.instance_type, calendar, calendar_year(calendar, today_ist()),
                        UsageAssumptions(retention_days=request.retention_days))
    plan = BudgetPlan.for_stack(request.stack_name, expected.total_usd, request.alert_email)
    done = Budgets(clients.budgets(), account_id).put(plan)
    return Step("budget", f"budget {plan.name}: USD {plan.limit_usd} a month (the estimate "
                f"plus a margin), alerts to {request.alert_email} ({done})")


def pin_os_release(clients: AwsClients, stack: str, image: str) -> Step:
    """Pin the instance's OS security updates to the AL2023 release of ``image`` (the
    newest image): each run of provision moves the pin forward (ec2/osupdates.py)."""
    from ec2.osupdates import release_of_image
    from shared.appsecrets import SSM_KEY, os_release_parameter

    name = os_release_parameter(stack)
    try:
        described = clients.ec2().describe_images(ImageIds=[image])["Images"]
        release = release_of_image(described[0].get("Name", "")) if described else None
        if release is None:
            return Step("os", f"the image {image} names no AL2023 release: the OS update pin "
                        "stays as it was")
        clients.ssm().put_parameter(
            Name=name, Value=release, Type="SecureString", KeyId=SSM_KEY, Overwrite=True,
            Description="market-sync: AL2023 release the OS security updates go up to")
    except MarketSyncError:
        raise
    except Exception as exc:
        raise aws_error(exc, f"pin the OS updates at {name}") from None
    return Step("os", f"OS security updates pinned to Amazon Linux {release} ({name})")
