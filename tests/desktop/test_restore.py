"""Putting a conflict's losing version back."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from desktop.engine.restore import restore_conflict
from shared.config import ConflictPolicy
from shared.devtools.motoserver import MotoServer
from shared.errors import MarketSyncError
from tests.helpers import TICKS_DDL, World, at_ist


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer) -> World:
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    w.instance(TICKS_DDL)
    w.instance("INSERT INTO my_schema.ticks VALUES (1, '2026-11-20 10:00+05:30', '2026-11-20', "
               "10.5, 100), (2, '2026-11-20 10:00+05:30', '2026-11-20', 20.25, 200)")
    w.backup(at_ist("2026-11-20", 12))
    w.sync()
    w.laptop("UPDATE my_schema.ticks SET volume = 111 WHERE instrument_token = 1")
    w.backup(at_ist("2026-11-20", 16))
    return w


def conflict_id(world: World) -> int:
    return int(world.laptop("SELECT id FROM market_sync.conflicts")[0][0])


def test_put_back_the_local_row_a_server_wins_sync_replaced(world: World) -> None:
    world.sync(ConflictPolicy.SERVER_WINS)
    assert world.laptop("SELECT volume FROM my_schema.ticks WHERE instrument_token = 1") == [(100,)]
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        done = restore_conflict(conn, world.laptop_config, conflict_id(world))
    assert done.version == "local"
    assert world.laptop("SELECT volume FROM my_schema.ticks WHERE instrument_token = 1") == [(111,)]
    assert world.laptop("SELECT count(*) FROM my_schema.ticks") == [(2,)]
    assert world.laptop("SELECT restored_at IS NOT NULL FROM market_sync.conflicts") == [(True,)]


def test_use_the_server_row_a_local_wins_sync_kept_out(world: World) -> None:
    world.sync(ConflictPolicy.LOCAL_WINS)
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        done = restore_conflict(conn, world.laptop_config, conflict_id(world))
    assert done.version == "incoming"
    query = "SELECT t::text FROM my_schema.ticks t ORDER BY 1"
    assert world.laptop(query) == world.instance_rows(query)


def test_restoring_twice_or_an_unknown_id_is_a_clear_error(world: World) -> None:
    world.sync(ConflictPolicy.SERVER_WINS)
    with psycopg.connect(world.laptop_db, autocommit=True) as conn:
        restore_conflict(conn, world.laptop_config, conflict_id(world))
        with pytest.raises(MarketSyncError, match="already put back"):
            restore_conflict(conn, world.laptop_config, conflict_id(world))
        with pytest.raises(MarketSyncError, match="no conflict #999"):
            restore_conflict(conn, world.laptop_config, 999)
