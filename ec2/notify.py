"""Tell the trader a unit failed: SNS, with the tail of the unit's journal.

The journal tail is redacted (anything that looks like a password, secret or
token is cut) before it leaves the instance.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.calendar import IST
from shared.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

logger = logging.getLogger(__name__)

SUBJECT_LIMIT = 100  # SNS: at most 100 printable ASCII characters
MESSAGE_LIMIT = 200_000  # under SNS's 256 KB

_SECRET = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|access[_-]?key|authorization)"
    r"(\s*[=:]\s*|\"\s*:\s*\"?)([^\s\"',;&]+)"
)
_URL_PASSWORD = re.compile(r"(://[^/:@\s]+:)[^/@\s]+@")
_AWS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")


def redact(text: str) -> str:
    text = _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = _URL_PASSWORD.sub(r"\1[redacted]@", text)
    return _AWS_KEY.sub("[redacted-key]", text)


def journal_tail(unit: str, lines: int = 40) -> str:
    """The last ``lines`` journal lines of ``unit``, or why they are not available."""
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        return "(journalctl is not available on this machine)"
    try:
        done = subprocess.run(
            [journalctl, f"--unit={unit}", f"--lines={lines}", "--no-pager",
             "--output=short-iso", "--boot"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(could not read the journal: {exc})"
    if done.returncode != 0:
        return f"(journalctl failed: {done.stderr.strip()})"
    return done.stdout


@dataclass(frozen=True)
class FailureNotice:
    unit: str
    instance_id: str
    at: dt.datetime
    journal: str

    @property
    def subject(self) -> str:
        text = f"market-sync: {self.unit} failed on {self.instance_id}"
        text = text.encode("ascii", "replace").decode("ascii")
        return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 1] + "~"

    @property
    def message(self) -> str:
        body = (
            f"{self.unit} failed on the market-sync instance {self.instance_id} "
            f"at {self.at.astimezone(IST):%Y-%m-%d %H:%M:%S} IST.\n\n"
            f"The last lines of its journal:\n\n{redact(self.journal)}\n"
            f"On the instance (Session Manager): journalctl -u {self.unit}\n"
        )
        return body if len(body) <= MESSAGE_LIMIT else body[-MESSAGE_LIMIT:]


class Notifier:
    def __init__(self, sns: SNSClient, topic_arn: str | None) -> None:
        self.sns = sns
        self.topic_arn = topic_arn

    def send(self, notice: FailureNotice) -> str:
        """Publish ``notice``; returns the SNS message id."""
        message_id = self.publish(notice.subject, notice.message)
        logger.info("notified %s about %s", self.topic_arn, notice.unit)
        return message_id

    def publish(self, subject: str, message: str) -> str:
        """Publish one notice (subject cut to SNS's limit, message redacted)."""
        subject = subject.encode("ascii", "replace").decode("ascii")
        if len(subject) > SUBJECT_LIMIT:
            subject = subject[: SUBJECT_LIMIT - 1] + "~"
        message = redact(message)[-MESSAGE_LIMIT:]
        if not self.topic_arn:
            raise ConfigError("no SNS topic to notify: [agent] sns_topic_arn is not set",
                              "re-run `market-sync deploy-agent` to write it into agent.toml")
        from botocore.exceptions import BotoCoreError, ClientError

        from shared.aws import aws_error

        try:
            response = self.sns.publish(TopicArn=self.topic_arn, Subject=subject,
                                        Message=message)
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, "publish the notice to SNS") from None
        return response["MessageId"]
