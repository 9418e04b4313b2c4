"""Issue 9 point 10: errors during download are precise.

A full disk (a real, small tmpfs mounted over the downloads folder), the laptop database
failing while parts download, two configs syncing at the same time: one clear sentence
each, no traceback, no retry against a full disk, and each config's downloads in a folder
of its own.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop.engine.progress import CancelToken, SyncProgress
from shared.devtools.motoserver import MotoServer
from shared.devtools.pgcluster import PgCluster
from tests.helpers import World, at_ist, s3_client

BLOBS_DDL = """
CREATE SCHEMA IF NOT EXISTS my_schema;
CREATE TABLE IF NOT EXISTS my_schema.blobs (
    id bigint PRIMARY KEY, run_date date NOT NULL, raw bytea);
INSERT INTO my_schema.blobs
SELECT i, '2026-11-20', (SELECT decode(string_agg(md5(random()::text || i || j), ''), 'hex')
                           FROM generate_series(1, 65536) AS j)
  FROM generate_series(1, 3) AS i
ON CONFLICT DO NOTHING;
"""  # three rows of 1 MiB of random bytes: a 3 MiB part that zstd cannot shrink
BLOBS = '[[tables]]\nname = "my_schema.blobs"\n'
MB = 1 << 20


def blob_world(tmp: Path, instance_db: str, laptop_db: str, bucket: str, endpoint: str,
               downloads: Path | None = None) -> World:
    tmp.mkdir(parents=True, exist_ok=True)
    world = World(tmp, instance_db, laptop_db, bucket, endpoint, tables=BLOBS)
    if downloads is not None:
        world.downloads = downloads
    world.instance(BLOBS_DDL)
    world.backup(at_ist("2026-11-20"))
    return world


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem (tmpfs) as the downloads folder."""
    mount = tmp_path / "downloads"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_sentence_with_what_to_free_and_no_retry(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer, small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    world = blob_world(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url,
                       small_disk)
    gets: list[str] = []
    world.s3.meta.events.register(
        "before-call.s3.GetObject",
        lambda **kw: gets.append(kw["params"]["url_path"])
        if "Range" in kw["params"]["headers"] else None)

    with caplog.at_level(logging.INFO):
        report = world.sync()

    assert report.exit_code == 1 and report.error, report.summary()
    found = re.fullmatch(r"the disk holding (\S+) is full: free ([\d,]+) MB \(.*\)", report.error)
    assert found, report.error
    assert found.group(1) == str(small_disk)
    assert 1 <= int(found.group(2).replace(",", "")) <= 4  # 3 MiB to fetch, ~1 MiB held
    assert len(gets) == 1, gets  # one ranged GET of the part: no retry against a full disk
    assert "resuming" not in caplog.text and "Traceback" not in caplog.text
    assert world.laptop("SELECT to_regclass('my_schema.blobs')") == [(None,)]

    # Room made (a bigger disk mounted over it): the next sync finishes the job.
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    again = world.sync()
    assert again.exit_code == 0, again.summary()
    assert world.laptop("SELECT count(*), sum(length(raw)) FROM my_schema.blobs") == [(3, 3 * MB)]


def test_the_laptop_database_failing_while_parts_download_is_one_sentence(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer) -> None:
    world = blob_world(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    fired = []

    def kill_the_database(p: SyncProgress) -> None:
        if p.phase == "downloading" and not fired:
            fired.append(True)
            world.laptop("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE application_name = 'market-sync'")

    report = world.engine().run(progress=kill_the_database)

    assert fired
    assert report.exit_code == 1 and report.error, report.summary()
    assert report.error.startswith("lost the connection to the laptop database while "
                                   "downloading dump "), report.error
    assert "nothing of this dump was applied" in report.error_hint
    assert world.laptop("SELECT to_regclass('my_schema.blobs')") == [(None,)]
    assert world.sync().exit_code == 0


def test_two_configs_keep_their_downloads_apart(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer, pg_cluster: PgCluster) -> None:
    other_bucket = bucket + "-b"
    s3_client(moto_server.endpoint_url).create_bucket(
        Bucket=other_bucket, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    other_db = pg_cluster.create_database(f"laptop_b_{abs(hash(tmp_path)) % 10**8}")
    shared = tmp_path / "downloads"
    one = blob_world(tmp_path / "a", instance_db, laptop_db, bucket, moto_server.endpoint_url,
                     shared)
    two = blob_world(tmp_path / "b", instance_db, other_db, other_bucket,
                     moto_server.endpoint_url, shared)

    # Config two's sync is cancelled half-way through its download: the part is kept.
    token = CancelToken()

    def cancel_when_downloading(p: SyncProgress) -> None:
        if p.phase == "downloading":
            token.cancel()

    stopped = two.engine().run(progress=cancel_when_downloading, cancel=token)
    assert stopped.dumps[-1].status == "cancelled"
    kept = sorted(p for p in shared.rglob("*.partial"))
    assert kept

    # Config one syncs: config two's partial download is not its to delete.
    assert one.sync().exit_code == 0
    assert sorted(p for p in shared.rglob("*.partial")) == kept

    # And both at the same time, each into its own laptop database.
    reports = {}
    threads = [threading.Thread(target=lambda w=w, n=n: reports.__setitem__(n, w.sync()))
               for n, w in (("one", one), ("two", two))]
    two.instance("UPDATE my_schema.blobs SET raw = raw || '\\x00' WHERE id = 1")
    one.backup(at_ist("2026-11-20", 17))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reports["one"].exit_code == 0, reports["one"].summary()
    assert reports["two"].exit_code == 0, reports["two"].summary()
    assert two.laptop("SELECT count(*) FROM my_schema.blobs") == [(3,)]
    assert not [p for p in shared.rglob("*") if p.is_file()]
