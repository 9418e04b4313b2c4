"""Dumps in S3: list them, read manifests, upload parts, download parts resumably."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from shared.aws import aws_error
from shared.errors import AwsError, Cancelled, IntegrityError, ManifestError, MarketSyncError
from shared.manifest import (
    DUMPS_FOLDER,
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    Manifest,
    dump_folder,
    parse_manifest,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)
T = TypeVar("T")

_MANIFEST_KEY = re.compile(
    r"dumps/\d{4}/\d{2}/\d{2}/(?P<id>\d{8}T\d{6}Z-[0-9a-f]{8})/" + re.escape(MANIFEST_NAME)
)
CHUNK = 1 << 20


class LocalFileError(MarketSyncError):
    """Writing a download to the local disk failed (full, read-only, no permission): never
    retried, and never mistaken for a network error."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(f"cannot write {path}: {exc.strerror or exc}")
        self.path, self.errno, self.strerror = path, exc.errno, exc.strerror or str(exc)


@dataclass(frozen=True)
class DumpRef:
    dump_id: str
    manifest_key: str
    size: int | None = None  # of manifest.json, from the listing

    @property
    def folder(self) -> str:
        return self.manifest_key[: -len(MANIFEST_NAME)]


@dataclass(frozen=True)
class LoadedManifest:
    ref: DumpRef
    manifest: Manifest
    raw: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


