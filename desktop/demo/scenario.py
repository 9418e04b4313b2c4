"""The demo's story: the collector's days, the instance's backups, a conflict to look at."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from desktop.demo.world import INSTRUMENTS, DemoWorld
from shared.calendar import IST

if TYPE_CHECKING:
    from desktop.engine.instance import InstanceController

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


def demo_controller(world: DemoWorld) -> InstanceController:
    """The real controller, pointed at the simulated instance and the demo app."""
    from desktop.engine.instance import InstanceController
    from shared.aws import AwsClients

    return InstanceController(AwsClients(world.laptop_config.aws).ec2(), world.instance_id,
                              health_url=world.health_url)


def record_day(world: DemoWorld, day: dt.date, step_seconds: int = 15) -> int:
    """The collector's day: ticks for every instrument from 09:15 to 15:30 IST."""
    import psycopg

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
    import psycopg

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
