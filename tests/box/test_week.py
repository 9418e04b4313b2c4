"""The trader's first week, in the box: `market-sync provision` against moto, then a
Debian 12 box boots the user-data `provision --print-user-data` prints (byte-identical
to what the stack deploys) with the stand-in market app, and runs the product's real
units under its own systemd.

The tests run in order on one box (its disk survives a power-off, like an instance's):
first boot and setup; the timers against systemd's own calendar arithmetic; a trading
day's backup to moto's S3 and `market-sync sync` on the host; a holiday boot the guard
powers off; the keep-running tag; and, on a second box, a failed first setup that is
reported and retried at the next boot.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from shared.devtools.motoserver import MotoServer
from shared.devtools.pgcluster import PgCluster
from tests.box import world
from tests.box.box import Box
from tests.fakes import MemoryKeyring, keyring_backend

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

CLOCK_DROP_IN = "90-box-clock.conf"
COMPOSE = ["docker", "compose", "--project-name", "market-app", "--project-directory",
           "/opt/market-app", "--file", "/opt/market-app/docker-compose.yml", "--file",
           "/etc/market-sync/compose.override.yaml"]
GUARD_UNITS = ("market-sync-guard.service", "market-sync-guard-periodic.service",
               "market-sync-poweroff.service")
# What each timer is meant to do, written here from the README's table (not from the code
# that renders the units), in IST whatever the box's own time zone.
INTENDED = {
    "market-sync-app-start.timer": "Mon..Fri 08:55 Asia/Kolkata",
    "market-sync-app-stop.timer": "Mon..Fri 15:35 Asia/Kolkata",
    "market-sync-backup.timer": "Mon..Fri 16:00 Asia/Kolkata",
    "market-sync-health.timer": "Mon..Fri 09..15:00/15 Asia/Kolkata",
    "market-sync-guard-periodic.timer": "*:00/15",
}


@dataclass
class Week:
    moto: MotoServer
    trader: world.Trader
    user_data: str
    instance_id: str
    bucket: str
    topic_arn: str
    queue_url: str
    laptop: str  # the laptop database's conninfo
    env: dict[str, str]

    def cli(self, *args: str) -> tuple[int, str]:
        """`market-sync ARGS` in this process, with the trader's config and keyring."""
        from desktop.cli import main

        out = io.StringIO()
        with _environment(self.env), keyring_backend(MemoryKeyring()), \
                contextlib.redirect_stdout(out):
            code = main(["--config", str(self.trader.config), *args])
        return code, out.getvalue()

    def s3(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", region_name=world.REGION, endpoint_url=self.moto.endpoint_url)

    def aws(self, service: str):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(service, region_name=world.REGION,  # type: ignore[call-overload]
                            endpoint_url=self.moto.endpoint_url)

    def metadata(self) -> dict[str, object]:
        """What the box's IMDS answers: its id, its region, its tags as moto holds them."""
        return {"instance_id": self.instance_id, "region": world.REGION,
                "moto": self.moto.endpoint_url, "tags_from_moto": True}

    def notices(self) -> list[dict[str, str]]:
        """What the SNS topic published (an SQS queue subscribed to it)."""
        sqs = self.aws("sqs")
        got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(m["Body"]) for m in got]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def week(moto_server: MotoServer, pg_cluster: PgCluster, image_rootfs: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    moto_server.reset()
    home = tmp_path_factory.mktemp("trader")
    name = f"laptop_box_{os.getpid()}"
    laptop = pg_cluster.create_database(name)
    trader = world.trader(home, moto_server.endpoint_url, laptop, image_rootfs)
    env = {"XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
           "XDG_STATE_HOME": str(home / "state")}
    probe = Week(moto_server, trader, "", "", "", "", "", laptop, env)
    image = probe.aws("ec2").describe_images()["Images"][0]["ImageId"]  # no Debian AMI in moto
    code, out = probe.cli(*trader.provision_args()[2:], "--wheelhouse", str(trader.wheelhouse),
                          "--image-id", image, "--yes")
    assert code == 0, out
    assert world.APP_PASSWORD not in out
    from shared.config import load_config

    config = load_config(trader.config)
    assert config.aws.instance_id
    bucket = config.aws.bucket
    # the exact form, with the app where provision put it
    exact = trader.provision_args(app_source=f"s3://{bucket}/artifacts/app.tar.gz")[2:]
    code, user_data = probe.cli(exact[0], "--print-user-data", *exact[1:])
    assert code == 0 and user_data.startswith("#cloud-config\n"), user_data
    deployed = probe.aws("cloudformation").get_template(StackName=world.STACK)["TemplateBody"]
    body = deployed if isinstance(deployed, dict) else json.loads(deployed)
    assert body["Resources"]["Instance"]["Properties"]["UserData"]["Fn::Base64"] == user_data
    assert world.APP_PASSWORD not in user_data

    # The app's .env entries, as the tray's "App secrets…" stores them (SSM SecureString).
    ssm = probe.aws("ssm")
    for key, value in (("POSTGRES_PASSWORD", world.APP_PASSWORD), ("POSTGRES_USER", "market"),
                       ("POSTGRES_DB", "market")):
        ssm.put_parameter(Name=f"/market-sync/{world.STACK}/app-env/{key}", Value=value,
                          Type="SecureString", KeyId="alias/aws/ssm", Overwrite=True)
    # A queue on the alert topic shows what the instance reported.
    sns, sqs = probe.aws("sns"), probe.aws("sqs")
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"]
                 if t["TopicArn"].endswith(f":{world.STACK}-alerts"))
    queue = sqs.create_queue(QueueName="box-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs",
                  Endpoint=arn["Attributes"]["QueueArn"])
    yield Week(moto_server, trader, user_data, config.aws.instance_id, bucket, topic, queue,
               laptop, env)
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def box(week: Week, box_rootfs: Path, request: pytest.FixtureRequest) -> Iterator[Box]:
    """The trader's instance: seeded with the printed user-data, not yet booted."""
    failed_before = request.session.testsfailed
    box = Box(f"msbox-{os.getpid()}-week", box_rootfs)
    try:
        box.seed(week.user_data, week.instance_id)
        box.start_network(week.metadata(), [week.moto.port])
        yield box
    finally:
        box.destroy(keep_logs=request.session.testsfailed > failed_before)


