"""One CloudFormation stack driven through change sets: plan, show, execute, wait, delete.

:class:`StackDeployer` takes a CloudFormation client (moto-backed or stubbed in
tests). It never leaves a stack in a state the next run cannot handle: a stack
that failed its first creation (``ROLLBACK_COMPLETE``) is deleted before it is
made again; a change set without changes is deleted and reported as such.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.aws import aws_error
from shared.errors import MarketSyncError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

logger = logging.getLogger(__name__)

CAPABILITIES = ("CAPABILITY_IAM",)
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_MISSING = "does not exist"


class ProvisionError(MarketSyncError):
    """The stack could not be created, updated or deleted; names the resource and reason."""


@dataclass(frozen=True)
class StackEvent:
    """One line of the stack's progress, as CloudFormation reports it."""

    timestamp: dt.datetime
    logical_id: str
    resource_type: str
    status: str
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.status.endswith("_FAILED")

    def describe(self) -> str:
        text = f"{self.timestamp:%H:%M:%S} {self.logical_id} ({self.resource_type}): {self.status}"
        return f"{text}: {self.reason}" if self.reason else text


@dataclass(frozen=True)
class ResourceChange:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""  # True | False | Conditional ("" for Add/Remove)

    @property
    def replaces(self) -> bool:
        return self.replacement in ("True", "Conditional")

    def describe(self) -> str:
        text = f"{self.action:<7} {self.logical_id} ({self.resource_type})"
        if self.action == "Modify" and self.replaces:
            text += f"  REPLACEMENT: {self.replacement}"
        return text


@dataclass(frozen=True)
class ChangePlan:
    """A change set ready to run, or the news that nothing would change."""

    stack_name: str
    change_set_id: str | None
    creating: bool
    changes: tuple[ResourceChange, ...] = ()

    @property
    def empty(self) -> bool:
        return self.change_set_id is None

    @property
    def replacements(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.replaces)


@dataclass(frozen=True)
class StackState:
    name: str
    stack_id: str
    status: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)


EventSink = Callable[[StackEvent], None]


def _ignore(_: StackEvent) -> None:
    return None


