"""A tick table as a KiteConnect collector stores it, and a server-side generator for one
trading day of it.

The row is KiteConnect's full-mode tick: last price and quantity, average traded price,
cumulative volume, total buy and sell quantity, the day's OHLC, change, last trade time,
open interest with its day high and low, and five levels of market depth a side (price,
quantity, orders), here a 30-value ``double precision[]``.

How the values move, per instrument, from one tick to its next (``docs/design-notes.md``,
"The bench's tick model", says why these and what (d) does when they change):

* the last price walks on the 0.05 grid: one tick up or down in half the ticks;
* volume is cumulative, the average price is the running VWAP, high/low the running
  extremes; open and the previous close stay for the day;
* total buy and sell quantity walk by up to ±1,000; open interest (the third of the
  instruments that are F&O contracts, in lots of 75) moves in three ticks out of ten;
* each depth level's quantity and order count stay until that level changes: the best
  level changes in ``CHURN`` of the ticks (60 %), the fifth in half as many. Depth prices
  follow the last price. ``persistent_depth=False`` draws every level afresh at every
  tick: the no-persistence extreme the bench also reports (d) for.
"""

from __future__ import annotations

import datetime as dt

SCHEMA = "my_schema"
TABLE = "ticks"
QUALIFIED = f"{SCHEMA}.{TABLE}"
INSTRUMENTS = 500  # a typical websocket subscription
SESSION_SECONDS = 22_500  # 09:15 to 15:30 IST
LEVELS = 5
CHURN = 0.6  # share of ticks in which the best depth level changes

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE {QUALIFIED} (
    instrument_token     bigint NOT NULL,
    exchange_timestamp   timestamptz NOT NULL,
    run_date             date NOT NULL,
    last_price           numeric(12,2) NOT NULL,
    last_traded_quantity integer,
    average_traded_price numeric(12,2),
    volume_traded        bigint,
    total_buy_quantity   bigint,
    total_sell_quantity  bigint,
    open                 numeric(12,2),
    high                 numeric(12,2),
    low                  numeric(12,2),
    close                numeric(12,2),
    change               double precision,
    last_trade_time      timestamptz,
    oi                   bigint,
    oi_day_high          bigint,
    oi_day_low           bigint,
    depth                double precision[],  -- bid then ask: 5 prices, 5 qty, 5 orders
    PRIMARY KEY (instrument_token, exchange_timestamp)
);
CREATE INDEX ticks_run_date_idx ON {QUALIFIED} (run_date);
"""

COLUMNS = ("instrument_token", "exchange_timestamp", "run_date", "last_price",
           "last_traded_quantity", "average_traded_price", "volume_traded",
           "total_buy_quantity", "total_sell_quantity", "open", "high", "low", "close",
           "change", "last_trade_time", "oi", "oi_day_high", "oi_day_low", "depth")

_SIDES = ("b", "a")


def _level_draw(side: str, level: int, salt: int, modulo: int) -> str:
    """A value in [0, modulo) fixed by (instrument, side, level, how often the level changed):
    it stays from tick to tick until the level changes, then is a fresh draw."""
    seed = (f"g.instr::bigint * 1000003 + {(ord(side) * 10 + level) * 7919 + salt}"
            f" + g.e_{side}{level} * 104729")
    return f"((hashint8({seed})::bigint + 2147483648) % {modulo})"


def _depth() -> str:
    values: list[str] = []
    for side, sign in zip(_SIDES, ("-", "+"), strict=True):
        values += [f"(g.lp {sign} {0.05 * k:.2f})::float8" for k in range(1, LEVELS + 1)]
        values += [f"(g.lot * (1 + {_level_draw(side, k, 0, 200)}))::float8"
                   for k in range(LEVELS)]
        values += [f"(1 + {_level_draw(side, k, 17, 30)})::float8" for k in range(LEVELS)]
    return "ARRAY[" + ", ".join(values) + "]"


def _change_chance(level: int, persistent: bool) -> float:
    """How likely depth ``level`` (0 = best) changes between two ticks."""
    return CHURN * (1 - 0.5 * level / (LEVELS - 1)) if persistent else 1.0


def insert_day_sql(day: dt.date, rows: int, persistent_depth: bool = True) -> str:
    """``INSERT … SELECT`` of ``rows`` ticks on ``day``: INSTRUMENTS instruments, each
    ticking through the session, interleaved in time order as a collector writes them."""
    per_instrument = max(1, -(-rows // INSTRUMENTS))
    step = SESSION_SECONDS / per_instrument
    start = f"'{day.isoformat()} 09:15:00+05:30'::timestamptz"
    changes = [f"(random() < {_change_chance(k, persistent_depth)!r})::int AS c_{s}{k}"
               for s in _SIDES for k in range(LEVELS)]
    epochs = [f"sum(c_{s}{k}) OVER w AS e_{s}{k}" for s in _SIDES for k in range(LEVELS)]
    fno = f"(i % {INSTRUMENTS}) % 3 = 0"
    return f"""
