"""Change-set orchestration: moto for create/update/no-change/delete; Stubber for failures
moto cannot produce on cue (a resource failing and the stack rolling back)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from installer import template as tpl
from installer.stack import ProvisionError, StackDeployer, StackEvent
from shared.aws import AwsClients

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # moto: unsupported resources

PARAMS = {"TraderCidr": "203.0.113.7/32", "AlertEmail": "t@example.com",
          "DumpRetentionDays": "30", "BucketName": "ms-test-bucket", "TopicName": "ms-alerts",
          "AppPort": "8000"}


def _first_pass(clients: AwsClients) -> tuple[str, dict[str, str]]:
    vpc = clients.ec2().describe_vpcs(
        Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    return tpl.template_body(tpl.build_template(None)), {**PARAMS, "VpcId": vpc}


def test_create_then_rerun_reports_no_changes(clients: AwsClients) -> None:
    deployer = StackDeployer(clients.cloudformation(), "ms-test", poll_seconds=0.01)
    body, params = _first_pass(clients)
    events: list[StackEvent] = []

    plan = deployer.plan(body, params)
    assert plan.creating and not plan.empty
    assert {c.logical_id for c in plan.changes} >= {"DataBucket", "AlertTopic", "InstanceRole"}
    state = deployer.execute(plan, events.append)
    assert state.status == "CREATE_COMPLETE"
    assert events and events[-1].status == "CREATE_COMPLETE"
    assert deployer.physical_ids()["DataBucket"] == "ms-test-bucket"

    again = deployer.plan(body, params)
    assert again.empty and not again.creating
    assert deployer.execute(again).status == "CREATE_COMPLETE"  # executing nothing is safe
    summaries = clients.cloudformation().list_change_sets(StackName="ms-test")["Summaries"]
    assert all(s["Status"] != "FAILED" for s in summaries)  # the empty one was deleted


def test_update_with_a_change_runs_an_update(clients: AwsClients) -> None:
    deployer = StackDeployer(clients.cloudformation(), "ms-test", poll_seconds=0.01)
    body, params = _first_pass(clients)
    deployer.execute(deployer.plan(body, params))
    plan = deployer.plan(body, {**params, "DumpRetentionDays": "90"})
    assert not plan.creating and not plan.empty
    assert deployer.execute(plan).status == "UPDATE_COMPLETE"
    assert deployer.state().parameters["DumpRetentionDays"] == "90"  # type: ignore[union-attr]


def test_delete_removes_the_stack_and_keeps_the_bucket(clients: AwsClients) -> None:
    deployer = StackDeployer(clients.cloudformation(), "ms-test", poll_seconds=0.01)
    body, params = _first_pass(clients)
    deployer.execute(deployer.plan(body, params))
    events: list[StackEvent] = []
    deployer.delete(events.append)
    assert deployer.state() is None
    assert any(e.status == "DELETE_COMPLETE" for e in events)
    names = [b["Name"] for b in clients.s3().list_buckets()["Buckets"]]
    assert "ms-test-bucket" in names  # DeletionPolicy: Retain
    deployer.delete()  # deleting what is gone is a no-op


# -- failures, stubbed ---------------------------------------------------------------------------
STACK_ID = "arn:aws:cloudformation:ap-south-1:123456789012:stack/ms/1"
CS_ID = "arn:aws:cloudformation:ap-south-1:123456789012:changeSet/cs/1"
T0 = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)


def _event(n: int, logical: str, rtype: str, status: str, reason: str = "") -> dict[str, Any]:
    event = {"StackId": STACK_ID, "EventId": f"e{n}", "StackName": "ms",
             "LogicalResourceId": logical, "ResourceType": rtype, "ResourceStatus": status,
             "Timestamp": T0 + dt.timedelta(seconds=n)}
    if reason:
        event["ResourceStatusReason"] = reason
    return event


def _stack(status: str) -> dict[str, Any]:
    return {"Stacks": [{"StackName": "ms", "StackId": STACK_ID, "StackStatus": status,
                        "CreationTime": T0}]}


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client("cloudformation", region_name="ap-south-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_failed_creation_names_the_resource_and_reason(stubbed: Any) -> None:
    client, stub = stubbed
    missing = "Stack with id ms does not exist"
    stub.add_client_error("describe_stacks", "ValidationError", missing)
    stub.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID})
    stub.add_response("describe_change_set", {
        "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": [
            {"Type": "Resource", "ResourceChange": {
                "Action": "Add", "LogicalResourceId": "Instance",
                "ResourceType": "AWS::EC2::Instance"}}]})
    stub.add_response("describe_stack_events", {"StackEvents": [
        _event(1, "ms", "AWS::CloudFormation::Stack", "REVIEW_IN_PROGRESS")]})
    stub.add_response("execute_change_set", {})
    stub.add_response("describe_stack_events", {"StackEvents": list(reversed([
        _event(1, "ms", "AWS::CloudFormation::Stack", "REVIEW_IN_PROGRESS"),
        _event(2, "ms", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS"),
        _event(3, "Instance", "AWS::EC2::Instance", "CREATE_FAILED",
               "We currently do not have sufficient t3.small capacity in ap-south-1a"),
        _event(4, "DataBucket", "AWS::S3::Bucket", "CREATE_FAILED",
               "Resource creation cancelled"),
        _event(5, "ms", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE"),
    ]))})
    stub.add_response("describe_stacks", _stack("ROLLBACK_COMPLETE"))

    deployer = StackDeployer(client, "ms", poll_seconds=0)
    plan = deployer.plan("{}", {})
    seen: list[StackEvent] = []
    with pytest.raises(ProvisionError) as caught:
        deployer.execute(plan, seen.append)
    message = str(caught.value)
    assert "Instance (AWS::EC2::Instance) failed" in message
    assert "sufficient t3.small capacity" in message
    assert "rolled the stack back" in caught.value.hint
    assert [e.logical_id for e in seen][:2] == ["ms", "Instance"]  # oldest first, new only


def test_rerun_after_a_failed_creation_deletes_the_wreck_first(stubbed: Any) -> None:
    client, stub = stubbed
    stub.add_response("describe_stacks", _stack("ROLLBACK_COMPLETE"))  # plan: state
    stub.add_response("describe_stacks", _stack("ROLLBACK_COMPLETE"))  # delete: state
    stub.add_response("describe_stack_events", {"StackEvents": []})
    stub.add_response("delete_stack", {})
    stub.add_response("describe_stack_events", {"StackEvents": [
        _event(9, "ms", "AWS::CloudFormation::Stack", "DELETE_COMPLETE")]})
    stub.add_response("describe_stacks", _stack("DELETE_COMPLETE"))
    stub.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID})
    stub.add_response("describe_change_set", {"Status": "CREATE_COMPLETE", "Changes": []})

    plan = StackDeployer(client, "ms", poll_seconds=0).plan("{}", {})
    assert plan.creating and plan.change_set_id == CS_ID


def test_a_refused_change_set_is_an_error_with_the_reason(stubbed: Any) -> None:
    client, stub = stubbed
    stub.add_response("describe_stacks", _stack("CREATE_COMPLETE"))
    stub.add_response("create_change_set", {"Id": CS_ID, "StackId": STACK_ID})
    stub.add_response("describe_change_set", {
        "Status": "FAILED", "StatusReason": "Parameter TraderCidr failed to satisfy constraint"})
    with pytest.raises(ProvisionError, match="TraderCidr failed to satisfy"):
        StackDeployer(client, "ms", poll_seconds=0).plan("{}", {})


def test_a_busy_stack_is_not_touched(stubbed: Any) -> None:
    client, stub = stubbed
    stub.add_response("describe_stacks", _stack("UPDATE_IN_PROGRESS"))
    with pytest.raises(ProvisionError, match="busy"):
        StackDeployer(client, "ms", poll_seconds=0).plan("{}", {})


def test_throttling_is_an_aws_error_in_plain_words(stubbed: Any) -> None:
    from shared.errors import AwsError

    client, stub = stubbed
    for _ in range(1):
        stub.add_client_error("describe_stacks", "Throttling", "Rate exceeded")
    with pytest.raises(AwsError, match="throttling"):
        StackDeployer(client, "ms", poll_seconds=0).state()