class StackDeployer:
    """Change-set based create/update/delete of one stack."""

    def __init__(self, cloudformation: CloudFormationClient, stack_name: str, *,
                 poll_seconds: float = 5.0, timeout_seconds: float = 3600.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfn = cloudformation
        self.stack_name = stack_name
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep
        self.clock = clock

    # -- reading ----------------------------------------------------------------------------
    def state(self) -> StackState | None:
        """The stack, or None if there is none (deleted stacks do not count)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            stacks = self.cfn.describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as exc:
            if _MISSING in exc.response.get("Error", {}).get("Message", ""):
                return None
            raise aws_error(exc, f"read the stack {self.stack_name}") from None
        except BotoCoreError as exc:
            raise aws_error(exc, f"read the stack {self.stack_name}") from None
        if not stacks:
            return None
        stack = stacks[0]
        return StackState(
            name=stack["StackName"], stack_id=stack["StackId"], status=stack["StackStatus"],
            parameters={p["ParameterKey"]: p.get("ParameterValue", "")
                        for p in stack.get("Parameters", [])},
            outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        )

    def physical_ids(self) -> dict[str, str]:
        """Logical id → physical id of every resource in the stack."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            paginator = self.cfn.get_paginator("list_stack_resources")
            ids: dict[str, str] = {}
            for page in paginator.paginate(StackName=self.stack_name):
                for item in page.get("StackResourceSummaries", []):
                    if item.get("LogicalResourceId") and item.get("PhysicalResourceId"):
                        ids[item["LogicalResourceId"]] = item["PhysicalResourceId"]
            return ids
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, f"list the resources of {self.stack_name}") from None

    # -- planning ---------------------------------------------------------------------------
    def plan(self, template_body: str, parameters: Mapping[str, str],
             on_event: EventSink = _ignore) -> ChangePlan:
        """Make a change set for ``template_body`` and describe what it would change."""
        from botocore.exceptions import BotoCoreError, ClientError

        current = self.state()
        if current is not None and current.status == "ROLLBACK_COMPLETE":
            logger.info("the stack %s failed its first creation; deleting it first",
                        self.stack_name)
            self.delete(on_event)
            current = None
        if current is not None and current.status.endswith("_IN_PROGRESS") \
                and current.status != "REVIEW_IN_PROGRESS":
            raise ProvisionError(
                f"the stack {self.stack_name} is busy ({current.status})",
                "wait until it finishes (see the CloudFormation console), then run this again")
        creating = current is None or current.status == "REVIEW_IN_PROGRESS"
        name = "market-sync-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        try:
            created = self.cfn.create_change_set(
                StackName=self.stack_name, ChangeSetName=name,
                ChangeSetType="CREATE" if creating else "UPDATE",
                TemplateBody=template_body,
                Parameters=[{"ParameterKey": k, "ParameterValue": v}
                            for k, v in sorted(parameters.items())],
                Capabilities=list(CAPABILITIES),  # type: ignore[arg-type]
                Tags=[{"Key": "market-sync:stack", "Value": self.stack_name}],
                Description="made by market-sync provision",
            )
            change_set_id = created["Id"]
            description = self._wait_for_change_set(change_set_id)
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, f"prepare the changes to {self.stack_name}") from None
        if description is None:
            return ChangePlan(self.stack_name, None, creating)
        changes = tuple(
            ResourceChange(
                action=item["ResourceChange"].get("Action", ""),
                logical_id=item["ResourceChange"].get("LogicalResourceId", ""),
                resource_type=item["ResourceChange"].get("ResourceType", ""),
                replacement=item["ResourceChange"].get("Replacement", "") or "",
            )
            for item in description if "ResourceChange" in item
        )
        # An empty list with CREATE_COMPLETE still changes something (parameters, outputs).
        return ChangePlan(self.stack_name, change_set_id, creating, changes)

    def _wait_for_change_set(self, change_set_id: str) -> list[Any] | None:
        """The change set's changes; None if it holds none (and is then deleted)."""
        deadline = self.clock() + 600
        while True:
            described = self.cfn.describe_change_set(ChangeSetName=change_set_id)
            status = described.get("Status", "")
            if status == "CREATE_COMPLETE":
                changes: list[Any] = list(described.get("Changes", []))
                token = described.get("NextToken")
                while token:
                    more = self.cfn.describe_change_set(ChangeSetName=change_set_id,
                                                        NextToken=token)
                    changes += more.get("Changes", [])
                    token = more.get("NextToken")
                return changes
            if status == "FAILED":
                reason = described.get("StatusReason", "")
                if any(text in reason for text in _NO_CHANGES):
                    self._delete_change_set(change_set_id)
                    return None
                raise ProvisionError(f"CloudFormation refused the changes: {reason}",
                                     "fix what it names, then run this again")
            if self.clock() > deadline:
                raise ProvisionError("the change set took more than 10 minutes to prepare",
                                     "look at the stack in the CloudFormation console")
            self.sleep(min(self.poll_seconds, 2.0))

    def _delete_change_set(self, change_set_id: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.cfn.delete_change_set(ChangeSetName=change_set_id)
        except (BotoCoreError, ClientError) as exc:  # leftovers are harmless; say so
            logger.info("could not delete the empty change set %s: %s", change_set_id, exc)

    def discard(self, plan: ChangePlan) -> None:
        """Drop a planned change set the trader did not want."""
        if plan.change_set_id:
            self._delete_change_set(plan.change_set_id)

    # -- executing --------------------------------------------------------------------------
    def execute(self, plan: ChangePlan, on_event: EventSink = _ignore) -> StackState:
        """Run ``plan`` and wait, reporting each new stack event; raise on failure."""
        from botocore.exceptions import BotoCoreError, ClientError

        if plan.change_set_id is None:
            state = self.state()
            if state is None:
                raise ProvisionError(f"the stack {self.stack_name} does not exist")
            return state
        seen = self._event_ids()
        try:
            self.cfn.execute_change_set(ChangeSetName=plan.change_set_id)
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, f"apply the changes to {self.stack_name}") from None
        goal = "CREATE_COMPLETE" if plan.creating else "UPDATE_COMPLETE"
        state, events = self._wait(seen, on_event, lambda s: s is not None and s.status in (
            goal, "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
            "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED"))
        assert state is not None
        if state.status != goal:
            raise self._failure(state.status, events)
        return state

    def delete(self, on_event: EventSink = _ignore) -> None:
        """Delete the stack and wait until it is gone (resources it retains stay)."""
        from botocore.exceptions import BotoCoreError, ClientError

        current = self.state()
        if current is None:
            return
        seen = self._event_ids()
        try:
            self.cfn.delete_stack(StackName=current.stack_id)
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, f"delete the stack {self.stack_name}") from None
        state, events = self._wait(
            seen, on_event,
            lambda s: s is None or s.status in ("DELETE_COMPLETE", "DELETE_FAILED"),
            stack_id=current.stack_id)
        if state is not None and state.status == "DELETE_FAILED":
            raise self._failure(state.status, events)

    # -- waiting ----------------------------------------------------------------------------
    def _event_ids(self, stack_id: str | None = None) -> set[str]:
        return {e["EventId"] for e in self._raw_events(stack_id)}

    def _raw_events(self, stack_id: str | None) -> list[Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return list(self.cfn.describe_stack_events(
                StackName=stack_id or self.stack_name).get("StackEvents", []))
        except ClientError as exc:
            if _MISSING in exc.response.get("Error", {}).get("Message", ""):
                return []
            raise aws_error(exc, f"read the events of {self.stack_name}") from None
        except BotoCoreError as exc:
            raise aws_error(exc, f"read the events of {self.stack_name}") from None

    def _wait(self, seen: set[str], on_event: EventSink,
              done: Callable[[StackState | None], bool], stack_id: str | None = None,
              ) -> tuple[StackState | None, list[StackEvent]]:
        deadline = self.clock() + self.timeout_seconds
        events: list[StackEvent] = []
        while True:
            fresh = [e for e in self._raw_events(stack_id) if e["EventId"] not in seen]
            for raw in reversed(fresh):  # CloudFormation lists the newest first
                seen.add(raw["EventId"])
                event = StackEvent(
                    timestamp=raw["Timestamp"], logical_id=raw.get("LogicalResourceId", ""),
                    resource_type=raw.get("ResourceType", ""),
                    status=raw.get("ResourceStatus", ""),
                    reason=raw.get("ResourceStatusReason", "") or "")
                events.append(event)
                logger.info("%s", event.describe())
                on_event(event)
            state = self._state_by_id(stack_id)
            if done(state):
                return state, events
            if self.clock() > deadline:
                raise ProvisionError(
                    f"the stack {self.stack_name} did not finish within "
                    f"{self.timeout_seconds / 60:.0f} minutes",
                    "look at it in the CloudFormation console; re-running is safe")
            self.sleep(self.poll_seconds)

    def _state_by_id(self, stack_id: str | None) -> StackState | None:
        if stack_id is None:
            return self.state()
        saved, self.stack_name = self.stack_name, stack_id
        try:
            return self.state()
        finally:
            self.stack_name = saved

    def _failure(self, status: str, events: Sequence[StackEvent]) -> ProvisionError:
        """The first resource that failed, with CloudFormation's reason."""
        cancelled = ("Resource creation cancelled", "Resource update cancelled")
        causes = [e for e in events if e.failed and e.resource_type
                  != "AWS::CloudFormation::Stack" and not e.reason.startswith(cancelled)]
        causes = causes or [e for e in events if e.failed]
        if causes:
            first = causes[0]
            message = (f"the stack {self.stack_name} ended {status}: {first.logical_id} "
                       f"({first.resource_type}) failed: {first.reason or 'no reason given'}")
        else:
            message = f"the stack {self.stack_name} ended {status}"
        hint = ("nothing was left half-made: CloudFormation rolled the stack back; fix the cause "
                "and run `market-sync provision` again") if "ROLLBACK_COMPLETE" in status else (
                "look at the stack in the CloudFormation console, fix the cause and run "
                "this again")
        return ProvisionError(message, hint)
