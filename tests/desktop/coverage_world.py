"""The seed's kind of tables on an instance database, backed up by the real agent into moto
S3 and synced by the real engine (or ``market-sync sync``) into a laptop database."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from desktop.cli import main
from shared.devtools.pgcluster import find_pg_bin
from tests.helpers import TICKS_DDL, World

SEED_DDL = TICKS_DDL + """
CREATE TABLE my_schema.holdings (run_date date NOT NULL, tradingsymbol text NOT NULL,
                                 quantity integer, average_price numeric(12,2));
CREATE TABLE my_schema.positions (run_date date, tradingsymbol text NOT NULL,
                                  quantity integer, pnl numeric(12,2));
CREATE TABLE my_schema.market_structure (instrument_token bigint PRIMARY KEY,
                                         tradingsymbol text NOT NULL, lot_size integer);
CREATE TABLE my_schema.rt_intraday_price (symbol text, seq integer, ts timestamptz,
                                          price numeric(12,2), PRIMARY KEY (symbol, seq));
"""

SEED_TABLES = """
[[tables]]
name = "my_schema.ticks"

[[tables]]
name = "my_schema.holdings"
mode = "replace-range"

[[tables]]
name = "my_schema.positions"
mode = "replace-range"

[[tables]]
name = "my_schema.market_structure"
mode = "snapshot"

[[tables]]
name = "my_schema.rt_intraday_price"
watermark = "ts"
"""

ALL = ("my_schema.ticks", "my_schema.holdings", "my_schema.positions",
       "my_schema.market_structure", "my_schema.rt_intraday_price")


def seed_world(tmp: Path, instance_db: str, laptop_db: str, bucket: str,
               endpoint: str) -> World:
    w = World(tmp, instance_db, laptop_db, bucket, endpoint, tables=SEED_TABLES)
    w.instance(SEED_DDL)
    w.instance("INSERT INTO my_schema.market_structure VALUES (256265, 'NIFTY 50', 75), "
               "(738561, 'RELIANCE', 1)")
    return w


def trade(world: World, day: str, n: int = 3) -> None:
    """One trading day of every dated table on the instance."""
    world.instance(
        "INSERT INTO my_schema.ticks SELECT 256265 + i, %(d)s::date + time '09:15' "
        "+ make_interval(secs => i), %(d)s::date, 100 + i, i FROM generate_series(1, %(n)s) i",
        {"d": day, "n": n})
    world.instance("INSERT INTO my_schema.holdings SELECT %(d)s::date, 'SYM' || i, i, 10 + i "
                   "FROM generate_series(1, %(n)s) i", {"d": day, "n": n})
    world.instance("INSERT INTO my_schema.positions SELECT %(d)s::date, 'POS' || i, i, i * 2 "
                   "FROM generate_series(1, %(n)s) i", {"d": day, "n": n})
    world.instance(
        "INSERT INTO my_schema.rt_intraday_price SELECT 'SYM' || i, "
        "(extract(doy FROM %(d)s::date))::int * 100 + i, %(d)s::date + time '10:00', 50 + i "
        "FROM generate_series(1, %(n)s) i", {"d": day, "n": n})


def rows(world: World, table: str, side: str = "laptop") -> list[tuple[Any, ...]]:
    query = f"SELECT t::text FROM {table} t ORDER BY 1"
    return world.laptop(query) if side == "laptop" else world.instance_rows(query)


def laptop_holds_what_the_instance_holds(world: World) -> bool:
    return all(rows(world, t) == rows(world, t, "instance") for t in ALL)


def laptop_bytes(world: World) -> bytes:
    """The laptop database as pg_dump writes it: schema and every row, ledger included
    (less the random key of the ``\\restrict`` lines newer pg_dumps write each run)."""
    done = subprocess.run([str(find_pg_bin() / "pg_dump"), "--no-owner", "-d",
                           world.laptop_db], capture_output=True, check=True)
    return b"\n".join(line for line in done.stdout.split(b"\n")
                      if not line.startswith((b"\\restrict ", b"\\unrestrict ")))


def sync_cli(world: World, capsys: pytest.CaptureFixture[str], *args: str,
             ) -> tuple[int, str, str]:
    """``market-sync sync`` as the trader runs it."""
    code = main(["--config", str(world.laptop_config.path), "sync", *args])
    out, err = capsys.readouterr()
    return code, out, err
