"""A small evaluator of IAM policy documents: the decisions that matter, simulated.

It implements the parts of AWS's evaluation logic this project's policies use —
``Allow``/``Deny`` statements, ``Action``/``Resource`` wildcards, ``Principal`` of
resource policies, and the condition operators ``StringEquals``, ``StringNotEquals``,
``StringLike``, ``StringNotLike``, ``ArnEquals``, ``ArnLike``, ``Bool`` and ``Null``,
with the ``ForAllValues:``/``ForAnyValue:`` set prefixes and the ``IfExists`` suffix —
with AWS's documented rules for keys missing from the request
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html,
…_elements_condition_operators.html):

* a key absent from the request makes a positive operator false, a negated one
  (``StringNot…``, ``ArnNot…``) true, and any ``…IfExists`` true;
* ``ForAllValues`` is true when the key is absent or has no values (vacuously);
* ``ForAnyValue`` is false when the key is absent;
* ``Null: "true"`` is true when the key is absent, ``"false"`` when present.

An explicit ``Deny`` wins; else any ``Allow`` allows; else the request is implicitly
denied. It is a test instrument for this project's documents, not a general IAM engine:
an operator it does not know raises instead of guessing.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ContextValue = str | bool | Sequence[str]


class Decision(enum.StrEnum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"


@dataclass(frozen=True)
class Request:
    """One API request as IAM sees it: who, what, on which resource, with which keys."""

    action: str  # "ec2:DeleteTags"
    resource: str  # an ARN
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    principal: str = "arn:aws:iam::123456789012:role/caller"


class UnsupportedCondition(ValueError):
    """The document uses an operator this evaluator does not implement."""


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcards: ``*`` any run of characters (also ``/`` and ``:``), ``?`` one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL
    return re.fullmatch(regex, value, flags) is not None


def _context_values(context: Mapping[str, ContextValue], key: str) -> list[str] | None:
    """The request's values for ``key`` (key names are case-insensitive), None if absent."""
    for name, value in context.items():
        if name.lower() == key.lower():
            if isinstance(value, bool):
                return ["true" if value else "false"]
            if isinstance(value, str):
                return [value]
            return [str(v) for v in value]
    return None


_BASE: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringLike": (lambda p, v: _glob(p, v), False),
    "StringNotLike": (lambda p, v: _glob(p, v), True),
    "ArnEquals": (lambda p, v: p == v, False),
    "ArnLike": (lambda p, v: _glob(p, v), False),
    "ArnNotEquals": (lambda p, v: p == v, True),
    "ArnNotLike": (lambda p, v: _glob(p, v), True),
    "Bool": (lambda p, v: p.lower() == v.lower(), False),
}


def condition_holds(operator: str, key: str, policy_values: Any,
                    context: Mapping[str, ContextValue]) -> bool:
    """One ``operator: {key: values}`` entry against the request's context."""
    wanted = [str(v).lower() if isinstance(v, bool) else str(v)
              for v in _as_list(policy_values)]
    present = _context_values(context, key)
    if operator == "Null":
        is_null = present is None or present == []
        return any((w.lower() == "true") == is_null for w in wanted)
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _BASE or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise UnsupportedCondition(operator)
    match, negated = _BASE[base]

    def matches(value: str) -> bool:
        hit = any(match(w, value) for w in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(matches(v) for v in present or [])
    if qualifier == "ForAnyValue":
        return any(matches(v) for v in present or [])
    if present is None:
        return if_exists or negated
    # a single-valued key: the one value against the policy's values (OR among them)
    return all(matches(v) for v in present) if negated else any(matches(v) for v in present)


def _conditions_hold(block: Mapping[str, Mapping[str, Any]],
                     context: Mapping[str, ContextValue]) -> bool:
    """Every operator and every key in it must hold (AND); values within a key are OR."""
    return all(condition_holds(op, key, values, context)
               for op, keys in block.items() for key, values in keys.items())


def _principal_matches(principal: Any, caller: str) -> bool:
    if principal is None:  # an identity policy: the caller is its principal
        return True
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        aws = principal.get("AWS")
        return aws is not None and any(p == "*" or p == caller for p in _as_list(aws))
    return False


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    """Principal, action, resource and condition all match the request."""
    if not _principal_matches(statement.get("Principal"), request.principal):
        return False
    actions = _as_list(statement.get("Action", []))
    if not any(_glob(a, request.action, ignore_case=True) for a in actions):
        return False
    resources = _as_list(statement.get("Resource", "*"))
    if not any(_glob(r, request.resource) for r in resources):
        return False
    return _conditions_hold(statement.get("Condition", {}), request.context)


def evaluate(documents: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    """AWS's decision for ``request`` under these documents (identity and resource
    policies of one account together)."""
    allowed = False
    for document in documents:
        for statement in _as_list(document["Statement"]):
            if not statement_applies(statement, request):
                continue
            if statement["Effect"] == "Deny":
                return Decision.EXPLICIT_DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


__all__ = ["Decision", "Request", "UnsupportedCondition", "condition_holds", "evaluate",
           "statement_applies"]
