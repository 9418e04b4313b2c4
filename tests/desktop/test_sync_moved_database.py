"""Issue 9 point 9: the skip rule survives the laptop database moving.

A day is skipped without comparing rows when its re-sent part has the content the ledger
recorded and every laptop row of the day still carries one of the transaction ids that
wrote it. Transaction ids mean nothing in another cluster: here the laptop database is
pg_dump-ed, restored into a second cluster whose transaction counter is steered so that
the restore and the trader's later edit get exactly the ids the ledger recorded, and the
edit must still be seen.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import psycopg
import pytest

from desktop.engine import ledger
from desktop.engine.sync import SyncEngine
from shared.config import ConflictPolicy
from shared.devtools.motoserver import MotoServer
from shared.devtools.pgcluster import PgCluster
from tests.helpers import TICKS_DDL, World, at_ist, make_config

SEED = """
INSERT INTO my_schema.ticks
SELECT 100 + i, '2026-11-20'::date + time '09:15' + make_interval(secs => i), '2026-11-20',
       1000 + i, i FROM generate_series(1, 20) AS i
"""


def next_xid_to(conninfo: str, wanted: int) -> None:
    """Burn transaction ids until the next one assigned is ``wanted``."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            assert row is not None
            assert row[0] < wanted, f"the cluster is already past xid {wanted}"
            if row[0] == wanted - 1:
                return


def xmins(conninfo: str) -> set[int]:
    with psycopg.connect(conninfo) as conn:
        return {int(r[0]) for r in conn.execute(
            "SELECT DISTINCT xmin::text::bigint FROM my_schema.ticks")}


def test_an_edit_in_a_restored_laptop_database_is_never_taken_for_unchanged(
        tmp_path: Path, instance_db: str, bucket: str, moto_server: MotoServer,
        caplog: pytest.LogCaptureFixture) -> None:
    with PgCluster() as first, PgCluster() as second:
        laptop = first.create_database("laptop")
        world = World(tmp_path, instance_db, laptop, bucket, moto_server.endpoint_url)
        world.instance(TICKS_DDL)
        world.instance(SEED)
        world.backup(at_ist("2026-11-20", 12))
        assert world.sync().exit_code == 0  # direct COPY: the day's writer is W1
        world.laptop("UPDATE my_schema.ticks SET volume = -1 WHERE instrument_token = 101")
        world.backup(at_ist("2026-11-20", 16))  # the same day, the same content
        assert world.sync(ConflictPolicy.SERVER_WINS).dumps[0].diverged == 1  # writer W2
        (writers,), = world.laptop("SELECT writer_xids FROM market_sync.applied_parts")
        w1, w2 = sorted(writers)
        assert xmins(laptop) == {w1, w2}

        # The trader's new laptop: a second cluster, the database restored into it.
        archive = tmp_path / "laptop.dump"
        assert first.bin_dir is not None
        subprocess.run([str(first.bin_dir / "pg_dump"), "-Fc", "-f", str(archive),
                        "-d", laptop], check=True)
        moved = second.create_database("laptop")
        next_xid_to(second.conninfo(), w1)
        subprocess.run([str(first.bin_dir / "pg_restore"), "--single-transaction",
                        "--no-owner", "-d", moved, str(archive)], check=True)
        assert xmins(moved) == {w1}  # the restore wrote every row as "W1"
        next_xid_to(second.conninfo(), w2)
        with psycopg.connect(moved, autocommit=True) as conn:
            conn.execute("UPDATE my_schema.ticks SET last_price = 1 WHERE instrument_token = 107")
        assert xmins(moved) == {w1, w2}  # ... and the trader's edit as "W2"

        world.backup(at_ist("2026-11-20", 18))  # the day re-sent, still the same content
        (tmp_path / "moved").mkdir()
        config = make_config(tmp_path / "moved", moved, bucket, moto_server.endpoint_url)
        engine = SyncEngine(config, world.store, tmp_path / "downloads")
        with caplog.at_level(logging.INFO, logger="desktop.engine"):
            report = engine.run(ConflictPolicy.SERVER_WINS)

        assert report.exit_code == 0, report.summary()
        assert (report.dumps[0].diverged, report.dumps[0].unchanged) == (1, 19)
        with psycopg.connect(moved) as conn:
            assert conn.execute("SELECT last_price::int FROM my_schema.ticks "
                                "WHERE instrument_token = 107").fetchone() == (1007,)
            assert [c.local_row["last_price"] for c in ledger.conflicts(conn)
                    if c.key and c.key["instrument_token"] == 107 and c.local_row] == [1.00]
        assert "restored or moved" in caplog.text
