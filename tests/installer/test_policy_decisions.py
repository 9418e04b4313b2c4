"""The IAM decisions that matter, simulated with installer.iameval on the concrete policies:
the tag hole, overwriting a dump, SSE-C, parameters outside the stack's path, the prefix."""

from __future__ import annotations

from typing import Any

import pytest

from installer import policies
from installer.iameval import Decision, Request, evaluate

BUCKET = "arn:aws:s3:::market-sync-123456789012-ap-south-1"
INSTANCE = "arn:aws:ec2:ap-south-1:123456789012:instance/i-0123456789abcdef0"
PARAMETER = "arn:aws:ssm:ap-south-1:123456789012:parameter"
OURS = {"aws:ResourceTag/market-sync:stack": "market-sync"}
KEEP = policies.KEEP_RUNNING_TAG


def operator(prefix: str = "") -> list[dict[str, Any]]:
    return [policies.concrete(policies.operator_policy(prefix)),
            policies.concrete(policies.bucket_policy(prefix))]


def instance(prefix: str = "") -> list[dict[str, Any]]:
    return [policies.concrete(policies.instance_policy(prefix)),
            policies.concrete(policies.bucket_policy(prefix))]


def test_old_statement_let_a_request_without_tag_keys_through() -> None:
    """The hole, shown on the statement as it was: ForAllValues alone is vacuously true."""
    old = {"Statement": [{
        "Effect": "Allow", "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
        "Resource": "arn:aws:ec2:ap-south-1:123456789012:instance/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/market-sync:stack": "market-sync"},
                      "ForAllValues:StringEquals": {"aws:TagKeys": [KEEP]}}}]}
    strip_all = Request("ec2:DeleteTags", INSTANCE, OURS)  # DeleteTags without Tags
    assert evaluate([old], strip_all) is Decision.ALLOW


@pytest.mark.parametrize("action", ["ec2:DeleteTags", "ec2:CreateTags"])
def test_no_tag_keys_is_denied(action: str) -> None:
    assert evaluate(operator(), Request(action, INSTANCE, OURS)) is Decision.IMPLICIT_DENY
    assert evaluate(operator(), Request(action, INSTANCE, {**OURS, "aws:TagKeys": []})) \
        is Decision.IMPLICIT_DENY


def test_only_the_keep_running_tag_may_be_set_and_only_on_this_stacks_instance() -> None:
    def create(keys: list[str], tags: dict[str, str] = OURS) -> Decision:
        return evaluate(operator(), Request("ec2:CreateTags", INSTANCE,
                                            {**tags, "aws:TagKeys": keys}))

    assert create([KEEP]) is Decision.ALLOW
    assert create([KEEP, policies.STACK_TAG]) is Decision.IMPLICIT_DENY
    assert create([policies.STACK_TAG]) is Decision.IMPLICIT_DENY
    assert create([KEEP], {"aws:ResourceTag/market-sync:stack": "other"}) \
        is Decision.IMPLICIT_DENY
    assert create([KEEP], {}) is Decision.IMPLICIT_DENY  # an instance without the tag
    assert evaluate(operator(), Request("ec2:DeleteTags", INSTANCE,
                                        {**OURS, "aws:TagKeys": [KEEP]})) \
        is Decision.IMPLICIT_DENY


def _put(key: str, **context: Any) -> Request:
    return Request("s3:PutObject", f"{BUCKET}/{key}",
                   {"s3:ObjectCreationOperation": True, **context})


def test_the_instance_can_only_create_dumps_never_replace_them() -> None:
    key = "dumps/2026/11/24/20261124T101500Z/manifest.json"
    assert evaluate(instance(), _put(key, **{"s3:if-none-match": "*"})) is Decision.ALLOW
    # an overwrite is a PUT without If-None-Match: denied before S3 looks at the key
    assert evaluate(instance(), _put(key)) is Decision.EXPLICIT_DENY
    # CopyObject onto a dump is an object-creating PutObject too
    assert evaluate(instance(), _put(key, **{"s3:x-amz-copy-source": "b/x"})) \
        is Decision.EXPLICIT_DENY
    # the parts of a multipart upload carry no header; its completion must
    part = Request("s3:PutObject", f"{BUCKET}/{key}", {"s3:ObjectCreationOperation": False})
    assert evaluate(instance(), part) is Decision.ALLOW
    for delete in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration",
                   "s3:PutBucketPolicy", "s3:PutObjectRetention"):
        assert evaluate(instance(), Request(delete, f"{BUCKET}/{key}")) \
            is Decision.IMPLICIT_DENY, delete


