"""Every IAM policy the stack makes, in one place, least privilege.

Each document is plain data whose strings may hold CloudFormation ``${…}``
references (``${AWS::AccountId}``, ``${BucketName}``, …). The template wraps
every such string in ``Fn::Sub``; :func:`concrete` fills them with real values,
which is what ``parliament``, the golden tests and :mod:`installer.iameval` read.

Every S3 statement is scoped to the config's ``prefix`` (``""`` or ``"prod/"``):
``<prefix>dumps/`` is the only place dumps live. SSM is scoped to the stack's own
path ``/market-sync/<stack>/`` (docs/design-notes.md, "Who holds which power").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.appsecrets import app_env_path, ssm_path

Document = dict[str, Any]

STACK_TAG = "market-sync:stack"  # on the instance: which stack it belongs to
KEEP_RUNNING_TAG = "market-sync:keep-running-until"  # the tray's override (ec2/guard.py)
METRIC_NAMESPACE = "MarketSync"
LOG_GROUPS = "/market-sync/*"  # ec2/instance/configs.py: /market-sync/instance, …/app

_BUCKET = "arn:${AWS::Partition}:s3:::${BucketName}"
_INSTANCES = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"
_PARAMETERS = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
_THIS_STACKS_INSTANCE = {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": "${AWS::StackName}"}}
_LOGS = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:" + LOG_GROUPS


def dumps_prefix(prefix: str = "") -> str:
    """The S3 key prefix of the dumps under the config's ``prefix``."""
    return f"{prefix}dumps/"


def _doc(*statements: Document) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _list_dumps(prefix: str) -> Document:
    dumps = dumps_prefix(prefix)
    return {"Sid": "ListDumps", "Effect": "Allow", "Action": "s3:ListBucket",
            "Resource": _BUCKET,
            "Condition": {"StringLike": {"s3:prefix": [dumps, f"{dumps}*"]}}}


