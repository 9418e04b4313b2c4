"""``market-sync demo``: the whole chain on this machine, nothing to configure.

An embedded moto server stands in for AWS, a throwaway PostgreSQL cluster holds an
"instance" and a "laptop" database, the instance gets a few trading days of
realistic ticks, the real agent makes one dump per day (under a faked clock, at
16:00 IST), and the real engine syncs them. Everything is removed at the end,
Ctrl+C included.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.calendar import IST, TradingCalendar, today_ist
from shared.config import Config, load_config

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

# One tick every `step` seconds per instrument from 09:15 to 15:30 IST, random walk.
DAY_TICKS = """
INSERT INTO market.ticks
SELECT i.token,
       (%(day)s::date + time '09:15') AT TIME ZONE 'Asia/Kolkata' + make_interval(secs => s),
       %(day)s::date,
       round((i.base * (1 + 0.004 * sin(s / 1800.0 + i.token %% 7)
              + 0.001 * (random() - 0.5)))::numeric, 2),
       (s * (10 + i.token %% 13))::bigint,
       CASE WHEN i.name LIKE 'NIFTY%%' THEN 100000 + s ELSE NULL END,
       jsonb_build_object('bid', round((i.base * 0.9995)::numeric, 2),
                          'ask', round((i.base * 1.0005)::numeric, 2))
  FROM unnest(%(tokens)s::bigint[], %(names)s::text[], %(bases)s::float8[]) AS i(token, name, base),
       generate_series(0, 22500 - 1, %(step)s) AS s
"""


def config_text(endpoint: str, bucket: str, conninfo: str) -> str:
    return f"""# market-sync demo configuration (throwaway)
[aws]
region = "ap-south-1"
endpoint_url = "{endpoint}"
bucket = "{bucket}"
instance_id = "i-0demo000000000001"

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
    """Start moto and PostgreSQL, seed the instance; remove everything on exit."""
    import boto3

    from shared.devtools.motoserver import MotoServer, use_fake_credentials
    from shared.devtools.pgcluster import PgCluster

    folder = Path(tempfile.mkdtemp(prefix="market-sync-demo-"))
    use_fake_credentials()
    try:
        with PgCluster() as cluster, MotoServer() as moto:
            instance = cluster.create_database("instance")
            laptop = cluster.create_database("laptop")
            bucket = "market-sync-demo"
            boto3.client("s3", region_name="ap-south-1", endpoint_url=moto.endpoint_url
                         ).create_bucket(Bucket=bucket, CreateBucketConfiguration={
                             "LocationConstraint": "ap-south-1"})
            agent_path, laptop_path = folder / "agent.toml", folder / "config.toml"
            agent_path.write_text(config_text(moto.endpoint_url, bucket, instance))
            laptop_path.write_text(config_text(moto.endpoint_url, bucket, laptop))
            calendar = TradingCalendar.load()
            trading = recent_trading_days(days, calendar)
            with psycopg.connect(instance, autocommit=True) as conn:
                conn.execute(SCHEMA)
                conn.execute("INSERT INTO market.instruments SELECT * FROM unnest("
                             "%s::bigint[], %s::text[], %s::text[])",
                             ([t for t, _, _ in INSTRUMENTS], [n for _, n, _ in INSTRUMENTS],
                              ["NSE"] * len(INSTRUMENTS)))
            yield DemoWorld(load_config(agent_path), load_config(laptop_path), instance, laptop,
                            moto.endpoint_url, bucket, folder, tuple(trading))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def record_day(world: DemoWorld, day: dt.date, step_seconds: int = 15) -> int:
    """The collector's day: ticks for every instrument from 09:15 to 15:30 IST."""
    with psycopg.connect(world.instance_conninfo, autocommit=True) as conn:
        cur = conn.execute(DAY_TICKS, {
            "day": day, "step": step_seconds,
            "tokens": [t for t, _, _ in INSTRUMENTS], "names": [n for _, n, _ in INSTRUMENTS],
            "bases": [b for _, _, b in INSTRUMENTS]})
        return cur.rowcount


def backup_day(world: DemoWorld, day: dt.date) -> str:
    """The instance's 16:00 IST backup of ``day``, by the real agent under a faked clock."""
    from ec2.backup import BackupAgent
    from shared.aws import AwsClients

    moment = dt.datetime.combine(day, dt.time(16, 0), IST)
    agent = BackupAgent(world.agent_config, AwsClients(world.agent_config.aws).s3(),
                        clock=lambda: moment)
    return agent.run().summary()


def simulate_days(world: DemoWorld, say: Callable[[str], None], step_seconds: int = 15) -> None:
    for day in world.days:
        rows = record_day(world, day, step_seconds)
        say(f"instance: collected {rows:,} ticks on {day:%a %d %b %Y}")
        say("agent:    " + backup_day(world, day).replace("\n", "\n          "))


def make_conflict(world: DemoWorld) -> str:
    """A row edited on the laptop that the server also corrected: a conflict to look at."""
    last = world.days[-1]
    with psycopg.connect(world.laptop_conninfo, autocommit=True) as laptop:
        laptop.execute("UPDATE market.ticks SET last_price = last_price + 1 WHERE "
                       "instrument_token = 738561 AND run_date = %s AND "
                       "exchange_timestamp = (%s::date + time '10:00') AT TIME ZONE "
                       "'Asia/Kolkata'", (last, last))
    with psycopg.connect(world.instance_conninfo, autocommit=True) as instance:
        instance.execute("UPDATE market.ticks SET volume_traded = volume_traded + 5 WHERE "
                         "instrument_token = 738561 AND run_date = %s AND "
                         "exchange_timestamp = (%s::date + time '10:00') AT TIME ZONE "
                         "'Asia/Kolkata'", (last, last))
        instance.execute("UPDATE market.instruments SET tradingsymbol = 'RELIANCE-EQ' "
                         "WHERE instrument_token = 738561")
    return backup_day(world, last)
