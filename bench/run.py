"""``python -m bench``: every figure of issue 2 item 7, each against a baseline of this run.

What runs where:

* one throwaway PostgreSQL cluster, ``PgCluster(fast=False)``: fsync,
  synchronous_commit and full_page_writes ON (PostgreSQL defaults apart from
  PgCluster's shared_buffers=128MB and max_wal_size=4GB, so that no WAL-triggered
  checkpoint lands inside a timed phase). Baselines and measured runs share it, and
  each timed phase starts after ``VACUUM (ANALYZE)`` of the tables it reads, a
  ``CHECKPOINT`` and ``os.sync()``, so neither inherits the other's dirty buffers
  or the writeback of the raw stream files the bench just wrote. The COPY baselines
  of (a) and (b) run once before and once after the measured sync and the figure
  uses their mean, so drift from other load on the machine hits both sides;
* moto's S3 in this process on 127.0.0.1. Every sync runs in a child process
  (``bench.child``) that really downloads from it; the child reports download
  (+ sha256 verify) and apply (until after COMMIT) separately. The throughput
  targets are judged on apply time, because moto's HTTP speed says nothing about
  S3; end-to-end figures are printed beside them;
* the agent runs in this process; the time its S3 calls take (moto) is taken
  out of its export rate and printed separately.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import psycopg

from bench import ticks
from ec2.backup import ZSTD_LEVEL
from shared.devtools.motoserver import MotoServer, use_fake_credentials
from shared.devtools.pgcluster import PgCluster

REPO = Path(__file__).resolve().parents[1]
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
DAY1, DAY2 = dt.date(2025, 3, 3), dt.date(2025, 3, 4)  # a Monday and a Tuesday, both trading
CHUNK = 1 << 20
RSS_LIMIT_MB = 120.0
RSS_FLAT = 1.10  # the large run's peak may exceed the small run's by at most 10 %

T = TypeVar("T")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def at_ist(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), IST)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


# -- results --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    key: str
    what: str
    baseline: str
    measured: str
    ratio: float
    target: str
    ok: bool
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SyncRun:
    """What a child sync process reported."""

    label: str
    rows_new: int
    rows_unchanged: int
    rows_diverged: int
    parts: dict[str, int]
    download_seconds: float
    apply_seconds: float
    run_seconds: float
    peak_rss_mb: float
    ru_maxrss_mb: float
    exit_code: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ScenarioResult:
    rows: int
    syncs: dict[str, SyncRun] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def peak_rss_mb(self) -> float:
        return max(s.peak_rss_mb for s in self.syncs.values())


# -- the S3 time inside an agent run ---------------------------------------------------------
class S3Clock:
    """Wraps a DumpStore's S3 calls and adds up their time (nested calls count once)."""

    METHODS = ("latest", "list_dumps", "load_manifest", "upload_file", "put_manifest")

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    def attach(self, store: object) -> None:
        for name in self.METHODS:
            setattr(store, name, self._wrap(getattr(store, name)))

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds += time.perf_counter() - started
        return wrapper


