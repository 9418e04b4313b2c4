"""``market-sync demo``: the whole chain on this machine, nothing to configure.

An embedded moto server stands in for AWS, a throwaway PostgreSQL cluster holds an
"instance" and a "laptop" database, the instance gets a few trading days of
realistic ticks, the real agent makes one dump per day (under a faked clock, at
16:00 IST), and the real engine syncs them. Everything is removed at the end,
Ctrl+C included. A simulated EC2 instance (in moto) is started and stopped by the
real :class:`~desktop.engine.instance.InstanceController`, and a small HTTP server on
127.0.0.1 plays the market app's health endpoint.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.calendar import TradingCalendar, today_ist
from shared.config import Config, load_config

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

# A few NSE instruments (KiteConnect instrument tokens) with plausible prices.
INSTRUMENTS = [
    (256265, "NIFTY 50", 24350.0), (260105, "NIFTY BANK", 52100.0),
    (738561, "RELIANCE", 1290.0), (2953217, "TCS", 4120.0), (408065, "INFY", 1875.0),
    (341249, "HDFCBANK", 1740.0), (1270529, "ICICIBANK", 1285.0), (779521, "SBIN", 812.0),
]

SCHEMA = """
CREATE SCHEMA market;
CREATE TABLE market.instruments (
    instrument_token bigint PRIMARY KEY,
    tradingsymbol text NOT NULL,
    exchange text NOT NULL
);
CREATE TABLE market.ticks (
    instrument_token bigint NOT NULL,
    exchange_timestamp timestamptz NOT NULL,
    run_date date NOT NULL,
    last_price numeric(12,2) NOT NULL,
    volume_traded bigint,
    oi bigint,
    depth jsonb,
    PRIMARY KEY (instrument_token, exchange_timestamp)
);
CREATE INDEX ON market.ticks (run_date);
"""

DEMO_AMI = "ami-12c6146b"  # moto runs any image id; this is the one its docs use
DEMO_INSTANCE_TYPE = "t3.small"


def config_text(endpoint: str, bucket: str, conninfo: str,
                instance_id: str = "i-0de0000000000000a", health_url: str | None = None) -> str:
    app = f'\n[app]\nhealth_url = "{health_url}"\n' if health_url else ""
    return f"""# market-sync demo configuration (throwaway)
[aws]
region = "ap-south-1"
endpoint_url = "{endpoint}"
bucket = "{bucket}"
instance_id = "{instance_id}"
{app}
[database]
conninfo = "{conninfo}"

[[tables]]
name = "market.instruments"
mode = "snapshot"

[[tables]]
name = "market.ticks"
key = ["instrument_token", "exchange_timestamp"]
watermark = "run_date"
mode = "upsert"

[sync]
policy = "server-wins"
"""


class DemoApp:
    """The market app's health endpoint, on 127.0.0.1 in a thread of this process.

    ``healthy`` can be switched off to show the tray's "running, app unhealthy" state.
    """

    def __init__(self) -> None:
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/health":
                    self.send_error(404)
                    return
                status = 200 if app.healthy else 503
                body = json.dumps({"status": "ok" if app.healthy else "down",
                                   "collector": "demo"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("demo app: " + format, *args)

        self.healthy = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="demo-app-health", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/health"

    def __enter__(self) -> DemoApp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class DemoWorld:
    """What the demo made: where everything is."""

    agent_config: Config
    laptop_config: Config
    instance_conninfo: str
    laptop_conninfo: str
    endpoint_url: str
    bucket: str
    folder: Path
    days: tuple[dt.date, ...]
    instance_id: str = ""
    health_url: str = ""
    app: DemoApp | None = field(default=None, compare=False)


def recent_trading_days(count: int, calendar: TradingCalendar,
                        today: dt.date | None = None) -> list[dt.date]:
    """The last ``count`` trading days up to and including today (IST)."""
    day = today or today_ist()
    days: list[dt.date] = []
    if calendar.is_trading_day(day):
        days.append(day)
    while len(days) < count:
        day = calendar.previous_trading_day(day)
        days.append(day)
    return sorted(days)


@contextlib.contextmanager
def demo_world(days: int = 3, step_seconds: int = 15) -> Iterator[DemoWorld]:
    """Start moto, the app's health endpoint and PostgreSQL, seed the instance, launch the
    simulated EC2 instance (stopped, as after the evening's power-off); remove everything
    on exit."""
    import boto3
    import psycopg

    from shared.devtools.motoserver import MotoServer, use_fake_credentials
    from shared.devtools.pgcluster import PgCluster

    folder = Path(tempfile.mkdtemp(prefix="market-sync-demo-"))
    use_fake_credentials()
    try:
        with PgCluster() as cluster, MotoServer() as moto, DemoApp() as app:
            instance = cluster.create_database("instance")
            laptop = cluster.create_database("laptop")
            # moto keeps its state per process: a name of its own for each world.
            bucket = f"market-sync-demo-{uuid.uuid4().hex[:8]}"
            boto3.client("s3", region_name="ap-south-1", endpoint_url=moto.endpoint_url
                         ).create_bucket(Bucket=bucket, CreateBucketConfiguration={
                             "LocationConstraint": "ap-south-1"})
            instance_id = launch_instance(boto3.client(
                "ec2", region_name="ap-south-1", endpoint_url=moto.endpoint_url))
            agent_path, laptop_path = folder / "agent.toml", folder / "config.toml"
            agent_path.write_text(config_text(moto.endpoint_url, bucket, instance, instance_id))
            laptop_path.write_text(config_text(moto.endpoint_url, bucket, laptop, instance_id,
                                               app.url))
            calendar = TradingCalendar.load()
            trading = recent_trading_days(days, calendar)
            with psycopg.connect(instance, autocommit=True) as conn:
                conn.execute(SCHEMA)
                conn.execute("INSERT INTO market.instruments SELECT * FROM unnest("
                             "%s::bigint[], %s::text[], %s::text[])",
                             ([t for t, _, _ in INSTRUMENTS], [n for _, n, _ in INSTRUMENTS],
                              ["NSE"] * len(INSTRUMENTS)))
            yield DemoWorld(load_config(agent_path), load_config(laptop_path), instance, laptop,
                            moto.endpoint_url, bucket, folder, tuple(trading),
                            instance_id=instance_id, health_url=app.url, app=app)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def launch_instance(ec2: Any) -> str:
    """The collector's instance, as the installer tags it, stopped until the controller starts
    it."""
    response = ec2.run_instances(
        ImageId=DEMO_AMI, InstanceType=DEMO_INSTANCE_TYPE, MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": "market-sync-demo"},
            {"Key": "market-sync:role", "Value": "collector"}]}])
    instance_id = str(response["Instances"][0]["InstanceId"])
    ec2.stop_instances(InstanceIds=[instance_id])
    return instance_id