INSERT INTO {QUALIFIED} ({", ".join(COLUMNS)})
SELECT g.tok, g.ts, '{day.isoformat()}'::date, g.lp, g.ltq,
       round(g.turnover / g.volume, 2), g.volume,
       g.lot * 1000 + g.buy_walk, g.lot * 1000 + g.sell_walk,
       g.base, g.base + 0.05 * g.up, g.base - 0.05 * g.down, g.base - 1.5,
       round((g.lp / (g.base - 1.5) - 1) * 100, 4)::float8,
       g.ts - interval '0.4 second',
       g.oi, max(g.oi) OVER w, min(g.oi) OVER w,
       {_depth()}
  FROM (
    SELECT s.*, (s.base + 0.05 * s.moved)::numeric(12,2) AS lp,
           max(s.moved) OVER w AS up, -min(s.moved) OVER w AS down
      FROM (
        SELECT r.*, sum(r.dp) OVER w AS moved,
               sum(r.ltq) OVER w AS volume,
               sum(r.ltq * (r.base + 0.05 * r.dp)) OVER w AS turnover,
               CASE WHEN r.lot > 1 THEN 100000 + r.lot * sum(r.doi) OVER w ELSE 0 END AS oi,
               sum(r.dbuy) OVER w AS buy_walk, sum(r.dsell) OVER w AS sell_walk,
               {", ".join(epochs)}
          FROM (
            SELECT i % {INSTRUMENTS} AS instr, i / {INSTRUMENTS} AS seq,
                   256265 + (i % {INSTRUMENTS}) * 3 AS tok,
                   {start} + make_interval(secs => (i / {INSTRUMENTS}) * {step!r}
                                                  + (i % {INSTRUMENTS}) * 0.0017) AS ts,
                   (100 + ((i % {INSTRUMENTS}) * 37) % 2000)::numeric(12,2) AS base,
                   CASE WHEN {fno} THEN 75 ELSE 1 END AS lot,
                   CASE WHEN random() < 0.5 THEN 0 WHEN random() < 0.5 THEN -1 ELSE 1 END AS dp,
                   CASE WHEN {fno} THEN 75 ELSE 1 END
                       * (1 + floor(exp(random() * 5)))::int AS ltq,
                   CASE WHEN random() < 0.3 THEN (floor(random() * 21) - 10)::int ELSE 0 END
                       AS doi,
                   (floor(random() * 2001) - 1000)::int AS dbuy,
                   (floor(random() * 2001) - 1000)::int AS dsell,
                   {", ".join(changes)}
              FROM generate_series(0, {rows - 1}) AS i) AS r
         WINDOW w AS (PARTITION BY r.instr ORDER BY r.seq)) AS s
     WINDOW w AS (PARTITION BY s.instr ORDER BY s.seq)) AS g
 WINDOW w AS (PARTITION BY g.instr ORDER BY g.seq)
 ORDER BY g.ts
"""


def diverge_sql(day: dt.date, every: int = 100) -> str:
    """Change one row in ``every`` of ``day`` (by key order): a late price correction."""
    return f"""
UPDATE {QUALIFIED} t
   SET last_price = t.last_price + 0.05, volume_traded = t.volume_traded + 1
  FROM (SELECT instrument_token, exchange_timestamp,
               row_number() OVER (ORDER BY instrument_token, exchange_timestamp) AS rn
          FROM {QUALIFIED} WHERE run_date = '{day.isoformat()}') AS x
 WHERE x.rn % {every} = 0
   AND t.instrument_token = x.instrument_token
   AND t.exchange_timestamp = x.exchange_timestamp
"""
