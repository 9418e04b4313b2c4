"""Write-once uploads against the moto server (which honours If-None-Match on PutObject and on
CompleteMultipartUpload): a dump is never replaced; a retried upload of the same bytes is
recognised by its SHA-256 and is not an error."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from shared.dumpstore import DumpStore
from shared.errors import AwsError
from shared.writeonce import upload_file_once

MIB = 1 << 20


@pytest.fixture
def s3(moto_server: Any) -> Any:
    import boto3

    return boto3.client("s3", region_name="ap-south-1", endpoint_url=moto_server.endpoint_url)


def _file(tmp_path: Path, name: str, data: bytes) -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _versions(s3: Any, bucket: str, key: str) -> int:
    return len(s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []))


def test_every_put_carries_if_none_match(s3: Any, bucket: str, tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    s3.meta.events.register("before-call.s3.PutObject",
                            lambda params, **_: sent.append(dict(params["headers"])))
    path, digest = _file(tmp_path, "part", b"rows")
    DumpStore(s3, bucket).upload_file("dumps/2026/11/24/x/part-1", path, digest)
    assert sent and all(h.get("If-None-Match") == "*" for h in sent)


def test_a_dump_part_is_never_replaced(s3: Any, bucket: str, tmp_path: Path) -> None:
    store = DumpStore(s3, bucket)
    key = "dumps/2026/11/24/x/part-1"
    first, digest = _file(tmp_path, "a", b"the real rows")
    store.upload_file(key, first, digest)
    other, other_digest = _file(tmp_path, "b", b"ransomware")
    with pytest.raises(AwsError, match="already exists with other content"):
        store.upload_file(key, other, other_digest)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"the real rows"
    assert _versions(s3, bucket, key) == 1


def test_a_retried_upload_of_the_same_bytes_is_already_there(
        s3: Any, bucket: str, tmp_path: Path) -> None:
    store = DumpStore(s3, bucket)
    key = "dumps/2026/11/24/x/part-1"
    path, digest = _file(tmp_path, "a", b"the real rows")
    store.upload_file(key, path, digest)
    store.upload_file(key, path, digest)  # the retry meets 412, checks, accepts
    assert _versions(s3, bucket, key) == 1


def test_multipart_uploads_are_write_once_too(s3: Any, bucket: str, tmp_path: Path) -> None:
    key = "dumps/2026/11/24/x/big"
    data = os.urandom(11 * MIB)  # three parts of 5 MiB (S3's smallest) and a tail
    path, digest = _file(tmp_path, "big", data)
    upload_file_once(s3, bucket, key, path, digest, part_size=5 * MIB)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    upload_file_once(s3, bucket, key, path, digest, part_size=5 * MIB)  # retry: fine
    other, other_digest = _file(tmp_path, "other", os.urandom(11 * MIB))
    with pytest.raises(AwsError, match="already exists with other content"):
        upload_file_once(s3, bucket, key, other, other_digest, part_size=5 * MIB)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert _versions(s3, bucket, key) == 1
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")  # aborted, not left


def test_a_manifest_is_never_replaced(s3: Any, bucket: str, tmp_path: Path) -> None:
    from dataclasses import replace

    from tests.shared.test_manifest import sample_manifest

    store = DumpStore(s3, bucket)
    manifest = sample_manifest()
    key = store.put_manifest(manifest)
    assert store.put_manifest(manifest) == key  # the same bytes again: already there
    with pytest.raises(AwsError, match="write-once"):
        store.put_manifest(replace(manifest, created_at=manifest.created_at.replace(year=2020)))
    assert _versions(s3, bucket, key) == 1
