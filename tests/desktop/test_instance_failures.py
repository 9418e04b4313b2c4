"""What moto cannot produce: a stuck ``pending``, throttling, expired credentials, no network.

``botocore.stub.Stubber`` for the states; a 127.0.0.1 server that always throttles shows
the standard retry mode really retries before the error is mapped.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from desktop.engine.instance import InstanceController
from shared.aws import boto_config
from shared.calendar import TradingCalendar
from shared.devtools.pgcluster import free_port
from shared.errors import AwsError
from tests.desktop.ec2_world import at, fixed

INSTANCE = "i-0abcdef1234567890"
EVENING = at("2026-11-23", 18)


def _described(state: str) -> dict[str, Any]:
    return {"Reservations": [{"Instances": [{
        "InstanceId": INSTANCE, "State": {"Code": 0, "Name": state},
        "InstanceType": "t3.small"}]}]}


@pytest.fixture
def stubbed() -> Iterator[tuple[InstanceController, Stubber]]:
    client = boto3.client("ec2", region_name="ap-south-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")  # never sends: the stubber answers
    stubber = Stubber(client)
    control = InstanceController(client, INSTANCE, calendar=TradingCalendar.load(),
                                 clock=fixed(EVENING))
    with stubber:
        yield control, stubber
    stubber.assert_no_pending_responses()


def test_stuck_pending_times_out_with_the_state_it_is_stuck_in(
        stubbed: tuple[InstanceController, Stubber]) -> None:
    control, stub = stubbed
    stub.add_response("start_instances", {"StartingInstances": []}, {"InstanceIds": [INSTANCE]})
    stub.add_response("describe_instances", _described("pending"))
    stub.add_response("describe_instances", _described("pending"))

    started = time.monotonic()
    with pytest.raises(AwsError) as failed:
        control.start(wait=True, timeout=2)

    assert "did not become running within 2 seconds" in failed.value.message
    assert "still pending" in failed.value.message
    assert time.monotonic() - started < 10


def test_an_instance_that_terminates_while_starting_says_so(
        stubbed: tuple[InstanceController, Stubber]) -> None:
    control, stub = stubbed
    stub.add_response("start_instances", {"StartingInstances": []})
    stub.add_response("describe_instances", _described("terminated"))

    with pytest.raises(AwsError, match="went terminated instead of becoming running"):
        control.start(wait=True, timeout=30)


def test_throttling_to_the_end_is_a_plain_sentence(
        stubbed: tuple[InstanceController, Stubber]) -> None:
    control, stub = stubbed
    stub.add_client_error("describe_instances", "RequestLimitExceeded", http_status_code=503)

    with pytest.raises(AwsError) as failed:
        control.state()

    assert failed.value.message == (f"AWS kept throttling requests to read the state of "
                                    f"instance {INSTANCE}")
    assert "try again" in failed.value.hint


@pytest.mark.parametrize("code", ["RequestExpired", "ExpiredToken"])
def test_expired_credentials_say_refresh_them(stubbed: tuple[InstanceController, Stubber],
                                              code: str) -> None:
    control, stub = stubbed
    stub.add_client_error("stop_instances", code, http_status_code=400)

    with pytest.raises(AwsError) as failed:
        control.stop()

    assert "credentials have expired" in failed.value.message
    assert "sso login" in failed.value.hint


def test_expiry_during_a_wait_is_mapped_not_a_waiter_error(
        stubbed: tuple[InstanceController, Stubber]) -> None:
    control, stub = stubbed
    stub.add_response("stop_instances", {"StoppingInstances": []})
    stub.add_client_error("describe_instances", "RequestExpired", http_status_code=400)

    with pytest.raises(AwsError, match="credentials have expired .*wait for instance"):
        control.stop(wait=True, timeout=30)


def test_no_permission_names_the_action(stubbed: tuple[InstanceController, Stubber]) -> None:
    control, stub = stubbed
    stub.add_client_error("start_instances", "UnauthorizedOperation", http_status_code=403)

    with pytest.raises(AwsError, match=f"AWS refused permission to start instance {INSTANCE}"):
        control.start()


def test_starting_while_stopping_says_wait(stubbed: tuple[InstanceController, Stubber]) -> None:
    control, stub = stubbed
    stub.add_client_error("start_instances", "IncorrectInstanceState", http_status_code=400)

    with pytest.raises(AwsError) as failed:
        control.start()

    assert "state that does not allow it" in failed.value.message
    assert "finished starting or stopping" in failed.value.hint


class _Throttler(http.server.BaseHTTPRequestHandler):
    """EC2's Query API answering every request with RequestLimitExceeded."""

    calls = 0
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            b"<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
            b"</Error></Errors><RequestID>t-1</RequestID></Response>")

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(503)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_throttling_is_retried_by_the_standard_mode_before_it_is_reported() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Throttler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = boto3.client("ec2", region_name="ap-south-1",
                              endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
                              aws_access_key_id="testing", aws_secret_access_key="testing",
                              config=boto_config(max_attempts=3))
        control = InstanceController(client, INSTANCE, calendar=TradingCalendar.load())

        with pytest.raises(AwsError, match="AWS kept throttling"):
            control.state()
    finally:
        server.shutdown()
        server.server_close()

    # In a client Config, retries["max_attempts"] counts the retries after the first call.
    assert _Throttler.calls == 1 + 3


def test_no_network_is_cannot_reach_aws() -> None:
    client = boto3.client("ec2", region_name="ap-south-1",
                          endpoint_url=f"http://127.0.0.1:{free_port()}",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=boto_config(max_attempts=1))
    control = InstanceController(client, INSTANCE, calendar=TradingCalendar.load())

    with pytest.raises(AwsError) as failed:
        control.state()

    assert failed.value.message.startswith("cannot reach AWS (while trying to read the state")
    assert "network" in failed.value.hint
