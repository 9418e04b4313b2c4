"""The one place that builds boto3 sessions and clients, and maps AWS errors.

Services receive an :class:`AwsClients` (or a client made by it) in their
constructor: no module-level clients, no cached singletons, so tests can point
everything at a moto server with ``endpoint_url``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.config import AwsConfig
from shared.errors import AwsError

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config as BotoConfig
    from mypy_boto3_ce import CostExplorerClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

    from shared.credentials import Identity
    from shared.secrets import AwsKeys

# AccessDenied in the words of each service (S3's HEAD answers a bare 403).
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                          "UnauthorizedAccess", "403", "Forbidden"})
_IDENTITY = "MarketSyncIdentity"  # where a client's identity rides on an error response
_IDENTITY_HINT = "MarketSyncIdentityHint"


def boto_config(max_attempts: int = 6) -> BotoConfig:
    """Standard retries (throttling and transient errors back off), bounded timeouts."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
        tcp_keepalive=True,
        user_agent_extra="market-sync",
    )


class AwsClients:
    """Clients for one account/region/endpoint and one identity, made on first use.

    ``identity`` (shared/credentials.py) says who the clients act as; an AccessDenied
    from any of them names it (:func:`aws_error`).
    """

    def __init__(self, config: AwsConfig, session: boto3.Session | None = None, *,
                 identity: Identity | None = None) -> None:
        self.config = config
        self._session = session
        self.identity = identity

    @classmethod
    def with_keys(cls, config: AwsConfig, keys: AwsKeys,
                  identity: Identity | None = None) -> AwsClients:
        """Clients signed with access keys from the OS keyring (never from a file)."""
        import boto3

        session = boto3.Session(aws_access_key_id=keys.access_key_id,
                                aws_secret_access_key=keys.secret_access_key,
                                region_name=config.region)
        return cls(config, session, identity=identity)

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            import boto3
            import botocore.exceptions

            try:
                self._session = boto3.Session(
                    profile_name=self.config.profile, region_name=self.config.region
                )
            except botocore.exceptions.ProfileNotFound:
                raise AwsError(
                    f"the AWS profile {self.config.profile!r} does not exist",
                    "check `profile` under [aws] in the config, or `aws configure list-profiles`",
                ) from None
        return self._session

    def client(self, service: str, region: str | None = None) -> Any:
        made = self.session.client(
            service,  # type: ignore[call-overload]
            region_name=region or self.config.region,
            endpoint_url=self.config.endpoint_url,
            config=boto_config(),
        )
        made.meta.events.register("before-parse", refuse_web_pages)
        if self.identity is not None:
            made.meta.events.register("after-call", self._mark_denied)
        return made

    def _mark_denied(self, parsed: dict[str, Any], **_: Any) -> None:
        """An error response of these clients carries their identity into ClientError."""
        error = parsed.get("Error") if isinstance(parsed, dict) else None
        if self.identity is not None and isinstance(error, dict) \
                and str(error.get("Code", "")) in DENIED_CODES:
            error[_IDENTITY] = self.identity.label
            error[_IDENTITY_HINT] = self.identity.hint

    def s3(self) -> S3Client:
        return self.client("s3")  # type: ignore[no-any-return]

    def ec2(self) -> EC2Client:
        return self.client("ec2")  # type: ignore[no-any-return]

    def cloudformation(self) -> CloudFormationClient:
        return self.client("cloudformation")  # type: ignore[no-any-return]

    def ssm(self) -> SSMClient:
        return self.client("ssm")  # type: ignore[no-any-return]

    def sns(self) -> SNSClient:
        return self.client("sns")  # type: ignore[no-any-return]

    def cloudwatch(self) -> CloudWatchClient:
        return self.client("cloudwatch")  # type: ignore[no-any-return]

    def scheduler(self) -> EventBridgeSchedulerClient:
        return self.client("scheduler")  # type: ignore[no-any-return]

    def iam(self) -> IAMClient:
        return self.client("iam")  # type: ignore[no-any-return]

    def sts(self) -> STSClient:
        return self.client("sts")  # type: ignore[no-any-return]

    def ce(self) -> CostExplorerClient:
        """Cost Explorer: one endpoint for the account, in us-east-1."""
        return self.client("ce", "us-east-1")  # type: ignore[no-any-return]

    def budgets(self) -> Any:
        """AWS Budgets: one endpoint for the account, in us-east-1 (no type stubs here)."""
        return self.client("budgets", "us-east-1")


NOT_AWS_HINT = ("something between this laptop and AWS answers in its place: sign in to the "
                "network (hotel or airport Wi-Fi), check the proxy, or check endpoint_url "
                "under [aws]")


def refuse_web_pages(operation_model: Any, response_dict: dict[str, Any],
                     **_: Any) -> None:
    """botocore's ``before-parse`` hook: a web page where AWS should answer (a captive
    portal, a proxy's error page) is said so, instead of being parsed as an empty answer
    (EC2's parser reads an HTML page as "no such instance")."""
    if getattr(operation_model, "has_streaming_output", False):
        return  # an S3 object's own content type is not the answer's
    body = response_dict.get("body") or b""
    start = body[:200].lstrip().lower() if isinstance(body, bytes) else b""
    # By the body, not the Content-Type: some endpoints (moto) label empty answers text/html.
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<title")):
        name = getattr(operation_model, "name", "the call")
        service = getattr(getattr(operation_model, "service_model", None), "service_id", "")
        raise AwsError(f"the AWS endpoint answered {service} {name} with a web page, not AWS"
                       .replace("  ", " "), NOT_AWS_HINT)