class DumpStore:
    """One bucket + prefix. Takes an S3 client (moto-backed in tests)."""

    def __init__(self, s3: S3Client, bucket: str, prefix: str = "") -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix

    def list_dumps(self) -> list[DumpRef]:
        """Every dump whose manifest exists, oldest first. Folders without one are ignored."""
        refs: list[DumpRef] = []
        try:
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + DUMPS_FOLDER):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    m = _MANIFEST_KEY.fullmatch(key[len(self.prefix):])
                    if m and key.startswith(self.prefix):
                        refs.append(DumpRef(m.group("id"), key, obj.get("Size")))
        except Exception as exc:  # botocore errors, mapped at the edge
            raise _mapped(exc, f"list the dumps in s3://{self.bucket}/{self.prefix}") from None
        refs.sort(key=lambda r: r.dump_id)
        return refs

    def load_manifest(self, ref: DumpRef) -> LoadedManifest:
        """Read and validate a manifest. One larger than MAX_MANIFEST_BYTES is refused
        before it is read: by the listing's size, the response's length, and while reading."""
        if ref.size is not None and ref.size > MAX_MANIFEST_BYTES:
            raise _too_big(ref, ref.size)
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=ref.manifest_key)
            length = response.get("ContentLength")
            if length is not None and length > MAX_MANIFEST_BYTES:
                response["Body"].close()
                raise _too_big(ref, length)
            body = response["Body"].read(MAX_MANIFEST_BYTES + 1)
            response["Body"].close()
        except ManifestError:
            raise
        except Exception as exc:
            raise _mapped(exc, f"read {ref.manifest_key}") from None
        if len(body) > MAX_MANIFEST_BYTES:
            raise _too_big(ref, len(body))
        manifest = parse_manifest(body, ref.manifest_key)
        if manifest.dump_id != ref.dump_id:
            raise ManifestError(f"manifest {ref.manifest_key} says it is dump {manifest.dump_id}",
                                "the dump was moved or edited by hand; delete it from S3")
        return LoadedManifest(ref, manifest, body)

    def latest(self) -> LoadedManifest | None:
        refs = self.list_dumps()
        return self.load_manifest(refs[-1]) if refs else None

    # -- writing (the agent) ---------------------------------------------------------------
    def upload_file(self, key: str, path: Path, sha256_hex: str) -> None:
        """Upload with S3's SHA-256 checksum, so S3 itself refuses a corrupted transfer;
        write-once (shared/writeonce.py): an existing object is never replaced."""
        from shared.writeonce import upload_file_once

        try:
            upload_file_once(self.s3, self.bucket, key, path, sha256_hex)
        except Exception as exc:
            raise _mapped(exc, f"upload s3://{self.bucket}/{key}") from None

    def put_manifest(self, manifest: Manifest) -> str:
        from shared.writeonce import put_once

        key = dump_folder(self.prefix, manifest.dump_id) + MANIFEST_NAME
        raw = manifest.to_json()
        try:
            put_once(self.s3, self.bucket, key, raw, hashlib.sha256(raw).hexdigest(),
                     ContentType="application/json")
        except Exception as exc:
            raise _mapped(exc, f"upload s3://{self.bucket}/{key}") from None
        return key

    # -- reading (the laptop) --------------------------------------------------------------
    def download(self, key: str, dest: Path, size: int,
                 progress: Callable[[int], None] | None = None,
                 cancelled: Callable[[], bool] = lambda: False, attempts: int = 5) -> None:
        """Fetch ``key`` into ``dest``, resuming a partial ``dest.partial`` with ranged GETs.

        A dropped connection resumes from the bytes already on disk, up to ``attempts``
        times; ``progress`` gets byte increments.
        """
        partial = dest.with_name(dest.name + ".partial")
        have = partial.stat().st_size if partial.exists() else 0
        if have > size:
            partial.unlink()
            have = 0
        if have and progress:
            progress(have)
        failures = 0
        while have < size:
            try:
                response = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={have}-")
                total = _object_size(response.get("ContentRange", ""))
                if total is not None and total != size:
                    raise IntegrityError(
                        f"s3://{self.bucket}/{key} is {total:,} bytes; its manifest says {size:,}",
                        "the object was truncated or replaced after the backup")
                body = response["Body"]
                fh = _local(partial, lambda: partial.open("ab"))
                try:
                    while True:
                        if cancelled():
                            raise Cancelled("sync cancelled during download",
                                            "nothing was applied; partial downloads resume later")
                        chunk = body.read(CHUNK)
                        if not chunk:
                            break
                        _local(partial, lambda: fh.write(chunk))  # noqa: B023 (called at once)
                        have += len(chunk)
                        if progress:
                            progress(len(chunk))
                    _local(partial, fh.flush)
                finally:
                    with contextlib.suppress(OSError):
                        fh.close()
                if have < size:
                    raise ConnectionError(f"stream ended at byte {have} of {size}")
            except (Cancelled, IntegrityError, LocalFileError):
                raise
            except Exception as exc:
                failures += 1
                if failures >= attempts or _is_client_error(exc):
                    raise _mapped(exc, f"download s3://{self.bucket}/{key}") from None
                logger.warning("download of %s interrupted at byte %d (%s); resuming",
                               key, have, exc)
                have = partial.stat().st_size if partial.exists() else 0
        partial.replace(dest)


def _local(path: Path, action: Callable[[], T]) -> T:
    """Run a local file operation; its OSError becomes a LocalFileError."""
    try:
        return action()
    except OSError as exc:
        raise LocalFileError(path, exc) from None


def _too_big(ref: DumpRef, size: int) -> ManifestError:
    return ManifestError(
        f"manifest {ref.manifest_key} is {size:,} bytes, more than the "
        f"{MAX_MANIFEST_BYTES:,} a manifest may have: it was not read",
        "the dump is damaged or was not written by market-sync's agent; delete it from S3")


def _object_size(content_range: str) -> int | None:
    """The full size from a ``Content-Range: bytes a-b/size`` header."""
    _, _, total = content_range.rpartition("/")
    return int(total) if total.isdigit() else None


def _is_client_error(exc: BaseException) -> bool:
    import botocore.exceptions

    return isinstance(exc, botocore.exceptions.ClientError)


def _mapped(exc: BaseException, action: str) -> AwsError:
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, ConnectionError | OSError) and not _is_botocore(exc):
        return AwsError(f"connection lost while trying to {action}: {exc}",
                        "check the network connection and try again")
    return aws_error(exc, action)


def _is_botocore(exc: BaseException) -> bool:
    import botocore.exceptions

    return isinstance(exc, botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError)