def set_clock(box: Box, at: dt.datetime, units: tuple[str, ...]) -> None:
    for unit in units:
        box.write(f"/etc/systemd/system/{unit}.d/{CLOCK_DROP_IN}", world.faketime_drop_in(at))


def app_rows(box: Box) -> list[tuple[str, ...]]:
    """The app database's ticks, read inside the box from the app's own PostgreSQL."""
    out = box.run([*COMPOSE, "exec", "-T", "db",
                   "psql", "-X", "-At", "-U", "market", "-d", "market", "-c",
                   "SELECT run_date, symbol, ts AT TIME ZONE 'UTC', price FROM ticks "
                   "ORDER BY symbol, ts"]).stdout
    return [tuple(line.split("|")) for line in out.splitlines()]


def laptop_rows(conninfo: str) -> list[tuple[str, ...]]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT run_date::text, symbol, (ts AT TIME ZONE 'UTC')::text, "
                            "price::text FROM ticks ORDER BY symbol, ts").fetchall()
    return [tuple(row) for row in rows]


# -- the week -------------------------------------------------------------------------------
def test_first_boot_sets_the_instance_up(box: Box, week: Week) -> None:
    set_clock(box, world.TRADING_DAY, GUARD_UNITS + ("market-sync-backup.service",))
    box.boot()
    status = box.run(["cloud-init", "status", "--wait", "--long"], check=False, timeout=1200)
    assert "status: done" in status.stdout, status.stdout + box.journal("-u",
                                                                        "market-sync-firstboot")
    assert box.run(["test", "-f", "/var/lib/market-sync/setup-done"], check=False).returncode == 0
    # the compose override is built from the app's real services (db, ticks, web; not
    # postgres/collector/api), and compose takes the project with it
    merged = json.loads(box.run([*COMPOSE, "config", "--format", "json"]).stdout)
    assert sorted(merged["services"]) == ["db", "ticks", "web"]
    assert [(p["host_ip"], p["published"]) for p in merged["services"]["db"]["ports"]] == \
        [("127.0.0.1", "5432")]
    # the images were built at setup, not at 08:55
    assert box.run(["docker", "image", "inspect", "market-app-image:local"],
                   check=False).returncode == 0
    # the boot guard is enabled for the next boots (this one was the setup's)
    assert box.run(["systemctl", "is-enabled", "market-sync-guard.service"]).stdout.strip() \
        == "enabled"


def test_every_timer_elapses_at_its_intended_ist_time(box: Box) -> None:
    for timer, expression in INTENDED.items():
        next_elapse = box.run(["systemctl", "show", "-p", "NextElapseUSecRealtime", "--value",
                               timer], env={"TZ": "UTC"}).stdout.strip()
        base = box.run(["date", "-u", "+%Y-%m-%d %H:%M:%S UTC"]).stdout.strip()
        analyzed = box.run(["systemd-analyze", "calendar", f"--base-time={base}",
                            expression], env={"TZ": "UTC"}).stdout
        expected = next(line.split(":", 1)[1].strip() for line in analyzed.splitlines()
                        if line.strip().startswith("Next elapse:"))
        assert next_elapse == expected, f"{timer}: {next_elapse} != {expected} ({expression})"
        assert box.run(["systemctl", "is-enabled", timer]).stdout.strip() == "enabled"


