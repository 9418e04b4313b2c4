"""Every IAM policy the stack makes, in one place, least privilege.

Each document is plain data whose strings may hold CloudFormation ``${…}``
references (``${AWS::AccountId}``, ``${BucketName}``, …). The template wraps
every such string in ``Fn::Sub``; :func:`concrete` fills them with real values,
which is what ``parliament`` and the golden tests read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Document = dict[str, Any]

STACK_TAG = "market-sync:stack"  # on the instance: which stack it belongs to
KEEP_RUNNING_TAG = "market-sync:keep-running-until"  # the tray's override (ec2/guard.py)
METRIC_NAMESPACE = "MarketSync"

_BUCKET = "arn:${AWS::Partition}:s3:::${BucketName}"
_INSTANCES = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"
_THIS_STACKS_INSTANCE = {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": "${AWS::StackName}"}}


def _doc(*statements: Document) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def instance_policy() -> Document:
    """The instance role: write dumps, read what it needs to continue, never delete."""
    return _doc(
        {"Sid": "WriteDumps", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
         "Resource": f"{_BUCKET}/dumps/*"},
        {"Sid": "ListDumps", "Effect": "Allow", "Action": "s3:ListBucket",
         "Resource": _BUCKET,
         "Condition": {"StringLike": {"s3:prefix": ["dumps/", "dumps/*"]}}},
        {"Sid": "ReadManifests", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"{_BUCKET}/dumps/*/manifest.json"},
        {"Sid": "ReadArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"{_BUCKET}/artifacts/*"},
        {"Sid": "NotifyTrader", "Effect": "Allow", "Action": "sns:Publish",
         "Resource": "${AlertTopic}"},
        {"Sid": "BackupMetric", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
         "Resource": "*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}},
        {"Sid": "ReadOwnTags", "Effect": "Allow", "Action": "ec2:DescribeTags",
         "Resource": "*"},
        {"Sid": "SignalSetup", "Effect": "Allow", "Action": "cloudformation:SignalResource",
         "Resource": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}"
                     ":stack/${AWS::StackName}/*"},
        {"Sid": "LogRetention", "Effect": "Allow", "Action": "logs:PutRetentionPolicy",
         "Resource": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
                     ":log-group:/market-sync/*"},
    )


# AWS's own managed policies the instance role also carries (not ours to lint):
INSTANCE_MANAGED_POLICIES = (
    "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
    "arn:${AWS::Partition}:iam::aws:policy/CloudWatchAgentServerPolicy",
)


def scheduler_policy() -> Document:
    """EventBridge Scheduler's role: start and stop this stack's instance, nothing else."""
    return _doc(
        {"Sid": "StartStopTheInstance", "Effect": "Allow",
         "Action": ["ec2:StartInstances", "ec2:StopInstances"],
         "Resource": _INSTANCES, "Condition": _THIS_STACKS_INSTANCE},
    )


def operator_policy() -> Document:
    """The laptop: see the instance, start/stop it, set its override tag, fetch dumps."""
    return _doc(
        {"Sid": "SeeInstances", "Effect": "Allow",
         "Action": ["ec2:DescribeInstances", "ec2:DescribeInstanceStatus"],
         "Resource": "*"},
        {"Sid": "StartStopTheInstance", "Effect": "Allow",
         "Action": ["ec2:StartInstances", "ec2:StopInstances"],
         "Resource": _INSTANCES, "Condition": _THIS_STACKS_INSTANCE},
        {"Sid": "KeepRunningOverride", "Effect": "Allow",
         "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
         "Resource": _INSTANCES,
         "Condition": {
             "StringEquals": {f"aws:ResourceTag/{STACK_TAG}": "${AWS::StackName}"},
             "ForAllValues:StringEquals": {"aws:TagKeys": [KEEP_RUNNING_TAG]},
         }},
        {"Sid": "ListDumps", "Effect": "Allow", "Action": "s3:ListBucket",
         "Resource": _BUCKET,
         "Condition": {"StringLike": {"s3:prefix": ["dumps/", "dumps/*"]}}},
        {"Sid": "ReadDumps", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"{_BUCKET}/dumps/*"},
    )


def service_trust(service: str, *, same_account: bool = True) -> Document:
    """Who may assume a role: one AWS service, on behalf of this account only."""
    statement: Document = {"Effect": "Allow", "Principal": {"Service": service},
                           "Action": "sts:AssumeRole"}
    if same_account:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": "${AWS::AccountId}"}}
    return _doc(statement)


def bucket_policy() -> Document:
    """Deny every request to the bucket that does not use TLS."""
    return _doc(
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
         "Action": "s3:*", "Resource": [_BUCKET, f"{_BUCKET}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    )


IDENTITY_POLICIES = {
    "instance": instance_policy,
    "scheduler": scheduler_policy,
    "operator": operator_policy,
}

_REF = re.compile(r"\$\{([A-Za-z0-9:]+)\}")


def with_sub(value: Any) -> Any:
    """The document for the template: every string with a ``${…}`` becomes ``Fn::Sub``."""
    if isinstance(value, dict):
        return {k: with_sub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_sub(v) for v in value]
    if isinstance(value, str) and _REF.search(value):
        return {"Fn::Sub": value}
    return value


EXAMPLE_VALUES: Mapping[str, str] = {
    "AWS::Partition": "aws",
    "AWS::Region": "ap-south-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "market-sync",
    "BucketName": "market-sync-123456789012-ap-south-1",
    "AlertTopic": "arn:aws:sns:ap-south-1:123456789012:market-sync-alerts",
}


def concrete(value: Any, values: Mapping[str, str] = EXAMPLE_VALUES) -> Any:
    """The document with every ``${…}`` filled in (for parliament and the golden tests)."""
    if isinstance(value, dict):
        return {concrete(k, values): concrete(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [concrete(v, values) for v in value]
    if isinstance(value, str):
        return _REF.sub(lambda m: values[m.group(1)], value)
    return value
