"""EC2's instance metadata service, IMDSv2 only: a session token first, then GETs.

The base URL comes from ``[agent] imds_url`` (default ``http://169.254.169.254``,
link-local plain HTTP by AWS's design); tests point it at a server on 127.0.0.1.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request

from shared.errors import MarketSyncError

logger = logging.getLogger(__name__)

TOKEN_TTL_SECONDS = 300


class MetadataError(MarketSyncError):
    """The instance metadata service could not be reached or refused the request."""


class TagsNotInMetadata(MetadataError):
    """The instance's tags are not exposed in its metadata (InstanceMetadataTags disabled)."""


class Imds:
    """A small IMDSv2 client: ``PUT /latest/api/token``, then ``GET`` with the token."""

    def __init__(self, base_url: str, *, timeout: float = 2.0, attempts: int = 4,
                 backoff: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._token: str | None = None
        self._token_expires = 0.0

    def _open(self, request: urllib.request.Request) -> tuple[int, str]:
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return int(response.status), response.read().decode("utf-8")
            except urllib.error.HTTPError as exc:
                if exc.code in (404,):
                    return 404, ""
                if exc.code == 401:
                    self._token = None  # expired token: the caller asks again
                    return 401, ""
                last = exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = exc
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff * (attempt + 1))
        raise MetadataError(
            f"the instance metadata service at {self.base_url} did not answer: {last}",
            "this command runs on the EC2 instance; check that IMDSv2 is enabled "
            "(HttpTokens=required, HttpEndpoint=enabled)",
        )

    def token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_expires:
            return self._token
        request = urllib.request.Request(
            f"{self.base_url}/latest/api/token", method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        status, body = self._open(request)
        if status != 200 or not body:
            raise MetadataError(f"the metadata service refused a session token (HTTP {status})",
                                "IMDSv2 must be enabled on the instance")
        self._token = body.strip()
        self._token_expires = time.monotonic() + TOKEN_TTL_SECONDS - 30
        return self._token

    def get(self, path: str) -> str | None:
        """The value at ``/latest/<path>``, or None where the service has nothing (404)."""
        for _ in range(2):
            request = urllib.request.Request(
                f"{self.base_url}/latest/{path.lstrip('/')}",
                headers={"X-aws-ec2-metadata-token": self.token()},
            )
            status, body = self._open(request)
            if status == 401:
                continue
            return None if status == 404 else body
        raise MetadataError("the metadata service kept refusing the session token")

    def instance_id(self) -> str:
        value = self.get("meta-data/instance-id")
        if not value:
            raise MetadataError("the metadata service has no instance id")
        return value.strip()

    def tag(self, key: str) -> str | None:
        """The instance's tag ``key``; :class:`TagsNotInMetadata` if tags are not exposed."""
        keys = self.get("meta-data/tags/instance")
        if keys is None:
            raise TagsNotInMetadata(
                "the instance's tags are not in its metadata",
                "enable InstanceMetadataTags in the instance's metadata options",
            )
        if key not in keys.split():
            return None
        value = self.get("meta-data/tags/instance/" + urllib.parse.quote(key, safe=":"))
        return None if value is None else value.strip()
