"""Golden tests: each IAM policy's actions and resources, pinned; and parliament on each."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from installer import policies

BUCKET = "arn:aws:s3:::market-sync-123456789012-ap-south-1"
INSTANCES = "arn:aws:ec2:ap-south-1:123456789012:instance/*"
TOPIC = "arn:aws:sns:ap-south-1:123456789012:market-sync-alerts"
THIS_STACK = {"StringEquals": {"aws:ResourceTag/market-sync:stack": "market-sync"}}


def statements(document: dict[str, Any]) -> dict[str, tuple[Any, Any, Any]]:
    """Sid → (actions, resources, condition), all as the concrete policy has them."""
    concrete = policies.concrete(document)
    return {s["Sid"]: (s["Action"], s["Resource"], s.get("Condition"))
            for s in concrete["Statement"]}


PARAMS = "arn:aws:ssm:ap-south-1:123456789012:parameter/market-sync/market-sync"
LOGS = "arn:aws:logs:ap-south-1:123456789012:log-group:/market-sync/*"


def test_instance_policy_is_pinned() -> None:
    assert statements(policies.instance_policy()) == {
        "WriteDumps": (["s3:PutObject", "s3:AbortMultipartUpload"], f"{BUCKET}/dumps/*", None),
        "ListDumps": ("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["dumps/",
                                                                               "dumps/*"]}}),
        "ReadDumps": ("s3:GetObject", f"{BUCKET}/dumps/*", None),
        "ReadArtifacts": ("s3:GetObject", f"{BUCKET}/artifacts/*", None),
        "ReadStackParameters": (
            ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            f"{PARAMS}/*", None),
        "NotifyTrader": ("sns:Publish", TOPIC, None),
        "Metrics": ("cloudwatch:PutMetricData", "*",
                    {"StringEquals": {"cloudwatch:namespace": "MarketSync"}}),
        "Logs": (["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:CreateLogStream",
                  "logs:DescribeLogStreams", "logs:PutLogEvents"],
                 [LOGS, f"{LOGS}:log-stream:*"], None),
        "SsmAgentRegistration": ("ssm:UpdateInstanceInformation", INSTANCES, None),
        "SsmAgentChannels": (
            ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
             "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
             "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
             "ec2messages:FailMessage", "ec2messages:GetEndpoint",
             "ec2messages:GetMessages", "ec2messages:SendReply"], "*", None),
        "SignalSetup": ("cloudformation:SignalResource",
                        "arn:aws:cloudformation:ap-south-1:123456789012:stack/market-sync/*",
                        None),
    }


def test_instance_can_never_delete() -> None:
    text = json.dumps(policies.instance_policy())
    assert "Delete" not in text.replace("ec2messages:DeleteMessage", "") and "s3:*" not in text


def test_instance_role_has_no_aws_managed_policy() -> None:
    from installer.template import build_template

    role = build_template("#cloud-config\n{}\n")["Resources"]["InstanceRole"]["Properties"]
    assert "ManagedPolicyArns" not in role


def test_scheduler_policy_is_pinned() -> None:
    assert statements(policies.scheduler_policy()) == {
        "StartStopTheInstance": (["ec2:StartInstances", "ec2:StopInstances"], INSTANCES,
                                 THIS_STACK),
    }


def test_operator_policy_is_pinned() -> None:
    assert statements(policies.operator_policy()) == {
        "SeeInstances": (["ec2:DescribeInstances", "ec2:DescribeInstanceStatus"], "*", None),
        "StartStopTheInstance": (["ec2:StartInstances", "ec2:StopInstances"], INSTANCES,
                                 THIS_STACK),
        "KeepRunningOverride": ("ec2:CreateTags", INSTANCES, {
            **THIS_STACK,
            "ForAllValues:StringEquals": {"aws:TagKeys": ["market-sync:keep-running-until"]},
            "Null": {"aws:TagKeys": "false"}}),
        "ListDumps": ("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["dumps/",
                                                                               "dumps/*"]}}),
        "ReadDumps": ("s3:GetObject", f"{BUCKET}/dumps/*", None),
        "WriteAppSecrets": (["ssm:PutParameter", "ssm:DeleteParameter"],
                            f"{PARAMS}/app-env/*", None),
        "ListAppSecretNames": ("ssm:DescribeParameters", "*", None),
    }


def test_bucket_policy_is_pinned() -> None:
    assert statements(policies.bucket_policy("prod/")) == {
        "DenyInsecureTransport": ("s3:*", [BUCKET, f"{BUCKET}/*"],
                                  {"Bool": {"aws:SecureTransport": "false"}}),
        "DumpsAreWriteOnce": ("s3:PutObject", f"{BUCKET}/prod/dumps/*",
                              {"Null": {"s3:if-none-match": "true"},
                               "Bool": {"s3:ObjectCreationOperation": "true"}}),
        "DenyCustomerProvidedKeys": (
            "s3:PutObject", f"{BUCKET}/*",
            {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}),
    }


def test_prefix_reaches_every_dump_statement() -> None:
    for make in (policies.instance_policy, policies.operator_policy, policies.bucket_policy):
        text = json.dumps(policies.concrete(make("prod/")))
        assert "prod/dumps/" in text, make.__name__
        assert not re.search(r"(?<!prod/)dumps/", text), make.__name__


def test_override_tag_is_the_one_the_instance_guard_reads() -> None:
    from ec2.guard import KEEP_RUNNING_TAG

    assert policies.KEEP_RUNNING_TAG == KEEP_RUNNING_TAG


def test_trust_policies_name_one_service_and_this_account() -> None:
    trust = policies.concrete(policies.service_trust("scheduler.amazonaws.com"))
    assert trust["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]
    ec2 = policies.service_trust("ec2.amazonaws.com", same_account=False)
    assert ec2["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_template_uses_exactly_these_documents() -> None:
    from installer.template import build_template

    resources = build_template("#cloud-config\n{}\n")["Resources"]
    role = resources["InstanceRole"]["Properties"]
    assert role["Policies"][0]["PolicyDocument"] == policies.with_sub(policies.instance_policy())
    assert resources["SchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"] == \
        policies.with_sub(policies.scheduler_policy())
    assert resources["OperatorPolicy"]["Properties"]["PolicyDocument"] == \
        policies.with_sub(policies.operator_policy())
    prefixed = build_template("#cloud-config\n{}\n", prefix="prod/")["Resources"]
    assert prefixed["DataBucketPolicy"]["Properties"]["PolicyDocument"] == \
        policies.with_sub(policies.bucket_policy("prod/"))
    assert resources["DataBucketPolicy"]["Properties"]["PolicyDocument"] == \
        policies.with_sub(policies.bucket_policy())


@pytest.mark.parametrize("name", [*policies.IDENTITY_POLICIES, "bucket"])
def test_parliament_finds_nothing(name: str) -> None:
    from parliament import analyze_policy_string

    make = policies.IDENTITY_POLICIES.get(name, policies.bucket_policy)
    analyzed = analyze_policy_string(json.dumps(policies.concrete(make())),
                                     include_community_auditors=True)
    assert [str(f) for f in analyzed.findings] == []


def test_parliament_would_catch_a_wildcard() -> None:
    """The check above can fail: a sloppy policy has findings."""
    from parliament import analyze_policy_string

    sloppy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    assert analyze_policy_string(json.dumps(sloppy)).findings
