"""Bad input gets a clear error and loses nothing: the laptop is fully updated or untouched."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from desktop.engine.progress import CancelToken, SyncProgress
from shared.devtools.motoserver import MotoServer
from tests.helpers import TICKS_DDL, World, at_ist

SEED = """
INSERT INTO my_schema.ticks
SELECT 100 + i %% 7, %(day)s::date + time '09:15' + make_interval(secs => i), %(day)s::date,
       round((1000 + i * 0.05)::numeric, 2), i
  FROM generate_series(1, %(n)s) AS i
"""


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer) -> World:
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    w.instance(TICKS_DDL)
    w.instance(SEED, {"day": "2026-11-19", "n": 200})
    w.backup(at_ist("2026-11-19"))
    assert w.sync().exit_code == 0
    w.instance(SEED.replace("100 +", "900 +"), {"day": "2026-11-20", "n": 300})
    w.backup(at_ist("2026-11-20"))
    return w


def laptop_state(world: World) -> list[object]:
    return [world.laptop("SELECT t::text FROM my_schema.ticks t ORDER BY 1"),
            world.laptop("SELECT dump_id FROM market_sync.applied_dumps ORDER BY 1"),
            world.laptop("SELECT count(*) FROM market_sync.conflicts")]


def newest_manifest(world: World) -> tuple[str, dict[str, object]]:
    ref = world.store.list_dumps()[-1]
    raw = world.s3.get_object(Bucket=world.bucket, Key=ref.manifest_key)["Body"].read()
    return ref.manifest_key, json.loads(raw)


def put_manifest(world: World, key: str, doc: dict[str, object]) -> None:
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=json.dumps(doc).encode())


def part_object(world: World, key: str, doc: dict[str, object], index: int) -> tuple[str, bytes]:
    """The S3 key and bytes of part ``index`` of the first table in manifest ``doc``."""
    part = doc["tables"][0]["parts"][index]  # type: ignore[index]
    part_key = key.rsplit("/", 1)[0] + "/" + part["file"]
    return part_key, world.s3.get_object(Bucket=world.bucket, Key=part_key)["Body"].read()


def flip_a_byte(world: World, part_key: str, body: bytes) -> None:
    damaged = bytearray(body)
    damaged[len(damaged) // 2] ^= 0xFF
    world.s3.put_object(Bucket=world.bucket, Key=part_key, Body=bytes(damaged))


def world_with_laptop_table(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
                            endpoint: str, laptop_ddl: str) -> World:
    """Ten ticks backed up on the instance; the laptop's table made from ``laptop_ddl``."""
    w = World(tmp_path, instance_db, laptop_db, bucket, endpoint)
    w.instance(TICKS_DDL)
    w.instance(SEED, {"day": "2026-11-20", "n": 10})
    w.laptop(laptop_ddl)
    w.backup(at_ist("2026-11-20"))
    return w


def finishes_afterwards(world: World) -> None:
    report = world.sync()
    assert report.exit_code == 0, report.summary()
    query = "SELECT t::text FROM my_schema.ticks t ORDER BY 1"
    assert world.laptop(query) == world.instance_rows(query)


@pytest.mark.parametrize("schema, table", [
    ("other", "ticks"),
    ("my_schema", 'ticks"; DROP TABLE my_schema.ticks; --'),
    ("my_schema", "x" * 80),
])
def test_manifest_naming_a_foreign_table_is_refused_whole(world: World, schema: str,
                                                          table: str) -> None:
    key, doc = newest_manifest(world)
    doc["tables"][0].update(schema=schema, table=table)  # type: ignore[index]
    put_manifest(world, key, doc)
    before = laptop_state(world)
    report = world.sync()
    assert report.exit_code == 1
    assert report.error and "refused" in report.error
    assert laptop_state(world) == before


def test_column_name_carrying_sql_is_quoted_and_refused_as_unknown(world: World) -> None:
    key, doc = newest_manifest(world)
    doc["tables"][0]["columns"][4]["name"] = 'volume" bigint); DROP TABLE x; --'  # type: ignore[index]
    put_manifest(world, key, doc)
    before = laptop_state(world)
    report = world.sync()
    assert report.exit_code == 1 and report.error
    assert "not in the laptop table" in report.error and "my_schema.ticks" in report.error
    assert laptop_state(world) == before


def test_corrupt_part_is_refused_by_checksum_naming_dump_and_table(world: World) -> None:
    key, doc = newest_manifest(world)
    flip_a_byte(world, *part_object(world, key, doc, -1))
    before = laptop_state(world)
    report = world.sync()
    assert report.exit_code == 1 and report.error
    assert doc["dump_id"] in report.error and "my_schema.ticks" in report.error
    assert "checksum" in report.error
    assert laptop_state(world) == before
    damaged = len(doc["tables"][0]["parts"]) - 1  # type: ignore[index]
    assert not list(world.downloads.rglob(f"part-{damaged:05d}*"))  # the damaged file is gone