_CODE_MESSAGES: dict[str, tuple[str, str]] = {
    "AccessDenied": ("AWS refused permission to {action}",
                     "the credentials in use lack a permission; re-run `market-sync provision` "
                     "to refresh the operator policy, or check the profile"),
    "UnauthorizedOperation": ("AWS refused permission to {action}",
                              "the credentials in use lack a permission for this instance"),
    "NoSuchBucket": ("the S3 bucket does not exist (while trying to {action})",
                     "check `bucket` under [aws] in the config"),
    "ExpiredToken": ("the AWS credentials have expired (while trying to {action})",
                     "refresh them, e.g. `aws sso login --profile …`, and try again"),
    "ExpiredTokenException": ("the AWS credentials have expired (while trying to {action})",
                              "refresh them, e.g. `aws sso login --profile …`, and try again"),
    "InvalidClientTokenId": ("AWS does not recognise the access key (while trying to {action})",
                             "check the access key in the keyring or the AWS profile"),
    "SignatureDoesNotMatch": ("AWS rejected the secret key (while trying to {action})",
                              "check the secret key in the keyring or the AWS profile"),
    "InvalidInstanceID.NotFound": ("the EC2 instance does not exist in this region "
                                   "(while trying to {action})",
                                   "check `instance_id` and `region` under [aws] in the config"),
    "InvalidInstanceID.Malformed": ("the instance id is malformed (while trying to {action})",
                                    "it looks like i-0123456789abcdef0"),
    "InsufficientCapabilitiesException": (
        "CloudFormation needs permission to make IAM roles (while trying to {action})",
        "use credentials that may create IAM roles and policies (an administrator profile)"),
    "AlreadyExistsException": ("it already exists (while trying to {action})",
                               "run `market-sync provision` again: it updates what exists"),
    "Throttling": ("AWS kept throttling requests to {action}", "wait a minute and try again"),
    "ThrottlingException": ("AWS kept throttling requests to {action}",
                            "wait a minute and try again"),
    "RequestLimitExceeded": ("AWS kept throttling requests to {action}",
                             "wait a minute and try again"),
    # S3 throttles with SlowDown; other services with these (botocore's own list).
    **dict.fromkeys(
        ("SlowDown", "TooManyRequestsException", "ThrottledException", "RequestThrottled",
         "RequestThrottledException", "EC2ThrottledException"),
        ("AWS kept throttling requests to {action}", "wait a minute and try again"),
    ),
    # EC2's words for expired or unusable credentials, and for a start/stop that does not fit.
    "RequestExpired": ("the AWS credentials have expired (while trying to {action})",
                       "refresh them, e.g. `aws sso login --profile …`, and try again"),
    "AuthFailure": ("AWS did not accept the credentials (while trying to {action})",
                    "check the access key in the keyring or the AWS profile"),
    "IncorrectInstanceState": ("EC2 refused to {action}: the instance is in a state that "
                               "does not allow it",
                               "wait until it has finished starting or stopping, then try "
                               "again"),
    "AccessDeniedException": ("AWS refused permission to {action}",
                              "the credentials in use lack a permission; re-run "
                              "`market-sync provision` to refresh the operator policy"),
}


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (``""`` for anything else)."""
    import botocore.exceptions

    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def aws_error(exc: BaseException, action: str) -> AwsError:
    """Turn a botocore exception into an :class:`AwsError` in the trader's words."""
    import botocore.exceptions as bex

    if isinstance(exc, bex.ClientError):
        error: dict[str, Any] = dict(exc.response.get("Error", {}))
        code = str(error.get("Code", ""))
        if code in DENIED_CODES and _IDENTITY in error:
            return AwsError(f"AWS refused {error[_IDENTITY]} permission to {action}",
                            str(error.get(_IDENTITY_HINT, "")))
        if code in _CODE_MESSAGES:
            message, hint = _CODE_MESSAGES[code]
            return AwsError(message.format(action=action), hint)
        text = error.get("Message", "") or str(exc)
        return AwsError(f"AWS error while trying to {action}: {code}: {text}")
    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return AwsError(f"no AWS credentials found (while trying to {action})",
                        "run `market-sync provision --profile ADMIN` once: it gives this "
                        "laptop its own operator key in the OS keyring")
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectTimeoutError
                  | bex.ReadTimeoutError | bex.ConnectionClosedError):
        return AwsError(f"cannot reach AWS (while trying to {action}): {exc}",
                        "check the network connection and try again")
    if isinstance(exc, bex.ProfileNotFound):
        return AwsError(str(exc), "check `profile` under [aws] in the config")
    if isinstance(exc, bex.BotoCoreError):
        return AwsError(f"AWS call failed while trying to {action}: {exc}")
    from botocore.parsers import ResponseParserError

    if isinstance(exc, ResponseParserError):
        return AwsError(f"the AWS endpoint answered with something that is not AWS (while "
                        f"trying to {action})", NOT_AWS_HINT)
    raise exc
