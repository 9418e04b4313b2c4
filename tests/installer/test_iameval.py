"""installer.iameval against the cases AWS documents for conditions and missing keys."""

from __future__ import annotations

import pytest

from installer.iameval import Decision, Request, UnsupportedCondition, condition_holds, evaluate

TAGS = "aws:TagKeys"


def test_for_all_values_is_vacuously_true_without_the_key() -> None:
    # AWS: "ForAllValues … also returns true if there are no context keys in the request"
    assert condition_holds("ForAllValues:StringEquals", TAGS, ["a"], {})
    assert condition_holds("ForAllValues:StringEquals", TAGS, ["a"], {TAGS: []})
    assert condition_holds("ForAllValues:StringEquals", TAGS, ["a", "b"], {TAGS: ["a"]})
    assert not condition_holds("ForAllValues:StringEquals", TAGS, ["a"], {TAGS: ["a", "c"]})


def test_for_any_value_is_false_without_the_key() -> None:
    assert not condition_holds("ForAnyValue:StringEquals", TAGS, ["a"], {})
    assert condition_holds("ForAnyValue:StringEquals", TAGS, ["a"], {TAGS: ["c", "a"]})
    assert not condition_holds("ForAnyValue:StringEquals", TAGS, ["a"], {TAGS: ["c"]})


def test_null_tests_presence() -> None:
    assert condition_holds("Null", TAGS, "true", {})
    assert not condition_holds("Null", TAGS, "false", {})
    assert condition_holds("Null", TAGS, "false", {TAGS: ["a"]})
    assert not condition_holds("Null", TAGS, "true", {TAGS: ["a"]})


def test_missing_key_fails_positive_operators_and_passes_negated_ones() -> None:
    key = "aws:ResourceTag/team"
    for operator in ("StringEquals", "StringLike", "ArnEquals", "ArnLike", "Bool"):
        assert not condition_holds(operator, key, "x", {}), operator
    for operator in ("StringNotEquals", "StringNotLike", "ArnNotLike"):
        assert condition_holds(operator, key, "x", {}), operator
    assert condition_holds("StringEqualsIfExists", key, "x", {})
    assert not condition_holds("StringEqualsIfExists", key, "x", {key: "y"})


def test_values_are_or_keys_and_operators_are_and() -> None:
    request = {"s3:prefix": "dumps/2026/"}
    assert condition_holds("StringLike", "s3:prefix", ["x/*", "dumps/*"], request)
    assert not condition_holds("StringLike", "s3:prefix", ["x/*"], request)
    assert not condition_holds("StringNotLike", "s3:prefix", ["x/*", "dumps/*"], request)


def test_string_equals_is_case_sensitive_key_names_are_not() -> None:
    assert condition_holds("StringEquals", "AWS:SourceAccount", "1",
                           {"aws:sourceaccount": "1"})
    assert not condition_holds("StringEquals", "aws:x", "Prod", {"aws:x": "prod"})
    assert condition_holds("StringEqualsIgnoreCase", "aws:x", "Prod", {"aws:x": "prod"})


def test_bool_compares_true_and_false() -> None:
    assert condition_holds("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": False})
    assert not condition_holds("Bool", "aws:SecureTransport", "false",
                               {"aws:SecureTransport": True})


def test_wildcards_span_slashes_and_actions_ignore_case() -> None:
    doc = {"Statement": [{"Effect": "Allow", "Action": "S3:getobject",
                          "Resource": "arn:aws:s3:::b/dumps/*"}]}
    assert evaluate([doc], Request("s3:GetObject", "arn:aws:s3:::b/dumps/2026/11/x")) \
        is Decision.ALLOW
    assert evaluate([doc], Request("s3:GetObject", "arn:aws:s3:::b/other")) \
        is Decision.IMPLICIT_DENY


def test_explicit_deny_wins_over_allow() -> None:
    allow = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    deny = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                           "Resource": "*"}]}
    assert evaluate([allow, deny], Request("s3:PutObject", "arn:aws:s3:::b/k")) \
        is Decision.EXPLICIT_DENY
    assert evaluate([allow, deny], Request("s3:GetObject", "arn:aws:s3:::b/k")) \
        is Decision.ALLOW


def test_a_resource_policy_principal_must_match() -> None:
    deny = {"Statement": [{"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::1:role/a"},
                           "Action": "s3:PutObject", "Resource": "*"}]}
    allow = {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]}
    def as_role(name: str) -> Decision:
        return evaluate([allow, deny], Request("s3:PutObject", "x",
                                               principal=f"arn:aws:iam::1:role/{name}"))

    assert as_role("b") is Decision.ALLOW
    assert as_role("a") is Decision.EXPLICIT_DENY


def test_an_unknown_operator_is_refused_not_guessed() -> None:
    with pytest.raises(UnsupportedCondition):
        condition_holds("NumericLessThan", "aws:x", "1", {"aws:x": "0"})
