"""Write-once uploads: every PUT of a dump's part or manifest carries ``If-None-Match: *``.

The bucket policy refuses a PutObject/CompleteMultipartUpload under ``<prefix>dumps/``
without that header (installer/policies.py ``DumpsAreWriteOnce``), so nothing — a buggy
agent, ransomware with the instance's role — can replace an existing dump. s3transfer
cannot send the header on a multipart completion, so large files are uploaded part by
part here, with the header on ``CompleteMultipartUpload``.

A 412 (the key exists) is what a retry of an upload that in fact succeeded meets: the
object is then checked against the SHA-256 it was stored with (``x-amz-meta-sha256``)
and accepted if it is the same content; anything else is an error, never an overwrite.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from shared.aws import aws_error, error_code
from shared.errors import AwsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

SHA256_METADATA = "sha256"  # x-amz-meta-sha256: the hex digest the object was stored with
PART_SIZE = 64 << 20  # above this, a multipart upload of parts this size


def _b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def _is_precondition_failed(exc: BaseException) -> bool:
    return error_code(exc) in ("PreconditionFailed", "412")


def already_there(s3: S3Client, bucket: str, key: str, sha256_hex: str) -> None:
    """After a 412: the existing object must be this very content, else an error."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise aws_error(exc, f"check the existing s3://{bucket}/{key}") from None
    stored = head.get("Metadata", {}).get(SHA256_METADATA)
    if stored != sha256_hex:
        raise AwsError(f"s3://{bucket}/{key} already exists with other content; it was not "
                       "replaced (dumps are write-once)",
                       "this is a bug in the agent or someone else writes to the bucket: "
                       "look at the bucket's CloudTrail events")
    logger.info("s3://%s/%s is already there with the same SHA-256 (a retried upload)",
                bucket, key)


def put_once(s3: S3Client, bucket: str, key: str, body: bytes | IO[bytes], sha256_hex: str,
             **extra: Any) -> None:
    """One PutObject that never replaces an existing object."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*",
                      ChecksumAlgorithm="SHA256", ChecksumSHA256=_b64(sha256_hex),
                      Metadata={SHA256_METADATA: sha256_hex}, **extra)
    except Exception as exc:
        if _is_precondition_failed(exc):
            already_there(s3, bucket, key, sha256_hex)
            return
        raise


def upload_file_once(s3: S3Client, bucket: str, key: str, path: Path, sha256_hex: str,
                     part_size: int | None = None) -> None:
    """``path`` to ``key``: one PUT up to ``part_size``, else a multipart upload; never an
    overwrite."""
    size = path.stat().st_size
    part_size = part_size or PART_SIZE
    if size <= part_size:
        with path.open("rb") as fh:
            put_once(s3, bucket, key, fh, sha256_hex)
        return
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256",
                                        Metadata={SHA256_METADATA: sha256_hex})
    upload_id = upload["UploadId"]
    try:
        parts: list[dict[str, Any]] = []
        with path.open("rb") as fh:
            number = 1
            while chunk := fh.read(part_size):
                digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
                answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                        PartNumber=number, Body=chunk,
                                        ChecksumAlgorithm="SHA256", ChecksumSHA256=digest)
                parts.append({"PartNumber": number, "ETag": answer["ETag"],
                              "ChecksumSHA256": digest})
                number += 1
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                                     IfNoneMatch="*")
    except Exception as exc:
        _abort(s3, bucket, key, upload_id)
        if _is_precondition_failed(exc):
            already_there(s3, bucket, key, sha256_hex)
            return
        raise


def _abort(s3: S3Client, bucket: str, key: str, upload_id: str) -> None:
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:  # the lifecycle rule removes it after 7 days anyway
        logger.warning("could not abort the multipart upload of %s: %s", key, exc)
