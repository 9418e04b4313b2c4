"""The one place test doubles and builders live: configs, the agent and the engine wired
to the throwaway PostgreSQL and the moto server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import boto3
import psycopg

from desktop.engine import ledger
from desktop.engine.records import ConflictRecord
from desktop.engine.report import SyncReport
from desktop.engine.sync import SyncEngine
from ec2.backup import BackupAgent, BackupResult
from shared.config import Config, ConflictPolicy, parse_config
from shared.dumpstore import DumpStore

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))

TICKS_DDL = """
CREATE SCHEMA IF NOT EXISTS my_schema;
CREATE TABLE my_schema.ticks (
    instrument_token bigint NOT NULL,
    exchange_timestamp timestamptz NOT NULL,
    run_date date NOT NULL,
    last_price numeric(12,2),
    volume bigint,
    PRIMARY KEY (instrument_token, exchange_timestamp)
);
CREATE INDEX ON my_schema.ticks (run_date);
"""

TICKS_TABLE = """
[[tables]]
name = "my_schema.ticks"
"""


def make_config(tmp: Path, conninfo: str, bucket: str, endpoint: str,
                tables: str = TICKS_TABLE, extra: str = "") -> Config:
    text = f"""
[aws]
region = "ap-south-1"
endpoint_url = "{endpoint}"
bucket = "{bucket}"
instance_id = "i-0123456789abcdef0"

[database]
conninfo = "{conninfo}"
{tables}
{extra}
"""
    path = tmp / f"config-{abs(hash(conninfo)) % 10**8}.toml"
    path.write_text(text)
    return parse_config(text, path)


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", region_name="ap-south-1", endpoint_url=endpoint)


def at_ist(day: str, hh: int = 16, mm: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hh, mm), IST)


class World:
    """An instance database, a laptop database, a bucket: the whole chain."""

    def __init__(self, tmp: Path, instance_db: str, laptop_db: str, bucket: str,
                 endpoint: str, tables: str = TICKS_TABLE, extra: str = "") -> None:
        self.tmp, self.instance_db, self.laptop_db = tmp, instance_db, laptop_db
        self.bucket, self.endpoint = bucket, endpoint
        self.agent_config = make_config(tmp, instance_db, bucket, endpoint, tables, extra)
        self.laptop_config = make_config(tmp, laptop_db, bucket, endpoint, tables, extra)
        self.s3 = s3_client(endpoint)
        self.store = DumpStore(self.s3, bucket)
        self.downloads = tmp / "downloads"

    def instance(self, statement: str, params: Any = None) -> None:
        with psycopg.connect(self.instance_db, autocommit=True) as conn:
            conn.execute(statement, params)

    def laptop(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.laptop_db, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def conflicts(self, table: str | None = None) -> list[ConflictRecord]:
        """The saved conflicts as the trader sees them (``market-sync conflicts``)."""
        with psycopg.connect(self.laptop_db, autocommit=True) as conn:
            return [c for c in ledger.conflicts(conn) if table in (None, c.table_name)]

    def instance_rows(self, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.instance_db) as conn:
            return conn.execute(query).fetchall()

    def backup(self, when: dt.datetime | None = None, full: bool = False) -> BackupResult:
        moment = when or dt.datetime.now(dt.UTC)
        agent = BackupAgent(self.agent_config, self.s3, clock=lambda: moment)
        return agent.run(full=full)

    def engine(self, today: dt.date | None = None) -> SyncEngine:
        return SyncEngine(self.laptop_config, self.store, self.downloads,
                          today=(lambda: today) if today else None)

    def sync(self, policy: ConflictPolicy | None = None, **kwargs: Any) -> SyncReport:
        return self.engine().run(policy, **kwargs)
