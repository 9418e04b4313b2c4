"""An AWS Budget that mails the trader when the month runs away.

``provision`` keeps one monthly cost budget per stack, set to the estimate of
:mod:`installer.cost` (GST included) plus a margin, with two e-mail alerts to the
trader: the actual spend passed the limit, and the month's forecast will. It catches
the run-away cases the schedules cannot: an instance started by hand and kept
running, a bigger instance type, a flood of requests. The budget watches the whole
account (a cost filter on the stack's tag would need the tag activated for cost
allocation first), so market-sync is best kept in an account of its own.

The budget is made through the Budgets API, not CloudFormation (moto's CloudFormation
does not know ``AWS::Budgets::Budget``, its Budgets API does): ``provision`` puts it,
``teardown`` deletes it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.aws import aws_error, error_code

logger = logging.getLogger(__name__)

MARGIN = 0.5  # mail when the month exceeds the estimate by half
MINIMUM_USD = 5


@dataclass(frozen=True)
class BudgetPlan:
    name: str
    limit_usd: int
    email: str

    @classmethod
    def for_stack(cls, stack: str, estimate_usd: float, email: str,
                  margin: float = MARGIN) -> BudgetPlan:
        """The estimate (GST included) plus ``margin``, rounded up to whole dollars."""
        return cls(f"market-sync-{stack}", max(MINIMUM_USD,
                                               math.ceil(estimate_usd * (1 + margin))), email)

    def budget(self) -> dict[str, Any]:
        return {"BudgetName": self.name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": str(self.limit_usd), "Unit": "USD"}}

    def notifications(self) -> list[dict[str, Any]]:
        return [{"Notification": {"NotificationType": kind, "ComparisonOperator": "GREATER_THAN",
                                  "Threshold": 100.0, "ThresholdType": "PERCENTAGE"},
                 "Subscribers": [{"SubscriptionType": "EMAIL", "Address": self.email}]}
                for kind in ("ACTUAL", "FORECASTED")]


class Budgets:
    """Put and delete the stack's budget (``budgets`` client, administrator credentials)."""

    def __init__(self, budgets: Any, account_id: str) -> None:
        self.client = budgets
        self.account_id = account_id

    def current(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.describe_budget(  # type: ignore[no-any-return]
                AccountId=self.account_id, BudgetName=name)["Budget"]
        except Exception as exc:
            if error_code(exc) == "NotFoundException":
                return None
            raise aws_error(exc, f"read the budget {name}") from None

    def _same(self, plan: BudgetPlan, current: dict[str, Any]) -> bool:
        limit = Decimal(str(current.get("BudgetLimit", {}).get("Amount", "0")))
        if limit != Decimal(plan.limit_usd):
            return False
        try:
            for wanted in plan.notifications():
                subscribers = self.client.describe_subscribers_for_notification(
                    AccountId=self.account_id, BudgetName=plan.name,
                    Notification=wanted["Notification"])["Subscribers"]
                if [s.get("Address") for s in subscribers] != [plan.email]:
                    return False
        except Exception:  # cannot tell (or moto cannot say): put it again
            return False
        return True

    def put(self, plan: BudgetPlan) -> str:
        """Create or replace the budget; "created", "replaced" or "unchanged"."""
        current = self.current(plan.name)
        if current is not None and self._same(plan, current):
            return "unchanged"
        try:
            if current is not None:
                self.client.delete_budget(AccountId=self.account_id, BudgetName=plan.name)
            self.client.create_budget(AccountId=self.account_id, Budget=plan.budget(),
                                      NotificationsWithSubscribers=plan.notifications())
        except Exception as exc:
            raise aws_error(exc, f"put the budget {plan.name}") from None
        logger.info("budget %s: USD %d a month, alerts to the trader", plan.name,
                    plan.limit_usd)
        return "replaced" if current is not None else "created"

    def delete(self, name: str) -> bool:
        if self.current(name) is None:
            return False
        try:
            self.client.delete_budget(AccountId=self.account_id, BudgetName=name)
        except Exception as exc:
            raise aws_error(exc, f"delete the budget {name}") from None
        return True