def instance_policy(prefix: str = "") -> Document:
    """The instance role: write new dumps, read what it needs, never delete or overwrite.

    Replaces AmazonSSMManagedInstanceCore (which reads every parameter in the region)
    and CloudWatchAgentServerPolicy (metrics in any namespace, ec2:DescribeTags on *).
    """
    dumps = f"{_BUCKET}/{dumps_prefix(prefix)}*"
    return _doc(
        {"Sid": "WriteDumps", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:AbortMultipartUpload"], "Resource": dumps},
        _list_dumps(prefix),
        # manifests, and the checksum of its own upload when a retry meets 412
        {"Sid": "ReadDumps", "Effect": "Allow", "Action": "s3:GetObject", "Resource": dumps},
        {"Sid": "ReadArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"{_BUCKET}/artifacts/*"},
        {"Sid": "ReadStackParameters", "Effect": "Allow",
         "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
         "Resource": f"{_PARAMETERS}{ssm_path()}/*"},
        {"Sid": "NotifyTrader", "Effect": "Allow", "Action": "sns:Publish",
         "Resource": "${AlertTopic}"},
        {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
         "Resource": "*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}}},
        {"Sid": "Logs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:CreateLogStream",
                    "logs:DescribeLogStreams", "logs:PutLogEvents"],
         "Resource": [_LOGS, f"{_LOGS}:log-stream:*"]},
        # Session Manager and Run Command (deploy-agent): AWS's documented minimum for the
        # agent (AWSCloud9SSMInstanceProfile + the ec2messages channel of Run Command).
        {"Sid": "SsmAgentRegistration", "Effect": "Allow",
         "Action": "ssm:UpdateInstanceInformation", "Resource": _INSTANCES},
        {"Sid": "SsmAgentChannels", "Effect": "Allow",
         "Action": ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
                    "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
                    "ec2messages:FailMessage", "ec2messages:GetEndpoint",
                    "ec2messages:GetMessages", "ec2messages:SendReply"],
         "Resource": "*"},
        {"Sid": "SignalSetup", "Effect": "Allow", "Action": "cloudformation:SignalResource",
         "Resource": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}"
                     ":stack/${AWS::StackName}/*"},
    )


def scheduler_policy() -> Document:
    """EventBridge Scheduler's role: start and stop this stack's instance, nothing else."""
    return _doc(
        {"Sid": "StartStopTheInstance", "Effect": "Allow",
         "Action": ["ec2:StartInstances", "ec2:StopInstances"],
         "Resource": _INSTANCES, "Condition": _THIS_STACKS_INSTANCE},
    )


def operator_policy(prefix: str = "") -> Document:
    """The laptop: see the instance, start/stop it, set its override tag, fetch dumps,
    write (never read) the app's secrets."""
    return _doc(
        {"Sid": "SeeInstances", "Effect": "Allow",
         "Action": ["ec2:DescribeInstances", "ec2:DescribeInstanceStatus"],
         "Resource": "*"},
        {"Sid": "StartStopTheInstance", "Effect": "Allow",
         "Action": ["ec2:StartInstances", "ec2:StopInstances"],
         "Resource": _INSTANCES, "Condition": _THIS_STACKS_INSTANCE},
        # CreateTags only (no DeleteTags: DeleteTags without Tags deletes every tag), and
        # only with tag keys present: ForAllValues alone is true for a request with none.
        {"Sid": "KeepRunningOverride", "Effect": "Allow", "Action": "ec2:CreateTags",
         "Resource": _INSTANCES,
         "Condition": {
             "StringEquals": {f"aws:ResourceTag/{STACK_TAG}": "${AWS::StackName}"},
             "ForAllValues:StringEquals": {"aws:TagKeys": [KEEP_RUNNING_TAG]},
             "Null": {"aws:TagKeys": "false"},
         }},
        _list_dumps(prefix),
        {"Sid": "ReadDumps", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"{_BUCKET}/{dumps_prefix(prefix)}*"},
        {"Sid": "WriteAppSecrets", "Effect": "Allow",
         "Action": ["ssm:PutParameter", "ssm:DeleteParameter"],
         "Resource": f"{_PARAMETERS}{app_env_path()}/*"},
        # names only (DescribeParameters has no resource-level permission, returns no values)
        {"Sid": "ListAppSecretNames", "Effect": "Allow", "Action": "ssm:DescribeParameters",
         "Resource": "*"},
    )


def service_trust(service: str, *, same_account: bool = True) -> Document:
    """Who may assume a role: one AWS service, on behalf of this account only."""
    statement: Document = {"Effect": "Allow", "Principal": {"Service": service},
                           "Action": "sts:AssumeRole"}
    if same_account:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": "${AWS::AccountId}"}}
    return _doc(statement)


def bucket_policy(prefix: str = "") -> Document:
    """TLS only; dumps are write-once (conditional writes); no SSE-C uploads."""
    dumps = f"{_BUCKET}/{dumps_prefix(prefix)}*"
    return _doc(
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
         "Action": "s3:*", "Resource": [_BUCKET, f"{_BUCKET}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        # PutObject, CompleteMultipartUpload and CopyObject must carry If-None-Match: an
        # existing dump or manifest can never be replaced. CreateMultipartUpload and
        # UploadPart (ObjectCreationOperation false) take no conditional header.
        {"Sid": "DumpsAreWriteOnce", "Effect": "Deny", "Principal": "*",
         "Action": "s3:PutObject", "Resource": dumps,
         "Condition": {"Null": {"s3:if-none-match": "true"},
                       "Bool": {"s3:ObjectCreationOperation": "true"}}},
        {"Sid": "DenyCustomerProvidedKeys", "Effect": "Deny", "Principal": "*",
         "Action": "s3:PutObject", "Resource": f"{_BUCKET}/*",
         "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm":
                                "false"}}},
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
