"""The one CloudFormation template of the AWS side, built as data.

The template is JSON. Its only input that is not a Parameter is the instance's
user-data, rendered by ``ec2/`` with every value concrete (the installer names
the bucket and the SNS topic up front), so the text is embedded as it is.

Checks that do not apply are skipped *in the template* (``Metadata.checkov``),
each with its reason; ``docs/checkov-skips.md`` lists the same reasons.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ec2.instance.schedule import SCHEDULE, TIMEZONE
from installer import policies

Template = dict[str, Any]

INSTANCE_TYPES = ("t3.micro", "t3.small", "t3.medium", "t3.large")
DEFAULT_INSTANCE_TYPE = "t3.small"
ROOT_VOLUME_GB = 30
DEFAULT_RETENTION_DAYS = 365
NONCURRENT_VERSION_DAYS = 30
ABORT_MULTIPART_DAYS = 7
DISK_ALARM_PERCENT = 80
BACKUP_MISSING_DAYS = 4  # a long weekend plus a holiday is 3 days without a backup
ROOT_DEVICE = {"al2023": "/dev/xvda", "ubuntu2204": "/dev/sda1", "debian12": "/dev/xvda"}
SETUP_TIMEOUT = "PT45M"  # CreationPolicy: the first-boot setup signals within this (ISO 8601)
TEMPLATE_BODY_LIMIT = 51_200  # CloudFormation's limit on a template passed inline
NIGHTLY_STOP = dt.time(23, 30)  # IST: the second safety stop, every night

CHECKOV_SKIPS: dict[str, list[tuple[str, str]]] = {
    "DataBucket": [
        ("CKV_AWS_18", "Access logging needs a second bucket and costs money; the bucket "
                       "holds only dumps and artifacts, CloudTrail records its API calls, "
                       "and the instance role cannot delete."),
    ],
    "AlertTopic": [
        ("CKV_AWS_26", "CloudWatch alarms cannot publish to a topic encrypted with the "
                       "AWS-managed SNS key, and a customer-managed key costs USD 1/month; the "
                       "messages are alarm texts, not data."),
    ],
}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


INSTANCE_PARAMETERS = ("ImageId", "InstanceType", "SubnetId", "AppSource", "AgentWheelKey",
                       "Distro")
_INSTANCE_RESOURCES = ("Instance", "StartSchedule", "SafetyStopSchedule", "NightlyStopSchedule",
                       "StatusCheckAlarm", "DiskAlarm", "BackupMissingAlarm")


def _parameters() -> dict[str, Any]:
    return {
        "InstanceType": {
            "Type": "String", "Default": DEFAULT_INSTANCE_TYPE,
            "AllowedValues": list(INSTANCE_TYPES),
            "Description": "EC2 instance type of the collector",
        },
        "ImageId": {
            "Type": "AWS::EC2::Image::Id",
            "Description": "AMI of the instance, resolved once by the installer (an update "
                           "keeps it, so the instance is not replaced behind the trader's back)",
        },
        "TraderCidr": {
            "Type": "String",
            "AllowedPattern": r"^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)/32$",
            "ConstraintDescription": "one IPv4 address as a /32, e.g. 203.0.113.7/32",
            "Description": "The trader's public IPv4 address as a /32: the only source "
                           "allowed to reach the app port",
        },
        "AlertEmail": {
            "Type": "String",
            "AllowedPattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            "ConstraintDescription": "an e-mail address",
            "Description": "Where alarms and failure notices go (confirm the e-mail AWS sends)",
        },
        "DumpRetentionDays": {
            "Type": "Number", "Default": DEFAULT_RETENTION_DAYS, "MinValue": 1,
            "MaxValue": 3650,
            "Description": "Days a dump stays in S3 before it expires",
        },
        "AppSource": {
            "Type": "String",
            # no user:password@ (a private repository's token lives in SSM, never in the URL)
            "AllowedPattern": r"^(s3|https)://[^@\s]+$",
            "ConstraintDescription": "s3://… or https://… without credentials in it",
            "Description": "Where the market app comes from: s3://…/app.tar.gz or an https git "
                           "URL (a deploy token goes to SSM, never into this URL)",
        },
        "AgentWheelKey": {
            "Type": "String",
            "AllowedPattern": r"^artifacts/[A-Za-z0-9._+-]+\.whl$",
            "Description": "S3 key of the market-sync agent wheel under artifacts/",
        },
        "Distro": {
            "Type": "String", "Default": "al2023", "AllowedValues": list(ROOT_DEVICE),
            "Description": "The instance's Linux distribution (fixed for the stack's life)",
        },
        "BucketName": {
            "Type": "String",
            "AllowedPattern": r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
            "Description": "Name of the S3 bucket for the dumps and artifacts",
        },
        "TopicName": {
            "Type": "String",
            "AllowedPattern": r"^[A-Za-z0-9_-]{1,256}$",
            "Description": "Name of the SNS topic for alarms",
        },
        "VpcId": {
            "Type": "AWS::EC2::VPC::Id",
            "Description": "VPC of the instance (the installer picks the default VPC)",
        },
        "SubnetId": {
            "Type": "AWS::EC2::Subnet::Id",
            "Description": "Public subnet of the instance, in VpcId (a default subnet)",
        },
        "AppPort": {
            "Type": "Number", "Default": 8000, "MinValue": 1024, "MaxValue": 65535,
            "Description": "TCP port of the market app",
        },
    }


def _bucket(prefix: str) -> dict[str, Any]:
    return {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "BucketName": _ref("BucketName"),
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                 "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]}}]},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "BlockPublicPolicy": True,
                "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {"Rules": [
                {"Id": "ExpireOldDumps", "Status": "Enabled",
                 "Prefix": policies.dumps_prefix(prefix),
                 "ExpirationInDays": _ref("DumpRetentionDays")},
                {"Id": "ExpireNoncurrentVersions", "Status": "Enabled",
                 "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_VERSION_DAYS},
                 "AbortIncompleteMultipartUpload": {
                     "DaysAfterInitiation": ABORT_MULTIPART_DAYS}},
                {"Id": "RemoveExpiredDeleteMarkers", "Status": "Enabled",
                 "ExpiredObjectDeleteMarker": True},
            ]},
            "Tags": [{"Key": policies.STACK_TAG, "Value": _ref("AWS::StackName")}],
        },
    }


def _schedule(description: str, action: str, at: dt.time, days: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "Description": description,
            "ScheduleExpression": f"cron({at.minute} {at.hour} ? * {days} *)",
            "ScheduleExpressionTimezone": TIMEZONE,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": f"arn:aws:scheduler:::aws-sdk:ec2:{action}",
                "RoleArn": {"Fn::GetAtt": ["SchedulerRole", "Arn"]},
                "Input": _sub('{"InstanceIds": ["${Instance}"]}'),
                "RetryPolicy": {"MaximumRetryAttempts": 3,
                                "MaximumEventAgeInSeconds": 900},
            },
        },
    }


def _alarm(description: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "AlarmActions": [_ref("AlertTopic")],
            "OKActions": [_ref("AlertTopic")],
            **properties,
        },
    }


def _instance_dimension() -> list[dict[str, Any]]:
    return [{"Name": "InstanceId", "Value": _ref("Instance")}]


def _resources(user_data: str, distro: str, prefix: str) -> dict[str, Any]:
    start, stop = SCHEDULE.instance_start, SCHEDULE.safety_stop
    return {
        "DataBucket": _bucket(prefix),
        "DataBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": _ref("DataBucket"),
                           "PolicyDocument": policies.with_sub(policies.bucket_policy(prefix))},
        },
        "AlertTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": _ref("TopicName"),
                           "DisplayName": "market-sync alerts"},
        },
        "AlertSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {"TopicArn": _ref("AlertTopic"), "Protocol": "email",
                           "Endpoint": _ref("AlertEmail")},
        },
        "InstanceRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "market-sync instance: write new dumps, read its stack's "
                               "parameters, never delete or overwrite",
                "AssumeRolePolicyDocument": policies.service_trust(
                    "ec2.amazonaws.com", same_account=False),
                "Policies": [{"PolicyName": "market-sync-instance",
                              "PolicyDocument": policies.with_sub(
                                  policies.instance_policy(prefix))}],
            },
        },
        "InstanceProfile": {
            "Type": "AWS::IAM::InstanceProfile",
            "Properties": {"Roles": [_ref("InstanceRole")]},
        },
        "AppSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "market-sync: the app port from the trader address only, "
                                    "no SSH",
                "VpcId": _ref("VpcId"),
                "SecurityGroupIngress": [{
                    "IpProtocol": "tcp", "FromPort": _ref("AppPort"), "ToPort": _ref("AppPort"),
                    "CidrIp": _ref("TraderCidr"),
                    "Description": "market app from the trader's laptop"}],
                "SecurityGroupEgress": [
                    {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                     "CidrIp": "0.0.0.0/0", "Description": "HTTPS: AWS APIs, images, packages"},
                    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                     "CidrIp": "0.0.0.0/0", "Description": "HTTP: distribution package mirrors"},
                ],
                "Tags": [{"Key": policies.STACK_TAG, "Value": _ref("AWS::StackName")}],
            },
        },
        "Instance": {
            "Type": "AWS::EC2::Instance",
            # The first-boot setup signals success (or failure) with SignalResource; no
            # signal in time fails the creation instead of leaving an idle instance.
            "CreationPolicy": {"ResourceSignal": {"Count": 1, "Timeout": SETUP_TIMEOUT}},
            "Properties": {
                "ImageId": _ref("ImageId"),
                "InstanceType": _ref("InstanceType"),
                "IamInstanceProfile": _ref("InstanceProfile"),
                "SubnetId": _ref("SubnetId"),
                "SecurityGroupIds": [{"Fn::GetAtt": ["AppSecurityGroup", "GroupId"]}],
                "EbsOptimized": True,
                "Monitoring": False,
                "BlockDeviceMappings": [{
                    "DeviceName": ROOT_DEVICE[distro],
                    "Ebs": {"VolumeSize": ROOT_VOLUME_GB, "VolumeType": "gp3",
                            "Encrypted": True, "DeleteOnTermination": True}}],
                "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled",
                                    "HttpPutResponseHopLimit": 1,
                                    "InstanceMetadataTags": "enabled"},
                "UserData": {"Fn::Base64": user_data},
                "Tags": [
                    {"Key": "Name", "Value": _ref("AWS::StackName")},
                    {"Key": policies.STACK_TAG, "Value": _ref("AWS::StackName")},
                    {"Key": "market-sync:app-source", "Value": _ref("AppSource")},
                    {"Key": "market-sync:agent-wheel", "Value": _ref("AgentWheelKey")},
                    {"Key": "market-sync:distro", "Value": _ref("Distro")},
                ],
            },
        },
        "SchedulerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "EventBridge Scheduler: start and stop the market-sync instance",
                "AssumeRolePolicyDocument": policies.with_sub(
                    policies.service_trust("scheduler.amazonaws.com")),
                "Policies": [{"PolicyName": "market-sync-scheduler",
                              "PolicyDocument": policies.with_sub(policies.scheduler_policy())}],
            },
        },
        "StartSchedule": _schedule(
            f"Start the market-sync instance at {start:%H:%M} IST, Monday to Friday (the "
            "instance powers itself off again on exchange holidays)",
            "startInstances", start, "MON-FRI"),
        "SafetyStopSchedule": _schedule(
            f"Safety net: stop the market-sync instance at {stop:%H:%M} IST, every day "
            "(also weekends: a start by hand is not forgotten)",
            "stopInstances", stop, "*"),
        "NightlyStopSchedule": _schedule(
            f"Second safety net: stop the market-sync instance at {NIGHTLY_STOP:%H:%M} IST, "
            "every night (a keep-running override ends by then)",
            "stopInstances", NIGHTLY_STOP, "*"),
        "StatusCheckAlarm": _alarm(
            "market-sync: the instance failed its EC2 status checks",
            Namespace="AWS/EC2", MetricName="StatusCheckFailed",
            Dimensions=_instance_dimension(), Statistic="Maximum", Period=300,
            EvaluationPeriods=2, DatapointsToAlarm=2, Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching"),
        "DiskAlarm": _alarm(
            f"market-sync: the instance's root disk is over {DISK_ALARM_PERCENT}% full",
            Namespace=policies.METRIC_NAMESPACE, MetricName="disk_used_percent",
            Dimensions=[*_instance_dimension(), {"Name": "path", "Value": "/"}],
            Statistic="Maximum", Period=300, EvaluationPeriods=1, Threshold=DISK_ALARM_PERCENT,
            ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching"),
        "BackupMissingAlarm": _alarm(
            f"market-sync: no successful backup in {BACKUP_MISSING_DAYS} days",
            Namespace=policies.METRIC_NAMESPACE, MetricName="BackupSucceeded",
            Dimensions=_instance_dimension(), Statistic="Maximum", Period=86400,
            EvaluationPeriods=BACKUP_MISSING_DAYS, DatapointsToAlarm=BACKUP_MISSING_DAYS,
            Threshold=1, ComparisonOperator="LessThanThreshold", TreatMissingData="breaching"),
        "OperatorPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": "market-sync on the laptop: see, start and stop the instance, "
                               "set its keep-running tag, download dumps, write app secrets",
                "PolicyDocument": policies.with_sub(policies.operator_policy(prefix)),
            },
        },
        "OperatorGroup": {
            "Type": "AWS::IAM::Group",
            "Properties": {"ManagedPolicyArns": [_ref("OperatorPolicy")]},
        },
        "OperatorUser": {
            "Type": "AWS::IAM::User",
            "Properties": {"Groups": [_ref("OperatorGroup")],
                           "Tags": [{"Key": policies.STACK_TAG,
                                     "Value": _ref("AWS::StackName")}]},
        },
    }


def _outputs() -> dict[str, Any]:
    return {
        "BucketName": {"Description": "S3 bucket of the dumps", "Value": _ref("DataBucket")},
        "Region": {"Description": "AWS region of the stack", "Value": _ref("AWS::Region")},
        "InstanceId": {"Description": "The market-sync instance", "Value": _ref("Instance")},
        "AlertTopicArn": {"Description": "SNS topic of the alarms", "Value": _ref("AlertTopic")},
        "OperatorPolicyArn": {"Description": "Managed policy for the laptop",
                              "Value": _ref("OperatorPolicy")},
        "OperatorUserName": {"Description": "IAM user of the laptop (its key is in the keyring)",
                             "Value": _ref("OperatorUser")},
    }


def build_template(user_data: str | None, distro: str = "al2023", *,
                   prefix: str = "") -> Template:
    """The whole template for an instance booting ``user_data``; every S3 statement and
    the dumps' lifecycle rule under the config's ``prefix``.

    ``user_data=None`` is the first pass of a new stack: everything but the instance
    (and what watches or schedules it), so the agent wheel can be put into the new
    bucket before the instance first boots and fetches it.
    """
    resources = _resources(user_data or "", distro, prefix)
    outputs = _outputs()
    if user_data is None:
        for logical_id in _INSTANCE_RESOURCES:
            del resources[logical_id]
        del outputs["InstanceId"]
    parameters = _parameters()
    if user_data is None:
        for name in INSTANCE_PARAMETERS:
            del parameters[name]
    for logical_id, skips in CHECKOV_SKIPS.items():
        resources[logical_id]["Metadata"] = {"checkov": {"skip": [
            {"id": check, "comment": reason} for check, reason in skips]}}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "market-sync: the S3 bucket, the collector instance, its schedules, "
                       "alarms and least-privilege roles (one stack; made by market-sync)",
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": outputs,
    }


def template_body(template: Template) -> str:
    """The template as CloudFormation receives it (compact JSON, stable key order)."""
    return json.dumps(template, indent=1, ensure_ascii=False)
