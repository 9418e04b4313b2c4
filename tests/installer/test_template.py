"""The template's properties, asserted statically (moto's CloudFormation drops many)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ec2.instance.settings import InstanceSettings
from ec2.instance.userdata import render_user_data
from installer import template as tpl

SETTINGS = InstanceSettings(
    region="ap-south-1", bucket="market-sync-123456789012-ap-south-1", prefix="",
    agent_wheel_key="artifacts/market_sync-0.1.0-py3-none-any.whl",
    app_source="https://github.com/example/market-app.git",
    sns_topic_arn="arn:aws:sns:ap-south-1:123456789012:market-sync-alerts")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return tpl.build_template(render_user_data(SETTINGS))


def props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]  # type: ignore[no-any-return]


def test_parameters_cover_what_the_trader_chooses(template: dict[str, Any]) -> None:
    assert {"InstanceType", "TraderCidr", "AlertEmail", "DumpRetentionDays", "AppSource",
            "AgentWheelKey", "BucketName", "TopicName"} <= set(template["Parameters"])
    assert template["Parameters"]["InstanceType"]["Default"] == "t3.small"


def test_outputs_name_bucket_instance_and_region(template: dict[str, Any]) -> None:
    assert template["Outputs"]["BucketName"]["Value"] == {"Ref": "DataBucket"}
    assert template["Outputs"]["InstanceId"]["Value"] == {"Ref": "Instance"}
    assert template["Outputs"]["Region"]["Value"] == {"Ref": "AWS::Region"}


def test_bucket_is_private_encrypted_versioned_and_retained(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["DataBucket"]
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    p = bucket["Properties"]
    assert all(p["PublicAccessBlockConfiguration"].values())
    assert len(p["PublicAccessBlockConfiguration"]) == 4
    rule = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert p["VersioningConfiguration"]["Status"] == "Enabled"
    assert p["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_lifecycle_expires_dumps_old_versions_and_stale_uploads(template: dict[str, Any]) -> None:
    rules = {r["Id"]: r for r in props(template, "DataBucket")["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireOldDumps"]["Prefix"] == "dumps/"
    assert rules["ExpireOldDumps"]["ExpirationInDays"] == {"Ref": "DumpRetentionDays"}
    noncurrent = rules["ExpireNoncurrentVersions"]
    assert noncurrent["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert noncurrent["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    assert all(r["Status"] == "Enabled" for r in rules.values())


def test_bucket_policy_denies_requests_without_tls(template: dict[str, Any]) -> None:
    statement = props(template, "DataBucketPolicy")["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_security_group_opens_only_the_app_port_to_the_trader(template: dict[str, Any]) -> None:
    sg = props(template, "AppSecurityGroup")
    assert sg["SecurityGroupIngress"] == [{
        "IpProtocol": "tcp", "FromPort": {"Ref": "AppPort"}, "ToPort": {"Ref": "AppPort"},
        "CidrIp": {"Ref": "TraderCidr"}, "Description": "market app from the trader's laptop"}]
    assert "/32$" in template["Parameters"]["TraderCidr"]["AllowedPattern"]
    ports = {rule["FromPort"] for rule in sg["SecurityGroupEgress"]}
    assert ports == {80, 443}  # no SSH anywhere
    assert "22" not in json.dumps(sg["SecurityGroupIngress"])


def test_instance_disk_is_encrypted_gp3_30gb_and_imdsv2_is_required(
        template: dict[str, Any]) -> None:
    instance = props(template, "Instance")
    ebs = instance["BlockDeviceMappings"][0]["Ebs"]
    assert ebs == {"VolumeSize": 30, "VolumeType": "gp3", "Encrypted": True,
                   "DeleteOnTermination": True}
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
    assert instance["IamInstanceProfile"] == {"Ref": "InstanceProfile"}
    assert "KeyName" not in instance


def test_user_data_is_the_ec2_rendering_verbatim(template: dict[str, Any]) -> None:
    user_data = props(template, "Instance")["UserData"]["Fn::Base64"]
    assert isinstance(user_data, str)  # a literal: no Fn::Sub, no CloudFormation placeholders
    assert user_data == render_user_data(SETTINGS)
    assert user_data.startswith("#cloud-config\n")
    assert len(user_data.encode()) <= 16 * 1024


def test_instance_is_tagged_with_its_stack(template: dict[str, Any]) -> None:
    tags = {t["Key"]: t["Value"] for t in props(template, "Instance")["Tags"]}
    assert tags["market-sync:stack"] == {"Ref": "AWS::StackName"}


def test_schedules_start_weekdays_and_stop_every_day_and_night_in_ist(
        template: dict[str, Any]) -> None:
    start, stop, night = (props(template, n) for n in
                          ("StartSchedule", "SafetyStopSchedule", "NightlyStopSchedule"))
    assert start["ScheduleExpression"] == "cron(50 8 ? * MON-FRI *)"
    # every day, weekends too: an instance started by hand on a Saturday is stopped
    assert stop["ScheduleExpression"] == "cron(30 16 ? * * *)"
    assert night["ScheduleExpression"] == "cron(30 23 ? * * *)"
    for schedule, action in ((start, "startInstances"), (stop, "stopInstances"),
                             (night, "stopInstances")):
        assert schedule["ScheduleExpressionTimezone"] == "Asia/Kolkata"
        assert schedule["Target"]["Arn"] == f"arn:aws:scheduler:::aws-sdk:ec2:{action}"
        assert schedule["Target"]["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
        assert schedule["Target"]["Input"] == {"Fn::Sub": '{"InstanceIds": ["${Instance}"]}'}


def test_alarms_watch_status_disk_and_backups_and_mail_the_topic(
        template: dict[str, Any]) -> None:
    status, disk, backup = (props(template, n) for n in
                            ("StatusCheckAlarm", "DiskAlarm", "BackupMissingAlarm"))
    assert (status["Namespace"], status["MetricName"]) == ("AWS/EC2", "StatusCheckFailed")
    assert (disk["Namespace"], disk["MetricName"]) == ("MarketSync", "disk_used_percent")
    assert {"Name": "path", "Value": "/"} in disk["Dimensions"]
    assert (backup["Namespace"], backup["MetricName"]) == ("MarketSync", "BackupSucceeded")
    assert backup["Dimensions"] == [{"Name": "InstanceId", "Value": {"Ref": "Instance"}}]
    assert backup["TreatMissingData"] == "breaching"
    assert backup["ComparisonOperator"] == "LessThanThreshold"
    for alarm in (status, disk, backup):
        assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_topic_mails_the_trader(template: dict[str, Any]) -> None:
    sub = props(template, "AlertSubscription")
    assert sub == {"TopicArn": {"Ref": "AlertTopic"}, "Protocol": "email",
                   "Endpoint": {"Ref": "AlertEmail"}}


def test_operator_user_always_exists_and_gets_the_policy_through_a_group(
        template: dict[str, Any]) -> None:
    assert "Condition" not in template["Resources"]["OperatorUser"]
    assert "Conditions" not in template
    assert props(template, "OperatorGroup")["ManagedPolicyArns"] == [{"Ref": "OperatorPolicy"}]
    assert "AccessKey" not in json.dumps(template["Outputs"])
    assert not any(r["Type"] == "AWS::IAM::AccessKey" for r in template["Resources"].values())


def test_bucket_blocks_sse_c_and_expires_dumps_under_the_prefix() -> None:
    bucket = tpl.build_template(None, prefix="prod/")["Resources"]["DataBucket"]["Properties"]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["BlockedEncryptionTypes"] == {"EncryptionType": ["SSE-C"]}
    expiry = bucket["LifecycleConfiguration"]["Rules"][0]
    assert expiry["Id"] == "ExpireOldDumps" and expiry["Prefix"] == "prod/dumps/"


def test_app_source_refuses_credentials_in_the_url() -> None:
    import re

    full = tpl.build_template("#cloud-config\n{}\n")["Parameters"]["AppSource"]["AllowedPattern"]
    assert re.match(full, "https://github.com/me/app.git")
    assert not re.match(full, "https://x-access-token:ghp_abc@github.com/me/app.git")
    assert not re.match(full, "https://ghp_abc@github.com/me/app.git")


def test_first_pass_has_no_instance_and_no_unused_parameters() -> None:
    first = tpl.build_template(None)
    assert not set(first["Resources"]) & {"Instance", "StartSchedule", "BackupMissingAlarm"}
    assert "InstanceId" not in first["Outputs"]
    assert not set(first["Parameters"]) & set(tpl.INSTANCE_PARAMETERS)
    assert "DataBucket" in first["Resources"]


def test_template_fits_cloudformation_inline_limit(template: dict[str, Any]) -> None:
    assert len(tpl.template_body(template).encode()) < tpl.TEMPLATE_BODY_LIMIT