def test_sse_c_uploads_are_denied() -> None:
    sse_c = {"s3:if-none-match": "*",
             "s3:x-amz-server-side-encryption-customer-algorithm": "AES256"}
    assert evaluate(instance(), _put("dumps/x/part-1", **sse_c)) is Decision.EXPLICIT_DENY


def test_the_prefix_scopes_every_s3_statement() -> None:
    put = {"s3:if-none-match": "*"}
    assert evaluate(instance("prod/"), _put("prod/dumps/x/a", **put)) is Decision.ALLOW
    assert evaluate(instance("prod/"), _put("dumps/x/a", **put)) is Decision.IMPLICIT_DENY
    assert evaluate(instance("prod/"), _put("prod/dumps/x/a")) is Decision.EXPLICIT_DENY
    get = Request("s3:GetObject", f"{BUCKET}/prod/dumps/x/manifest.json")
    assert evaluate(operator("prod/"), get) is Decision.ALLOW
    assert evaluate(operator(""), get) is Decision.IMPLICIT_DENY
    listing = Request("s3:ListBucket", BUCKET, {"s3:prefix": "prod/dumps/2026/"})
    assert evaluate(operator("prod/"), listing) is Decision.ALLOW
    assert evaluate(operator(""), listing) is Decision.IMPLICIT_DENY
    assert evaluate(operator("prod/"), Request("s3:ListBucket", BUCKET)) \
        is Decision.IMPLICIT_DENY


def test_the_operator_writes_exactly_the_app_env_parameters() -> None:
    def put(name: str) -> Decision:
        return evaluate(operator(), Request("ssm:PutParameter", f"{PARAMETER}{name}"))

    assert put("/market-sync/market-sync/app-env/KITE_ACCESS_TOKEN") is Decision.ALLOW
    for outside in ("/market-sync/market-sync/agent/database-password",
                    "/market-sync/market-sync/app-source-token",
                    "/market-sync/other-stack/app-env/KITE_ACCESS_TOKEN",
                    "/market-sync/market-sync/app-env"):
        assert put(outside) is Decision.IMPLICIT_DENY, outside
    for read in ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"):
        name = f"{PARAMETER}/market-sync/market-sync/app-env/KITE_API_SECRET"
        assert evaluate(operator(), Request(read, name)) is Decision.IMPLICIT_DENY, read


def test_the_instance_reads_its_stacks_parameters_and_nothing_else() -> None:
    def get(name: str) -> Decision:
        return evaluate(instance(), Request("ssm:GetParameter", f"{PARAMETER}{name}"))

    assert get("/market-sync/market-sync/app-env/KITE_API_KEY") is Decision.ALLOW
    assert get("/market-sync/market-sync/agent/database-password") is Decision.ALLOW
    assert get("/market-sync/other/app-env/KITE_API_KEY") is Decision.IMPLICIT_DENY
    assert get("/aws/service/global-infrastructure/regions") is Decision.IMPLICIT_DENY
    assert evaluate(instance(), Request("ssm:PutParameter", f"{PARAMETER}/market-sync/"
                                        "market-sync/app-env/X")) is Decision.IMPLICIT_DENY


def test_instance_metrics_only_in_its_namespace() -> None:
    def put(namespace: str) -> Decision:
        return evaluate(instance(), Request("cloudwatch:PutMetricData", "*",
                                            {"cloudwatch:namespace": namespace}))

    assert put("MarketSync") is Decision.ALLOW
    assert put("AWS/EC2") is Decision.IMPLICIT_DENY
    assert evaluate(instance(), Request("ec2:DescribeTags", "*")) is Decision.IMPLICIT_DENY
