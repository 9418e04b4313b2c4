"""shared/aws.py: clients built in one place, AWS failures mapped to plain words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions as bex
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.retries.standard import ExponentialBackoff

from shared.aws import AwsClients, aws_error, boto_config
from shared.config import AwsConfig
from shared.devtools.motoserver import MotoServer
from shared.errors import AwsError

ACTION = "list the dumps in S3"


def client_error(code: str, message: str = "", operation: str = "ListObjectsV2") -> Any:
    return bex.ClientError({"Error": {"Code": code, "Message": message}}, operation)


def config(**changes: Any) -> AwsConfig:
    values: dict[str, Any] = {"region": "ap-south-1", "bucket": "b"}
    values.update(changes)
    return AwsConfig(**values)


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """AWS config and credentials files of this test only, with one named profile."""
    (tmp_path / "config").write_text("[profile market-sync]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text(
        "[market-sync]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


# -- clients ---------------------------------------------------------------------------------

def test_client_uses_the_configured_endpoint_and_region(aws_files: Path) -> None:
    s3 = AwsClients(config(endpoint_url="http://127.0.0.1:5000")).s3()

    assert s3.meta.endpoint_url == "http://127.0.0.1:5000"
    assert s3.meta.region_name == "ap-south-1"


def test_client_without_endpoint_uses_the_regional_aws_endpoint(aws_files: Path) -> None:
    ec2 = AwsClients(config(region="eu-west-1")).ec2()

    assert ec2.meta.endpoint_url == "https://ec2.eu-west-1.amazonaws.com"


def test_configured_region_wins_over_the_profile_region(aws_files: Path) -> None:
    s3 = AwsClients(config(profile="market-sync")).s3()

    assert s3.meta.region_name == "ap-south-1"


def test_clients_use_standard_retry_mode(aws_files: Path) -> None:
    s3 = AwsClients(config()).s3()

    retries: dict[str, Any] = getattr(s3.meta.config, "retries")  # noqa: B009 (untyped)

    assert retries["mode"] == "standard"


def test_boto_config_is_standard_retries_with_bounded_timeouts() -> None:
    cfg: Any = boto_config(max_attempts=3)

    assert cfg.retries == {"mode": "standard", "max_attempts": 3}
    assert (cfg.connect_timeout, cfg.read_timeout) == (10, 60)


@pytest.mark.parametrize("service", ["s3", "ec2", "cloudformation", "ssm", "sns", "cloudwatch",
                                     "scheduler", "iam", "sts"])
def test_each_service_client_is_made_for_its_service(aws_files: Path, service: str) -> None:
    client = getattr(AwsClients(config(endpoint_url="http://127.0.0.1:5000")), service)()

    assert client.meta.service_model.service_name == service
    assert client.meta.endpoint_url == "http://127.0.0.1:5000"


def test_session_uses_the_configured_profile(aws_files: Path) -> None:
    session = AwsClients(config(profile="market-sync")).session

    assert session.profile_name == "market-sync"
    credentials = session.get_credentials()
    assert credentials is not None and credentials.access_key == "AKIAPROFILE"


def test_session_is_made_once(aws_files: Path) -> None:
    clients = AwsClients(config())

    assert clients.session is clients.session


def test_given_session_is_used_as_is(aws_files: Path) -> None:
    import boto3

    session = boto3.Session(region_name="us-east-1")

    assert AwsClients(config(), session=session).session is session


def test_missing_profile_is_an_aws_error_naming_it(aws_files: Path) -> None:
    with pytest.raises(AwsError, match="'nobody' does not exist") as info:
        _ = AwsClients(config(profile="nobody")).session

    assert "profile" in info.value.hint


# -- error mapping ---------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "words"), [
    ("AccessDenied", "AWS refused permission to list the dumps in S3"),
    ("AccessDeniedException", "AWS refused permission to list the dumps in S3"),
    ("UnauthorizedOperation", "AWS refused permission to list the dumps in S3"),
    ("NoSuchBucket", "the S3 bucket does not exist"),
    ("ExpiredToken", "the AWS credentials have expired"),
    ("ExpiredTokenException", "the AWS credentials have expired"),
    ("InvalidClientTokenId", "AWS does not recognise the access key"),
    ("SignatureDoesNotMatch", "AWS rejected the secret key"),
    ("InvalidInstanceID.NotFound", "the EC2 instance does not exist in this region"),
    ("InvalidInstanceID.Malformed", "the instance id is malformed"),
])
def test_known_client_error_is_said_in_plain_words(code: str, words: str) -> None:
    error = aws_error(client_error(code, "raw AWS text"), ACTION)

    assert isinstance(error, AwsError)
    assert words in error.message
    assert ACTION in error.message
    assert code not in error.message
    assert error.hint


@pytest.mark.parametrize("code", ["Throttling", "ThrottlingException", "RequestLimitExceeded",
                                  "SlowDown", "TooManyRequestsException", "ThrottledException",
                                  "RequestThrottled", "RequestThrottledException",
                                  "EC2ThrottledException"])
def test_throttling_codes_say_aws_kept_throttling(code: str) -> None:
    error = aws_error(client_error(code), ACTION)

    assert error.message == f"AWS kept throttling requests to {ACTION}"
    assert "try again" in error.hint


def test_unknown_client_error_keeps_its_code_and_message() -> None:
    error = aws_error(client_error("InvalidParameterCombination", "no can do"), ACTION)

    assert error.message == (
        f"AWS error while trying to {ACTION}: InvalidParameterCombination: no can do")


def test_unknown_client_error_without_message_still_says_something() -> None:
    error = aws_error(client_error("404"), ACTION)

    assert "404" in error.message
    assert ACTION in error.message


def test_no_credentials_says_so_and_where_to_set_them() -> None:
    error = aws_error(bex.NoCredentialsError(), ACTION)

    assert error.message == f"no AWS credentials found (while trying to {ACTION})"
    assert "profile" in error.hint


def test_partial_credentials_are_no_credentials() -> None:
    error = aws_error(bex.PartialCredentialsError(provider="env", cred_var="secret"), ACTION)

    assert "no AWS credentials found" in error.message


@pytest.mark.parametrize("exc", [
    bex.EndpointConnectionError(endpoint_url="https://s3.ap-south-1.amazonaws.com/b"),
    bex.ConnectTimeoutError(endpoint_url="https://ec2.ap-south-1.amazonaws.com/"),
    bex.ReadTimeoutError(endpoint_url="https://ec2.ap-south-1.amazonaws.com/"),
])
def test_unreachable_endpoint_says_aws_cannot_be_reached(exc: Exception) -> None:
    error = aws_error(exc, ACTION)

    assert error.message.startswith(f"cannot reach AWS (while trying to {ACTION})")
    assert "network" in error.hint


def test_missing_profile_error_is_mapped() -> None:
    error = aws_error(bex.ProfileNotFound(profile="nobody"), ACTION)

    assert "nobody" in error.message


def test_other_botocore_error_names_the_action() -> None:
    error = aws_error(bex.ParamValidationError(report="Bucket is required"), ACTION)

    assert error.message.startswith(f"AWS call failed while trying to {ACTION}")
    assert "Bucket is required" in error.message


def test_a_non_aws_exception_is_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        aws_error(ZeroDivisionError("a bug"), ACTION)


# -- real calls against the moto server ------------------------------------------------------

def test_missing_bucket_on_a_real_call_maps_to_no_such_bucket(moto_server: MotoServer) -> None:
    s3 = AwsClients(config(endpoint_url=moto_server.endpoint_url)).s3()

    with pytest.raises(bex.ClientError) as info:
        s3.list_objects_v2(Bucket="market-sync-no-such-bucket")
    error = aws_error(info.value, ACTION)

    assert error.message == f"the S3 bucket does not exist (while trying to {ACTION})"


def test_missing_instance_on_a_real_call_maps_to_instance_not_found(
        moto_server: MotoServer) -> None:
    ec2 = AwsClients(config(endpoint_url=moto_server.endpoint_url)).ec2()

    with pytest.raises(bex.ClientError) as info:
        ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    error = aws_error(info.value, "read the instance state")

    assert "the EC2 instance does not exist in this region" in error.message


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def test_throttled_call_is_retried_until_it_succeeds(
        moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    s3 = AwsClients(config(endpoint_url=moto_server.endpoint_url)).s3()
    attempts: list[dt.datetime] = []

    def throttle_twice(request: Any, **_: Any) -> Any:
        attempts.append(dt.datetime.now())
        if len(attempts) > 2:
            return None  # the real request goes to moto
        body = b"<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"
        return AWSResponse(request.url, 503, HTTPHeaders(), _Body(body))

    s3.meta.events.register("before-send.s3.ListBuckets", throttle_twice)

    s3.list_buckets()

    assert len(attempts) == 3