def test_a_trading_day_backup_reaches_the_laptop(box: Box, week: Week) -> None:
    box.run(["systemctl", "start", "market-sync-app.service"], timeout=600)
    deadline = time.monotonic() + 60
    while len(app_rows(box)) < 5 and time.monotonic() < deadline:
        time.sleep(1)
    env = box.run(["stat", "-c", "%a %U", "/opt/market-app/.env"]).stdout.split()
    assert env == ["600", "root"]
    box.run([*COMPOSE, "stop", "ticks"])
    rows = app_rows(box)
    assert len(rows) >= 5

    box.run(["systemctl", "start", "market-sync-backup.service"], timeout=900)
    backup = box.journal("-u", "market-sync-backup.service")
    assert "market-sync-backup.service: Deactivated successfully" in backup or \
        "Finished market-sync-backup.service" in backup, backup
    pgpass = box.run(["stat", "-c", "%a %U", "/run/market-sync/pgpass"]).stdout.split()
    assert pgpass == ["600", "root"]
    keys = [o["Key"] for o in week.s3().list_objects_v2(Bucket=week.bucket,
                                                         Prefix="dumps/").get("Contents", [])]
    assert any(key.endswith("manifest.json") for key in keys), keys
    # after the backup at 09:20 on a trading day, the app's hours are still ahead: up
    assert box.running()

    code, out = week.cli("sync", "--json")
    assert code == 0, out
    assert laptop_rows(week.laptop) == rows


def test_on_a_holiday_the_guard_powers_the_box_off(box: Box) -> None:
    assert box.poweroff() == 0
    set_clock(box, world.HOLIDAY, GUARD_UNITS)
    box.boot(wait=False)  # nothing is started inside: the guard alone decides
    assert box.wait_exit(timeout=180) == 0  # the guard's poweroff: nspawn exits 0
    guard = box.journal("-b", "-u", "market-sync-guard.service")
    assert "power off: 2026-11-24 is not a trading day" in guard, guard


def test_the_keep_running_tag_keeps_it_up_until_the_periodic_guard(box: Box,
                                                                   week: Week) -> None:
    until = (dt.datetime.now(world.IST) + dt.timedelta(hours=2)).isoformat(timespec="minutes")
    code, out = week.cli("start", "--keep-running-until", until)
    assert code == 0, out
    box.boot()  # the holiday clock still: only the tag keeps it up
    box.run(["systemctl", "start", "market-sync-guard.service"], check=False)
    guard = box.journal("-b", "-u", "market-sync-guard.service")
    assert "stay up: market-sync:keep-running-until is" in guard, guard
    time.sleep(5)
    assert box.running()

    # the tag removed (the tray's "stop keeping it running"): the periodic guard, not only
    # the boot, powers it off
    week.aws("ec2").delete_tags(Resources=[week.instance_id],
                                Tags=[{"Key": "market-sync:keep-running-until"}])
    box.run(["systemctl", "start", "--no-block", "market-sync-guard-periodic.service"])
    assert box.wait_exit(timeout=180) == 0


def test_a_failed_first_setup_is_reported_and_retried_at_the_next_boot(
        week: Week, box_rootfs: Path, request: pytest.FixtureRequest) -> None:
    from ec2.instance import layout

    failed_before = request.session.testsfailed
    second = Box(f"msbox-{os.getpid()}-retry", box_rootfs)
    s3 = week.s3()
    bundle = s3.get_object(Bucket=week.bucket, Key=layout.SETTINGS_KEY)["Body"].read()
    week.notices()  # drop earlier messages
    try:
        # the instance boots before its settings are in S3 (or S3 fails it): setup fails
        s3.delete_object(Bucket=week.bucket, Key=layout.SETTINGS_KEY)
        second.seed(week.user_data, "i-0feedfacefeedface")
        set_clock(second, world.TRADING_DAY, GUARD_UNITS)
        second.start_network({**week.metadata(), "instance_id": "i-0feedfacefeedface",
                              "tags_from_moto": False, "tags": {}}, [week.moto.port])
        second.boot()
        second.run(["cloud-init", "status", "--wait"], check=False, timeout=600)
        assert second.run(["systemctl", "is-failed", "market-sync-firstboot.service"],
                          check=False).stdout.strip() == "failed"
        assert second.run(["test", "-e", "/var/lib/market-sync/setup-done"],
                          check=False).returncode == 1
        notices = week.notices()
        assert any("setting up the instance failed" in n.get("Subject", "") for n in notices), \
            notices

        s3.put_object(Bucket=week.bucket, Key=layout.SETTINGS_KEY, Body=bundle)
        assert second.poweroff() == 0
        second.boot()
        second.run(["systemctl", "start", "market-sync-firstboot.service"], check=False,
                   timeout=1200)  # waits for the run the boot started
        assert second.run(["test", "-f", "/var/lib/market-sync/setup-done"],
                          check=False).returncode == 0, second.journal("-u",
                                                                       "market-sync-firstboot")
        runs = second.journal("-u", "market-sync-firstboot.service")
        assert "setup failed; it runs again at the next boot" in runs
        assert "setup succeeded" in runs
    finally:
        s3.put_object(Bucket=week.bucket, Key=layout.SETTINGS_KEY, Body=bundle)
        second.destroy(keep_logs=request.session.testsfailed > failed_before)
