"""``teardown``: delete the stack; keep the bucket and its dumps unless the trader says so.

The bucket has ``DeletionPolicy: Retain``, so deleting the stack leaves it and
every dump in it. Only :meth:`Teardown.delete_data`, after the trader's
explicit confirmation, empties it (every version and delete marker) and
deletes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from installer.stack import StackDeployer, StackEvent
from shared.aws import AwsClients, aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

    from shared.secrets import SecretStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeardownResult:
    stack_deleted: bool
    bucket: str | None
    bucket_deleted: bool
    objects_deleted: int = 0


class Teardown:
    def __init__(self, clients: AwsClients, stack_name: str, *,
                 secrets: SecretStore | None = None, poll_seconds: float = 5.0) -> None:
        self.clients = clients
        self.stack_name = stack_name
        self.secrets = secrets
        self.deployer = StackDeployer(clients.cloudformation(), stack_name,
                                      poll_seconds=poll_seconds)

    def bucket(self) -> str | None:
        state = self.deployer.state()
        if state is None:
            return None
        return state.outputs.get("BucketName") or state.parameters.get("BucketName")

    def run(self, *, delete_data: bool, bucket: str | None = None,
            on_event: Callable[[StackEvent], None] = lambda _: None) -> TeardownResult:
        """Delete the stack (if any); with ``delete_data`` also the bucket ``bucket``."""
        state = self.deployer.state()
        bucket = bucket or self.bucket()
        if state is not None:
            user = self.deployer.physical_ids().get("OperatorUser")
            if user:
                self._delete_access_keys(user)
            self.deployer.delete(on_event)
            self._delete_budget()
        deleted = 0
        if delete_data and bucket:
            deleted = empty_and_delete_bucket(self.clients, bucket)
        return TeardownResult(state is not None, bucket, bool(delete_data and bucket), deleted)

    def _delete_budget(self) -> None:
        from installer.budget import BudgetPlan, Budgets

        try:
            account = self.clients.sts().get_caller_identity()["Account"]
        except Exception as exc:
            raise aws_error(exc, "find out which AWS account this is") from None
        name = BudgetPlan.for_stack(self.stack_name, 0, "").name
        if Budgets(self.clients.budgets(), account).delete(name):
            logger.info("deleted the budget %s", name)

    def _delete_access_keys(self, user: str) -> None:
        """CloudFormation cannot delete a user that still has access keys."""
        from botocore.exceptions import BotoCoreError, ClientError

        iam = self.clients.iam()
        try:
            keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
            for key in keys:
                iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, f"delete the access keys of {user}") from None
        if self.secrets is not None:
            stored = self.secrets.aws_keys()
            if stored and any(k["AccessKeyId"] == stored.access_key_id for k in keys):
                self.secrets.delete_aws_keys()
                logger.info("removed the deleted key of %s from the keyring", user)


def empty_and_delete_bucket(clients: AwsClients, bucket: str) -> int:
    """Delete every object version and delete marker, then the bucket. Returns the count."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = clients.s3()
    count = 0
    try:
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]
            for start in range(0, len(batch), 1000):
                chunk = batch[start:start + 1000]
                response = s3.delete_objects(Bucket=bucket,
                                             Delete={"Objects": chunk, "Quiet": True})
                errors = response.get("Errors", [])
                if errors:
                    first = errors[0]
                    from installer.stack import ProvisionError

                    raise ProvisionError(
                        f"S3 refused to delete {first.get('Key')}: {first.get('Message')}",
                        "delete the bucket in the S3 console")
                count += len(chunk)
        s3.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return count
        raise aws_error(exc, f"delete the bucket {bucket}") from None
    except BotoCoreError as exc:
        raise aws_error(exc, f"delete the bucket {bucket}") from None
    logger.info("deleted the bucket %s and %d object versions", bucket, count)
    return count
