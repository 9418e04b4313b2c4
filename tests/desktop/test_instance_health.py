"""The app health probe against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from desktop.engine.instance import InstanceController
from shared.calendar import TradingCalendar
from shared.devtools.pgcluster import free_port
from tests.desktop.ec2_world import AppServer, at, fixed

NOW = at("2026-11-23", 11)


@pytest.fixture
def app() -> Iterator[AppServer]:
    with AppServer(slow_seconds=2.0) as server:
        yield server


def probe(url: str | None, ip: str | None = None, timeout: float = 1.0) -> Any:
    control = InstanceController(None, "i-unused",  # type: ignore[arg-type]
                                 health_url=url, calendar=TradingCalendar.load(),
                                 clock=fixed(NOW), health_timeout=timeout)
    return control.health(ip)


def test_200_is_healthy(app: AppServer) -> None:
    health = probe(app.url("/ok"))

    assert health.ok and health.status == 200 and health.detail == "HTTP 200"
    assert health.checked_at == NOW


def test_500_is_unhealthy_with_its_status(app: AppServer) -> None:
    health = probe(app.url("/fail"))

    assert not health.ok and health.status == 500 and health.detail == "HTTP 500"


def test_connection_refused_says_the_app_is_not_listening() -> None:
    health = probe(f"http://127.0.0.1:{free_port()}/health")

    assert not health.ok and health.status is None
    assert "connection refused" in health.detail


def test_a_slow_app_is_unhealthy_after_the_short_timeout(app: AppServer) -> None:
    started = time.monotonic()

    health = probe(app.url("/slow"), timeout=0.3)

    assert not health.ok and health.status is None
    assert health.detail == "no answer within 0.3 s"
    assert time.monotonic() - started < 1.5


def test_ip_placeholder_becomes_the_public_address(app: AppServer) -> None:
    health = probe(app.url("/ok", host="{ip}"), ip="127.0.0.1")

    assert health.ok and app.requests == 1


def test_ip_placeholder_without_an_address_does_not_call_out(app: AppServer) -> None:
    health = probe(app.url("/ok", host="{ip}"), ip=None)

    assert not health.ok and "no public address" in health.detail and app.requests == 0


def test_no_health_url_is_unhealthy_not_an_error() -> None:
    health = probe(None)

    assert not health.ok and health.detail == "no health URL configured"


def test_only_http_and_https_are_fetched(tmp_path: Any) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("x")

    health = probe(secret.as_uri())

    assert not health.ok and "not http or https" in health.detail
