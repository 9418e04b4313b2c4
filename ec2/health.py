"""Is the market app answering? An HTTP GET of its health URL on the instance itself."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.errors import ConfigError

logger = logging.getLogger(__name__)

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Health:
    url: str
    healthy: bool
    status: int | None
    detail: str
    seconds: float

    def describe(self) -> str:
        state = "healthy" if self.healthy else "unhealthy"
        return f"the app is {state}: {self.url} → {self.detail} ({self.seconds:.2f}s)"


def check_url(url: str) -> str:
    """Plain HTTP only to this machine; anything else must be https."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS):
        return url
    raise ConfigError(f"health URL {url!r} is neither https nor on this machine",
                      "use http://127.0.0.1:<port>/<path> on the instance, or an https URL")


def probe(url: str, timeout: float = 5.0) -> Health:
    """One GET; 2xx is healthy."""
    started = time.monotonic()
    status: int | None = None
    try:
        with urllib.request.urlopen(check_url(url), timeout=timeout) as response:
            status = int(response.status)
            response.read(4096)
        detail = f"HTTP {status}"
    except urllib.error.HTTPError as exc:
        status, detail = exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        detail = f"no answer ({reason})"
    healthy = status is not None and 200 <= status < 300
    return Health(url, healthy, status, detail, time.monotonic() - started)


def wait_healthy(url: str, wait_seconds: float, *, interval: float = 5.0, timeout: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> Health:
    """Probe until healthy or ``wait_seconds`` have passed; the last probe's result."""
    deadline = time.monotonic() + wait_seconds
    while True:
        health = probe(url, timeout)
        if health.healthy or time.monotonic() >= deadline:
            return health
        logger.info("%s; trying again in %.0fs", health.describe(), interval)
        sleep(interval)