def test_truncated_part_is_refused_before_the_database_is_touched(world: World) -> None:
    key, doc = newest_manifest(world)
    part_key, body = part_object(world, key, doc, -1)
    world.s3.put_object(Bucket=world.bucket, Key=part_key, Body=body[: len(body) // 2])
    before = laptop_state(world)
    report = world.sync()
    assert report.exit_code == 1 and report.error
    assert "damaged" in report.error and "my_schema.ticks" in report.error
    assert laptop_state(world) == before


def test_schema_mismatch_names_the_table_and_column(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer) -> None:
    w = world_with_laptop_table(tmp_path, instance_db, laptop_db, bucket,
                                moto_server.endpoint_url,
                                TICKS_DDL.replace("volume bigint", "volume integer"))
    report = w.sync()
    assert report.exit_code == 1 and report.error
    assert "my_schema.ticks" in report.error and "'volume'" in report.error
    assert "integer" in report.error and "bigint" in report.error
    assert w.laptop("SELECT count(*) FROM my_schema.ticks") == [(0,)]


def test_missing_column_is_added_only_when_asked(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer) -> None:
    w = world_with_laptop_table(tmp_path, instance_db, laptop_db, bucket,
                                moto_server.endpoint_url,
                                TICKS_DDL.replace("    volume bigint,\n", ""))
    refused = w.sync()
    assert refused.exit_code == 1 and "--add-columns" in refused.error_hint
    assert w.sync(add_columns=True).exit_code == 0
    assert w.laptop("SELECT count(volume) FROM my_schema.ticks") == [(10,)]


def test_dropped_connection_leaves_nothing_and_the_next_sync_completes(world: World) -> None:
    before = laptop_state(world)
    fired = []

    def drop(p: SyncProgress) -> None:
        if p.phase == "applying" and not fired:
            fired.append(True)
            world.laptop("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE application_name = 'market-sync'")

    report = world.engine().run(progress=drop)
    assert fired
    assert report.exit_code == 1 and report.error
    assert "connection" in report.error and "nothing of this dump was kept" in report.error_hint
    assert laptop_state(world) == before
    finishes_afterwards(world)


def test_cancel_rolls_back_the_dump_in_flight(world: World) -> None:
    before = laptop_state(world)
    token = CancelToken()

    def cancel_when_applying(p: SyncProgress) -> None:
        if p.phase == "applying":
            token.cancel()

    report = world.engine().run(progress=cancel_when_applying, cancel=token)
    assert report.exit_code == 1 and report.dumps[-1].status == "cancelled"
    assert laptop_state(world) == before
    finishes_afterwards(world)


def test_sigkill_during_the_merge_leaves_the_laptop_untouched(
        world: World, tmp_path: Path) -> None:
    assert world.sync().exit_code == 0  # only the large dump below is pending
    world.instance(SEED.replace("100 +", "500 +"), {"day": "2026-11-21", "n": 400_000})
    world.backup(at_ist("2026-11-21"))
    before = laptop_state(world)
    env = dict(os.environ, MARKET_SYNC_CONFIG=str(world.laptop_config.path),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "desktop.cli", "sync"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    copying = False
    while time.monotonic() < deadline and proc.poll() is None:
        rows = world.laptop("SELECT query FROM pg_stat_activity WHERE application_name = "
                            "'market-sync' AND query ILIKE 'COPY%%'")
        if rows:
            copying = True
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert copying, "the sync never reached its COPY: " + proc.stderr.read().decode()  # type: ignore[union-attr]
    # The server notices the closed socket and rolls back; under load that takes a while.
    gone = time.monotonic() + 30
    while time.monotonic() < gone and world.laptop(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'market-sync'"):
        time.sleep(0.05)
    assert laptop_state(world) == before
    finishes_afterwards(world)


def test_temporary_files_are_removed_after_a_sync(world: World, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # A temp dir of this test's own: the shared /tmp holds other processes' files.
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    world.instance(SEED, {"day": "2026-11-21", "n": 50})
    world.backup(at_ist("2026-11-21"))  # works in a market-sync-backup-* temp dir
    assert world.sync().exit_code == 0
    assert not [p for p in world.downloads.rglob("*") if p.is_file()]
    assert list(private.iterdir()) == []


def test_no_password_reaches_the_logs_or_the_report(world: World,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    secret = "pw-Zq8-never-logged"
    caplog.set_level(logging.DEBUG)
    engine = world.engine()
    engine.password = secret
    report = engine.run()
    assert report.exit_code == 0
    assert secret not in caplog.text
    assert secret not in json.dumps(report.to_json())


def test_unreachable_laptop_database_is_one_clear_error(world: World) -> None:
    engine = world.engine()
    engine.config = type(engine.config)(**{**engine.config.__dict__, "database": type(
        engine.config.database)("host=127.0.0.1 port=1 dbname=x user=postgres")})
    with pytest.raises(Exception) as info:
        engine.run()
    assert "cannot connect to the laptop database" in str(info.value)
    assert isinstance(info.value, psycopg.Error) is False


def test_damaged_resent_day_fetched_late_still_rolls_the_dump_back(world: World) -> None:
    # The laptop edited the 19th, so the re-sent 19th (not downloaded up front: the ledger
    # holds it unchanged) is fetched during the apply and found damaged: nothing is kept.
    world.laptop("UPDATE my_schema.ticks SET volume = -1 WHERE volume = 7")
    key, doc = newest_manifest(world)
    flip_a_byte(world, *part_object(world, key, doc, 0))
    before = laptop_state(world)
    report = world.sync()
    assert report.exit_code == 1 and report.error and "checksum" in report.error
    assert laptop_state(world) == before
