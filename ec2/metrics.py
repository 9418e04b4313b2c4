"""The "backup succeeded" metric a CloudWatch alarm watches.

``MarketSync/BackupSucceeded`` with dimension ``InstanceId``: 1 after each
successful backup, 0 after a failed one (published by ``notify``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

logger = logging.getLogger(__name__)

BACKUP_METRIC = "BackupSucceeded"


def put_backup_result(cloudwatch: CloudWatchClient, namespace: str, instance_id: str,
                      succeeded: bool, at: dt.datetime) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from shared.aws import aws_error

    try:
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[{
                "MetricName": BACKUP_METRIC,
                "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                "Timestamp": at,
                "Value": 1.0 if succeeded else 0.0,
                "Unit": "Count",
            }],
        )
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(exc, f"publish {namespace}/{BACKUP_METRIC}") from None
    logger.info("%s/%s=%d for %s", namespace, BACKUP_METRIC, int(succeeded), instance_id)
