"""A realistic tick table and a server-side generator for one trading day of it."""

from __future__ import annotations

import datetime as dt

SCHEMA = "my_schema"
TABLE = "ticks"
QUALIFIED = f"{SCHEMA}.{TABLE}"
INSTRUMENTS = 500  # a typical websocket subscription
SESSION_SECONDS = 22_500  # 09:15 to 15:30 IST

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE {QUALIFIED} (
    instrument_token   bigint NOT NULL,
    exchange_timestamp timestamptz NOT NULL,
    run_date           date NOT NULL,
    last_price         numeric(12,2) NOT NULL,
    last_quantity      integer,
    average_price      numeric(12,2),
    volume             bigint,
    oi                 bigint,
    buy_quantity       bigint,
    sell_quantity      bigint,
    best_bid           numeric(12,2),
    best_ask           numeric(12,2),
    depth              double precision[],  -- 5 levels: bid px, bid qty, ask px, ask qty
    PRIMARY KEY (instrument_token, exchange_timestamp)
);
CREATE INDEX ticks_run_date_idx ON {QUALIFIED} (run_date);
"""

COLUMNS = ("instrument_token", "exchange_timestamp", "run_date", "last_price", "last_quantity",
           "average_price", "volume", "oi", "buy_quantity", "sell_quantity", "best_bid",
           "best_ask", "depth")


def _depth() -> str:
    bid_px = [f"(p.lp - {0.05 * i:.2f})::float8" for i in range(1, 6)]
    ask_px = [f"(p.lp + {0.05 * i:.2f})::float8" for i in range(1, 6)]
    qty = ["floor(random() * 5000)::float8" for _ in range(5)]
    return "ARRAY[" + ", ".join(bid_px + qty + ask_px + qty) + "]"


def insert_day_sql(day: dt.date, rows: int) -> str:
    """``INSERT … SELECT`` of ``rows`` ticks on ``day``: INSTRUMENTS instruments, each
    ticking through the session, interleaved in time order as a collector writes them.
    Prices move on the 0.05 tick grid; volume is cumulative; a third carry open interest."""
    per_instrument = max(1, -(-rows // INSTRUMENTS))
    step = SESSION_SECONDS / per_instrument
    start = f"'{day.isoformat()} 09:15:00+05:30'::timestamptz"
    return f"""
INSERT INTO {QUALIFIED} ({", ".join(COLUMNS)})
SELECT g.tok, g.ts, '{day.isoformat()}'::date, p.lp, 1 + (random() * 500)::int, g.base,
       g.seq * 1000 + (random() * 999)::bigint,
       CASE WHEN g.instr % 3 = 0 THEN 100000 + g.seq * 10 ELSE 0 END,
       (random() * 1e6)::bigint, (random() * 1e6)::bigint, p.lp - 0.05, p.lp + 0.05,
       {_depth()}
  FROM (SELECT i % {INSTRUMENTS} AS instr, i / {INSTRUMENTS} AS seq,
               256265 + (i % {INSTRUMENTS}) * 3 AS tok,
               {start} + make_interval(secs => (i / {INSTRUMENTS}) * {step!r}
                                              + (i % {INSTRUMENTS}) * 0.0017) AS ts,
               (100 + ((i % {INSTRUMENTS}) * 37) % 2000)::numeric(12,2) AS base
          FROM generate_series(0, {rows - 1}) AS i) AS g
 CROSS JOIN LATERAL (
        SELECT (round((g.base * (1 + 0.02 * sin(g.seq / 300.0 + g.instr))
                       + random() * 0.5)::numeric * 20) / 20)::numeric(12,2) AS lp) AS p
"""


def diverge_sql(day: dt.date, every: int = 100) -> str:
    """Change one row in ``every`` of ``day`` (by key order): a late price correction."""
    return f"""
UPDATE {QUALIFIED} t
   SET last_price = t.last_price + 0.05, volume = t.volume + 1
  FROM (SELECT instrument_token, exchange_timestamp,
               row_number() OVER (ORDER BY instrument_token, exchange_timestamp) AS rn
          FROM {QUALIFIED} WHERE run_date = '{day.isoformat()}') AS x
 WHERE x.rn % {every} = 0
   AND t.instrument_token = x.instrument_token
   AND t.exchange_timestamp = x.exchange_timestamp
"""