# -- one world: instance db, laptop db, bucket ---------------------------------------------------
class World:
    def __init__(self, cluster: PgCluster, moto: MotoServer, work: Path, name: str) -> None:
        import boto3

        self.cluster, self.work, self.name = cluster, work / name, name
        self.work.mkdir(parents=True)
        self.instance_db = cluster.create_database(f"{name}_instance")
        self.laptop_db = cluster.create_database(f"{name}_laptop")
        self.bucket = f"bench-{name}".replace("_", "-")
        self.endpoint = moto.endpoint_url
        self.s3 = boto3.client("s3", region_name="ap-south-1", endpoint_url=self.endpoint)
        self.s3.create_bucket(Bucket=self.bucket,
                              CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
        self.agent_config_path = self._write_config("agent", self.instance_db)
        self.laptop_config_path = self._write_config("laptop", self.laptop_db)
        self.downloads = self.work / "downloads"
        for db in (self.instance_db, self.laptop_db):
            self.execute(db, ticks.DDL)

    def _write_config(self, role: str, conninfo: str) -> Path:
        path = self.work / f"{role}.toml"
        path.write_text(f"""
[aws]
region = "ap-south-1"
endpoint_url = "{self.endpoint}"
bucket = "{self.bucket}"
instance_id = "i-0be0c0000000000a0"

[database]
conninfo = "{conninfo}"

[[tables]]
name = "{ticks.QUALIFIED}"
""")
        return path

    # -- database helpers --------------------------------------------------------------------
    @staticmethod
    def execute(conninfo: str, statement: str) -> int:
        """Run ``statement``; the number of rows it touched."""
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return conn.execute(statement.encode()).rowcount

    @staticmethod
    def scalar(conninfo: str, query: str) -> Any:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(query.encode()).fetchone()
            assert row is not None
            return row[0]

    def settle(self, conninfo: str, *tables: str) -> None:
        """What a day-old database looks like: vacuumed, analysed, checkpointed; and no
        writeback of the bench's own files (the raw streams, over a GB at 1M rows) left
        to compete with the timed phase's WAL flushes."""
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for table in tables:
                conn.execute(f"VACUUM (ANALYZE) {table}".encode())
            conn.execute("CHECKPOINT")
        os.sync()

    # -- the agent ---------------------------------------------------------------------------
    def backup(self, when: dt.datetime) -> dict[str, Any]:
        from ec2.backup import BackupAgent
        from shared.config import load_config

        config = load_config(self.agent_config_path)
        agent = BackupAgent(config, self.s3, clock=lambda: when)
        clock = S3Clock()
        clock.attach(agent.store)
        result, seconds = timed(agent.run)
        manifest = agent.store.load_manifest(agent.store.list_dumps()[-1]).manifest
        parts = [p for t in manifest.tables for p in t.parts]
        return {"dump_id": result.dump_id, "rows": result.rows, "bytes": result.bytes,
                "parts": len(parts), "seconds": seconds, "s3_seconds": clock.seconds,
                "export_seconds": seconds - clock.seconds,
                "folder": dump_folder_of(manifest.dump_id),
                "part_files": {str(p.day): p.file for p in parts}}

    def raw_stream(self, backup: dict[str, Any], day: dt.date, dest: Path) -> Path:
        """The uncompressed binary COPY stream of ``day``: the very rows of the dump's part."""
        import zstandard

        key = backup["folder"] + backup["part_files"][str(day)]
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        with dest.open("wb") as out:
            reader = zstandard.ZstdDecompressor().stream_reader(cast(IO[bytes], body))
            while chunk := reader.read(CHUNK):
                out.write(chunk)
        return dest

    # -- the laptop --------------------------------------------------------------------------
    def sync(self, label: str) -> SyncRun:
        """``SyncEngine.run`` in a child process, with its timings and peak RSS."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
        proc = subprocess.run(
            [sys.executable, "-m", "bench.child", str(self.laptop_config_path),
             str(self.downloads)],
            cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"sync child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        report = out["report"]
        dumps = report.get("dumps", [])
        if out["exit_code"] != 0 or not dumps or dumps[-1]["status"] != "applied":
            raise RuntimeError(f"sync {label} did not apply cleanly: {json.dumps(report)[:2000]}")
        parts = {"skipped": 0, "copied": 0, "merged": 0}
        for dump in dumps:
            for table in dump["tables"]:
                for kind in parts:
                    parts[kind] += table[f"parts_{kind}"]
        hwm = out.get("vmhwm_kib")
        return SyncRun(
            label=label, rows_new=sum(d["new"] for d in dumps),
            rows_unchanged=sum(d["unchanged"] for d in dumps),
            rows_diverged=sum(d["diverged"] for d in dumps), parts=parts,
            download_seconds=out["download_seconds"], apply_seconds=out["apply_seconds"],
            run_seconds=out["run_seconds"],
            # VmHWM: the peak of this process's own memory since exec. ru_maxrss is only the
            # fallback (no /proc): Linux carries the forking parent's high-water mark over
            # exec into it, so it would report this bench process (moto holds the dumps).
            peak_rss_mb=(hwm or out["ru_maxrss_kib"]) / 1024,
            ru_maxrss_mb=out["ru_maxrss_kib"] / 1024, exit_code=out["exit_code"],
            bytes=sum(d["bytes"] for d in dumps))

    def raw_copy(self, files: list[Path], keep: bool = False) -> tuple[float, int]:
        """The baseline: binary COPY of ``files`` into an empty table with the same indexes
        (one transaction, COMMIT included). Returns seconds and the table's total size."""
        with psycopg.connect(self.laptop_db, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS bench_baseline")
            conn.execute("DROP TABLE IF EXISTS bench_baseline.ticks")
            conn.execute(f"CREATE TABLE bench_baseline.ticks (LIKE {ticks.QUALIFIED} "
                         "INCLUDING ALL)".encode())
            conn.execute("CHECKPOINT")
        with psycopg.connect(self.laptop_db) as conn:
            started = time.perf_counter()
            with conn.cursor() as cur:
                for path in files:
                    with cur.copy("COPY bench_baseline.ticks FROM STDIN (FORMAT binary)") as copy, \
                            path.open("rb") as fh:
                        while chunk := fh.read(CHUNK):
                            copy.write(chunk)
            conn.commit()
            seconds = time.perf_counter() - started
            size = conn.execute(
                "SELECT pg_total_relation_size('bench_baseline.ticks')").fetchone()
            assert size is not None
        if not keep:
            self.execute(self.laptop_db, "DROP TABLE bench_baseline.ticks")
        return seconds, int(size[0])

    def table_size(self) -> int:
        return int(self.scalar(self.laptop_db,
                               f"SELECT pg_total_relation_size('{ticks.QUALIFIED}')"))

    def pg_dump(self) -> tuple[float, int]:
        assert self.cluster.bin_dir is not None
        dest = self.work / "ticks.pgdump"
        command = [str(self.cluster.bin_dir / "pg_dump"), "-Fc", "--data-only",
                   "--table", ticks.QUALIFIED, "--file", str(dest), "--dbname", self.instance_db]
        proc, seconds = timed(lambda: subprocess.run(command, capture_output=True, text=True,
                                                     check=False))
        if proc.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {proc.stderr}")
        size = dest.stat().st_size
        dest.unlink()
        return seconds, size


def dump_folder_of(dump_id: str) -> str:
    from shared.manifest import dump_folder

    return dump_folder("", dump_id)


# -- the scenario ------------------------------------------------------------------------------
def scenario(cluster: PgCluster, moto: MotoServer, work: Path, name: str, rows: int,
             measure: bool) -> ScenarioResult:
    """Day 1 applied by an earlier sync; day 2 arrives with day 1 as overlap (a); then 1 %
    of day 2 is corrected on the instance and arrives again (b). ``measure`` adds the
    baselines; without it only the syncs (and their RSS) are recorded."""
    w = World(cluster, moto, work, name)
    result = ScenarioResult(rows)
    d = result.details
    table = ticks.QUALIFIED

    log(f"{name}: generating day 1 ({rows:,} rows) on the instance")
    _, d["generate_seconds_day1"] = timed(lambda: w.execute(w.instance_db,
                                                            ticks.insert_day_sql(DAY1, rows)))
    w.settle(w.instance_db, table)
    log(f"{name}: backup 1 (day 1), sync 1 (day 1 into an empty laptop table)")
    d["backup1"] = w.backup(at_ist(DAY1, 16))
    w.settle(w.laptop_db, table)
    result.syncs["initial"] = w.sync("initial: day 1 into an empty table (direct COPY)")

    log(f"{name}: generating day 2 ({rows:,} rows); backup 2 (day 1 overlap + day 2)")
    _, d["generate_seconds_day2"] = timed(lambda: w.execute(w.instance_db,
                                                            ticks.insert_day_sql(DAY2, rows)))
    w.settle(w.instance_db, table)
    backup2 = d["backup2"] = w.backup(at_ist(DAY2, 16))
    if measure:
        log(f"{name}: pg_dump -Fc of the same table")
        w.settle(w.instance_db, table)
        d["pg_dump_seconds"], d["pg_dump_bytes"] = w.pg_dump()
        d["table_rows"] = int(w.scalar(w.instance_db, f"SELECT count(*) FROM {table}"))
        day1_raw = w.raw_stream(backup2, DAY1, w.work / "day1.copy")
        day2_raw = w.raw_stream(backup2, DAY2, w.work / "day2.copy")
        d["raw_stream_bytes_day2"] = day2_raw.stat().st_size
        log(f"{name}: baseline (a): raw binary COPY of day 2 into an empty indexed table")
        w.settle(w.laptop_db, table)
        d["baseline_a_runs"] = [w.raw_copy([day2_raw])[0]]

    log(f"{name}: sync (a): day 1 overlap + day 2 new")
    w.settle(w.laptop_db, table)
    result.syncs["a"] = w.sync("(a) typical: day 2 new + day 1 overlap")
    d["size_after_a"] = w.table_size()
    if measure:
        log(f"{name}: baseline (a) again, after the sync (the figure uses the mean)")
        w.settle(w.laptop_db, table)
        d["baseline_a_runs"].append(w.raw_copy([day2_raw])[0])
        d["baseline_a_seconds"] = sum(d["baseline_a_runs"]) / 2
        log(f"{name}: clean load of days 1+2 for (c)")
        _, d["clean_size"] = w.raw_copy([day1_raw, day2_raw])

    log(f"{name}: 1 % of day 2 corrected on the instance; backup 3 (day 2 again)")
    d["diverged_on_instance"] = w.execute(w.instance_db, ticks.diverge_sql(DAY2))
    w.settle(w.instance_db, table)
    backup3 = d["backup3"] = w.backup(at_ist(DAY2, 17))
    if measure:
        day2b_raw = w.raw_stream(backup3, DAY2, w.work / "day2b.copy")
        log(f"{name}: baseline (b): raw binary COPY of the corrected day 2")
        w.settle(w.laptop_db, table)
        d["baseline_b_runs"] = [w.raw_copy([day2b_raw])[0]]
    log(f"{name}: sync (b): day 2 again, 1 % diverged")
    w.settle(w.laptop_db, table)
    result.syncs["b"] = w.sync("(b) worst: day 2 overlap, 1 % diverged")
    d["size_after_b"] = w.table_size()
    if measure:
        log(f"{name}: baseline (b) again, after the sync (the figure uses the mean)")
        w.settle(w.laptop_db, table)
        d["baseline_b_runs"].append(w.raw_copy([day2b_raw])[0])
        d["baseline_b_seconds"] = sum(d["baseline_b_runs"]) / 2
    d["conflicts_saved"] = int(w.scalar(w.laptop_db,
                                        "SELECT count(*) FROM market_sync.conflicts"))
    shutil.rmtree(w.work, ignore_errors=True)
    return result


def fresh_depth_bytes(cluster: PgCluster, moto: MotoServer, work: Path, rows: int
                      ) -> dict[str, int]:
    """(d) once more on the tick model's extreme where every depth level is drawn afresh
    at every tick: how much of (d) the order book's persistence is worth."""
    w = World(cluster, moto, work, "fresh_depth")
    log(f"fresh depth: generating days 1+2 ({rows:,} rows each), no depth level persisting")
    for day in (DAY1, DAY2):
        w.execute(w.instance_db, ticks.insert_day_sql(day, rows, persistent_depth=False))
    w.settle(w.instance_db, ticks.QUALIFIED)
    backup = w.backup(at_ist(DAY2, 16))  # the first backup: days 1 and 2, as backup 2 above
    _, pg_dump_bytes = w.pg_dump()
    shutil.rmtree(w.work, ignore_errors=True)
    return {"rows": rows, "dump_bytes": backup["bytes"], "pg_dump_bytes": pg_dump_bytes}


# -- figures -----------------------------------------------------------------------------------
def rate(rows: float, seconds: float) -> float:
    return rows / seconds if seconds > 0 else float("inf")


def figures(big: ScenarioResult, small: ScenarioResult) -> list[Figure]:
    d, n = big.details, big.rows
    a, b = big.syncs["a"], big.syncs["b"]
    out: list[Figure] = []

    base_a = rate(n, d["baseline_a_seconds"])
    meas_a = rate(a.rows_new, a.apply_seconds)
    e2e_a = rate(a.rows_new, a.download_seconds + a.apply_seconds)
    out.append(Figure(
        "a", "daily sync: new rows/s (apply)", f"COPY {base_a:,.0f} r/s", f"{meas_a:,.0f} r/s",
        meas_a / base_a, "≥ 0.85×", meas_a / base_a >= 0.85,
        f"incl. download from moto: {e2e_a:,.0f} r/s = {e2e_a / base_a:.2f}×"))

    base_b = rate(n, d["baseline_b_seconds"])
    meas_b = rate(n, b.apply_seconds)
    e2e_b = rate(n, b.download_seconds + b.apply_seconds)
    out.append(Figure(
        "b", "worst case: 1% diverged, rows/s (apply)", f"COPY {base_b:,.0f} r/s",
        f"{meas_b:,.0f} r/s", meas_b / base_b, "≥ 0.60×", meas_b / base_b >= 0.6,
        f"incl. download from moto: {e2e_b:,.0f} r/s = {e2e_b / base_b:.2f}×"))

    size_ratio = d["size_after_a"] / d["clean_size"]
    out.append(Figure(
        "c", "table size after (a) vs clean load", f"{d['clean_size'] / 2**20:,.1f} MiB",
        f"{d['size_after_a'] / 2**20:,.1f} MiB", size_ratio, "≤ 1.05×", size_ratio <= 1.05,
        f"after (b): {d['size_after_b'] / d['clean_size']:.3f}×"))

    dump_bytes, fresh = d["backup2"]["bytes"], d["fresh_depth"]
    bytes_ratio = dump_bytes / d["pg_dump_bytes"]
    out.append(Figure(
        "d", "dump bytes vs pg_dump -Fc", f"{d['pg_dump_bytes'] / 2**20:,.1f} MiB",
        f"{dump_bytes / 2**20:,.1f} MiB", bytes_ratio, "≤ 0.55×", bytes_ratio <= 0.55,
        f"{d['backup2']['parts']} parts, zstd-{ZSTD_LEVEL} binary COPY; raw binary stream of "
        f"one day: {d['raw_stream_bytes_day2'] / 2**20:,.1f} MiB; if no depth level persisted "
        f"from tick to tick: {fresh['dump_bytes'] / fresh['pg_dump_bytes']:.3f}× "
        f"({fresh['dump_bytes'] / 2**20:,.1f} vs {fresh['pg_dump_bytes'] / 2**20:,.1f} MiB)"))

    rows = d["table_rows"]
    base_e = rate(rows, d["pg_dump_seconds"])
    meas_e = rate(d["backup2"]["rows"], d["backup2"]["export_seconds"])
    incl_e = rate(d["backup2"]["rows"], d["backup2"]["seconds"])
    out.append(Figure(
        "e", "agent export rows/s vs pg_dump -Fc", f"{base_e:,.0f} r/s", f"{meas_e:,.0f} r/s",
        meas_e / base_e, "≥ 2.5×", meas_e / base_e >= 2.5,
        f"incl. upload to moto: {incl_e:,.0f} r/s = {incl_e / base_e:.2f}×"))

    small_peak, big_peak = small.peak_rss_mb, big.peak_rss_mb
    flat = big_peak / small_peak
    out.append(Figure(
        "f", f"sync peak RSS, {small.rows:,} → {n:,} rows", f"{small_peak:,.1f} MB",
        f"{big_peak:,.1f} MB", flat, f"≤ {RSS_LIMIT_MB:.0f} MB, ≤ {RSS_FLAT:.2f}×",
        big_peak <= RSS_LIMIT_MB and small_peak <= RSS_LIMIT_MB and flat <= RSS_FLAT,
        "ratio = large/small peak (flatness); per sync: "
        + ", ".join(f"{k} {s.peak_rss_mb:.0f}/{big.syncs[k].peak_rss_mb:.0f}"
                    for k, s in small.syncs.items())))
    return out


def server_version(cluster: PgCluster) -> str:
    return str(World.scalar(cluster.conninfo(), "SHOW server_version"))


def render(big: ScenarioResult, small: ScenarioResult, figs: list[Figure], version: str,
           total_seconds: float) -> str:
    d, n = big.details, big.rows
    lines = [
        f"market-sync bench: {n:,} rows/day, PostgreSQL {version} (fsync on, "
        f"PgCluster fast=False, max_wal_size 4GB), {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "S3 = moto on 127.0.0.1: throughput targets judged on apply time (engine's own "
        "progress phases, COMMIT included); download+verify shown separately.",
        "",
        f"{'':4}{'figure':42}{'baseline':>20}{'measured':>18}{'ratio':>9}  {'target':<22}ok",
    ]
    for f in figs:
        lines.append(f"({f.key}) {f.what:42}{f.baseline:>20}{f.measured:>18}"
                     f"{f.ratio:>8.3f}×  {f.target:<22}{'yes' if f.ok else 'NO'}")
    lines.append("")
    for f in figs:
        lines.append(f"({f.key}) {f.note}")
    lines += ["", "syncs (child process each; seconds; peak RSS):"]
    for scen in (small, big):
        for s in scen.syncs.values():
            lines.append(
                f"  {scen.rows:>9,} rows  {s.label:48} new {s.rows_new:>9,}  unch "
                f"{s.rows_unchanged:>9,}  div {s.rows_diverged:>7,}  parts "
                f"{s.parts['skipped']}s/{s.parts['copied']}c/{s.parts['merged']}m  "
                f"download {s.download_seconds:6.2f}  apply {s.apply_seconds:6.2f}  "
                f"RSS {s.peak_rss_mb:5.1f} MB")
    lines += [
        "",
        "baselines (before / after the measured sync): COPY day 2 "
        + " / ".join(f"{x:.2f}" for x in d["baseline_a_runs"]) + " s, COPY corrected day 2 "
        + " / ".join(f"{x:.2f}" for x in d["baseline_b_runs"]) + " s, "
        f"pg_dump -Fc {d['pg_dump_seconds']:.2f} s "
        f"({d['table_rows']:,} rows)",
        f"agent backup 2: {d['backup2']['rows']:,} rows, {d['backup2']['seconds']:.2f} s of which "
        f"S3 (moto) {d['backup2']['s3_seconds']:.2f} s; conflicts saved by (b): "
        f"{d['conflicts_saved']:,} (instance changed {d['diverged_on_instance']:,})",
        f"total bench time {total_seconds:.0f} s",
    ]
    return "\n".join(lines)


@contextmanager
def environment(work_parent: str | None) -> Iterator[tuple[PgCluster, MotoServer, Path]]:
    use_fake_credentials()
    work = Path(tempfile.mkdtemp(prefix="market-sync-bench-", dir=work_parent))
    # Every timed phase starts with a CHECKPOINT; a 4 GB max_wal_size keeps a WAL-triggered
    # one out of the middle of a phase (a day's COPY writes ~0.7 GB of WAL), where it landed
    # in one run and not the next and moved a single COPY by up to 30 %.
    cluster = PgCluster(fast=False, settings={"max_wal_size": "4GB"})
    moto = MotoServer()
    try:
        cluster.start()
        moto.start()
        yield cluster, moto, work
    finally:
        moto.stop()
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=None,
                        help="tick rows per day (default 1,000,000; --quick: 100,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 rows: a smoke run")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--workdir", help="where temporary files go (default: the temp dir)")
    args = parser.parse_args(argv)
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    small_rows = max(1_000, rows // 10)
    if rows > ticks.INSTRUMENTS * ticks.SESSION_SECONDS // 2:
        parser.error("too many rows for one trading day of the generator")

    started = time.perf_counter()
    with environment(args.workdir) as (cluster, moto, work):
        version = server_version(cluster)
        small = scenario(cluster, moto, work, "small", small_rows, measure=False)
        big = scenario(cluster, moto, work, "large", rows, measure=True)
        big.details["fresh_depth"] = fresh_depth_bytes(cluster, moto, work, rows)
    figs = figures(big, small)
    text = render(big, small, figs, version, time.perf_counter() - started)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({
            "rows": rows, "small_rows": small_rows, "postgres": version,
            "figures": {f.key: f.to_json() for f in figs},
            "syncs": {"small": {k: s.to_json() for k, s in small.syncs.items()},
                      "large": {k: s.to_json() for k, s in big.syncs.items()}},
            "details": big.details,
        }, indent=2, default=str))
    return 0
