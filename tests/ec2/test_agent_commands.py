"""market-sync-agent's instance commands against real HTTP: a fake IMDSv2 on 127.0.0.1
and the moto server (SNS, EC2 tags, CloudWatch)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from ec2.cli import main
from ec2.guard import KEEP_RUNNING_TAG, Moment, decide
from ec2.health import wait_healthy
from ec2.imds import Imds, MetadataError
from ec2.notify import redact
from shared.calendar import IST, TradingCalendar
from shared.devtools.motoserver import MotoServer
from tests.ec2.fake_imds import FakeImds, running_imds
from tests.ec2.tools import write_stub

REGION = "ap-south-1"


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    with running_imds() as server:
        yield server


def write_config(path: Path, moto: MotoServer, imds: FakeImds, *, topic: str | None = None,
                 instance_id: str | None = None, extra: str = "") -> Path:
    lines = ["[aws]", f'region = "{REGION}"', 'bucket = "market-data-b"',
             f'endpoint_url = "{moto.endpoint_url}"']
    if instance_id:
        lines.append(f'instance_id = "{instance_id}"')
    lines += ["[database]", 'conninfo = "host=127.0.0.1 dbname=market"', "[agent]",
              f'imds_url = "{imds.url}"']
    if topic:
        lines.append(f'sns_topic_arn = "{topic}"')
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def client(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=moto.endpoint_url)


# --- IMDSv2 -----------------------------------------------------------------------------

def test_imds_asks_for_a_token_then_reads_with_it(imds: FakeImds) -> None:
    metadata = Imds(imds.url)
    assert metadata.instance_id() == "i-0123456789abcdef0"
    assert imds.requests[0] == "PUT /latest/api/token"
    assert imds.requests[1] == "GET /latest/meta-data/instance-id"


def test_imds_reads_an_instance_tag_with_a_colon(imds: FakeImds) -> None:
    imds.tags = {KEEP_RUNNING_TAG: "2026-11-24T18:00+05:30", "Name": "market"}
    assert Imds(imds.url).tag(KEEP_RUNNING_TAG) == "2026-11-24T18:00+05:30"
    assert Imds(imds.url).tag("absent") is None


def test_imds_unreachable_is_a_clear_error() -> None:
    with pytest.raises(MetadataError, match="did not answer"):
        Imds("http://127.0.0.1:9", timeout=0.2, attempts=2, backoff=0.01).instance_id()


# --- guard ------------------------------------------------------------------------------

CALENDAR = TradingCalendar.load()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=IST)


@pytest.mark.parametrize(("when", "moment", "power_off"), [
    ("2026-11-23 08:50", Moment.BOOT, False),          # Monday, trading
    ("2026-11-24 08:50", Moment.BOOT, True),           # Guru Nanak Jayanti
    ("2026-11-28 10:00", Moment.BOOT, True),           # Saturday
    ("2026-11-08 17:00", Moment.BOOT, False),          # Sunday, Muhurat trading
    ("2026-11-23 16:05", Moment.AFTER_BACKUP, True),   # the day's backup is done
    ("2026-11-23 08:51", Moment.AFTER_BACKUP, False),  # a caught-up backup in the morning
    ("2026-11-24 08:51", Moment.AFTER_BACKUP, True),   # a holiday
])
def test_guard_decides_by_the_calendar(when: str, moment: Moment, power_off: bool) -> None:
    assert decide(at(when), CALENDAR, None, moment).power_off is power_off


def test_a_future_keep_running_tag_keeps_the_instance_up_and_a_past_one_does_not() -> None:
    holiday = at("2026-11-24 08:50")
    assert not decide(holiday, CALENDAR, at("2026-11-24 18:00"), Moment.BOOT).power_off
    assert decide(holiday, CALENDAR, at("2026-11-24 08:00"), Moment.BOOT).power_off


def test_guard_cli_powers_off_on_the_holiday(tmp_path: Path, moto_server: MotoServer,
                                             imds: FakeImds,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "agent.toml", moto_server, imds)
    assert main(["--config", str(config), "guard", "--at", "2026-11-24T08:50+05:30"]) == 0
    assert "Prakash Gurpurb Sri Guru Nanak Dev" in capsys.readouterr().out
    assert main(["--config", str(config), "guard", "--at", "2026-11-23T08:50+05:30"]) == 1


def test_guard_cli_honours_the_tag_from_imds(tmp_path: Path, moto_server: MotoServer,
                                             imds: FakeImds,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    imds.tags = {KEEP_RUNNING_TAG: "2026-11-24T20:00+05:30"}
    config = write_config(tmp_path / "agent.toml", moto_server, imds)
    assert main(["--config", str(config), "guard", "--at", "2026-11-24T08:50+05:30"]) == 1
    assert "keep-running-until is 2026-11-24 20:00 IST" in capsys.readouterr().out


def test_guard_falls_back_to_ec2_tags_when_imds_has_none(tmp_path: Path,
                                                         moto_server: MotoServer,
                                                         imds: FakeImds) -> None:
    ec2 = client(moto_server, "ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    instance_id = instance["InstanceId"]
    ec2.create_tags(Resources=[instance_id],
                    Tags=[{"Key": KEEP_RUNNING_TAG, "Value": "2026-11-24T20:00"}])
    imds.tags, imds.instance_id = None, instance_id  # InstanceMetadataTags disabled
    config = write_config(tmp_path / "agent.toml", moto_server, imds)
    assert main(["--config", str(config), "guard", "--at", "2026-11-24T08:50+05:30"]) == 1
    assert main(["--config", str(config), "guard", "--at", "2026-11-24T21:00+05:30"]) == 0


def test_an_unreadable_tag_powers_off_and_tells_the_trader_why(
        tmp_path: Path, moto_server: MotoServer, imds: FakeImds,
        capsys: pytest.CaptureFixture[str]) -> None:
    topic, queue = _sqs_subscribed_topic(moto_server)
    imds.tags = {KEEP_RUNNING_TAG: "tonight"}
    config = write_config(tmp_path / "agent.toml", moto_server, imds, topic=topic)
    for extra in ([], ["--periodic"], ["--after-backup"]):
        code = main(["--config", str(config), "guard", *extra,
                     "--at", "2026-11-23T08:50+05:30"])  # a trading day, yet: power off
        assert code == 0, extra
        assert "cannot decide, powering off" in capsys.readouterr().err
    messages = _received(moto_server, queue)
    assert len(messages) == 3 and all("not an ISO time" in m["Message"] for m in messages)


def test_the_guard_powers_off_when_nothing_answers(tmp_path: Path, moto_server: MotoServer,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'[aws]\nregion = "{REGION}"\nbucket = "data-b"\nendpoint_url = '
                      f'"{moto_server.endpoint_url}"\n[database]\nconninfo = "dbname=m"\n'
                      '[agent]\nimds_url = "http://127.0.0.1:9"\n')  # no metadata service
    assert main(["--config", str(config), "guard", "--at", "2026-11-23T08:50+05:30"]) == 0
    assert "cannot decide, powering off" in capsys.readouterr().err


def test_a_year_missing_from_the_holiday_list_is_reported_loudly(
        tmp_path: Path, moto_server: MotoServer, imds: FakeImds,
        capsys: pytest.CaptureFixture[str]) -> None:
    topic, queue = _sqs_subscribed_topic(moto_server)
    config = write_config(tmp_path / "agent.toml", moto_server, imds, topic=topic)
    # a Monday in a year the shipped list does not cover: up (safe side), but said loudly
    assert main(["--config", str(config), "guard", "--at", "2031-03-03T08:50+05:30"]) == 1
    assert "WARNING" in capsys.readouterr().err
    messages = _received(moto_server, queue)
    assert len(messages) == 1 and "has no data for 2031" in messages[0]["Message"]


def test_app_hours(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["app-hours", "--at", "2026-11-23T10:00+05:30"]) == 0
    assert main(["app-hours", "--at", "2026-11-23T17:00+05:30"]) == 1
    assert main(["app-hours", "--at", "2026-11-24T10:00+05:30"]) == 1
    assert "outside the app's hours" in capsys.readouterr().out


# --- notify and the backup metric -------------------------------------------------------

def _sqs_subscribed_topic(moto: MotoServer) -> tuple[str, str]:
    sns, sqs = client(moto, "sns"), client(moto, "sqs")
    name = f"market-sync-{uuid.uuid4().hex}"
    topic = sns.create_topic(Name=name)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic["TopicArn"], Protocol="sqs", Endpoint=queue_arn)
    return topic["TopicArn"], queue_url


def _received(moto: MotoServer, queue_url: str) -> list[dict[str, Any]]:
    """Every SNS envelope the queue got (drained)."""
    sqs, found = client(moto, "sqs"), []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_notify_publishes_the_failure_with_a_redacted_journal_tail(
        tmp_path: Path, moto_server: MotoServer, imds: FakeImds,
        monkeypatch: pytest.MonkeyPatch) -> None:
    topic, queue_url = _sqs_subscribed_topic(moto_server)
    bin_dir = tmp_path / "bin"
    write_stub(bin_dir / "journalctl",
               'echo "$*" ; echo "backup: connection failed password=hunter2 host=127.0.0.1"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    config = write_config(tmp_path / "agent.toml", moto_server, imds, topic=topic)
    assert main(["--config", str(config), "notify", "market-sync-backup.service"]) == 0
    messages = client(moto_server, "sqs").receive_message(QueueUrl=queue_url,
                                                          MaxNumberOfMessages=1)["Messages"]
    envelope = json.loads(messages[0]["Body"])
    assert envelope["Subject"] == "market-sync: market-sync-backup.service failed on " \
                                  "i-0123456789abcdef0"
    assert "--unit=market-sync-backup.service --lines=40" in envelope["Message"]
    assert "connection failed" in envelope["Message"]
    assert "hunter2" not in envelope["Message"]
    # and the alarm's metric says the backup failed
    stats = client(moto_server, "cloudwatch").get_metric_statistics(
        Namespace="MarketSync", MetricName="BackupSucceeded",
        Dimensions=[{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}],
        StartTime=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), Period=60,
        Statistics=["Minimum"])
    assert [p["Minimum"] for p in stats["Datapoints"]] == [0.0]


def test_notify_without_a_topic_says_what_to_do(tmp_path: Path, moto_server: MotoServer,
                                               imds: FakeImds,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "agent.toml", moto_server, imds)
    assert main(["--config", str(config), "notify", "market-sync-guard.service"]) == 1
    assert "sns_topic_arn is not set" in capsys.readouterr().err


def test_report_backup_publishes_the_metric_for_this_instance(
        tmp_path: Path, moto_server: MotoServer, imds: FakeImds) -> None:
    imds.instance_id = "i-0feedfacefeedface"
    config = write_config(tmp_path / "agent.toml", moto_server, imds)
    assert main(["--config", str(config), "report-backup", "succeeded"]) == 0
    metrics = client(moto_server, "cloudwatch").list_metrics(
        Namespace="MarketSync", MetricName="BackupSucceeded",
        Dimensions=[{"Name": "InstanceId", "Value": "i-0feedfacefeedface"}])["Metrics"]
    assert len(metrics) == 1


def test_redaction() -> None:
    text = ("password=abc secret: xyz postgresql://u:pw@h/db AKIAABCDEFGHIJKLMNOP "
            '"token": "t0k"')
    cleaned = redact(text)
    for secret in ("abc", "xyz", ":pw@", "AKIAABCDEFGHIJKLMNOP", "t0k"):
        assert secret not in cleaned


# --- health -----------------------------------------------------------------------------

@pytest.fixture
def app_server() -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"status": 503, "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state["hits"] += 1
            if state["hits"] >= 3:
                state["status"] = 200
            self.send_response(state["status"] if self.path == "/health" else 404)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/health"
    yield state
    server.shutdown()
    server.server_close()


def test_health_waits_until_the_app_answers(app_server: dict[str, Any]) -> None:
    health = wait_healthy(app_server["url"], 30, interval=0.01)
    assert health.healthy and health.status == 200 and app_server["hits"] == 3


def test_health_cli_reports_unhealthy(app_server: dict[str, Any],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--url", app_server["url"], "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == 503


def test_health_refuses_plain_http_to_another_machine(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--url", "http://example.com/health"]) == 1
    assert "neither https nor on this machine" in capsys.readouterr().err
