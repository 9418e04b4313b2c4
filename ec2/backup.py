"""``market-sync-agent backup``: one snapshot of the configured tables, to S3.

All tables are read in one REPEATABLE READ, READ ONLY transaction. Each table
becomes one part per watermark day (snapshot tables: one part), streamed
``COPY (SELECT …) TO STDOUT (FORMAT binary)`` → zstd level 1 → a temp file,
hashing both the raw stream (``content_sha256``: same rows, same hash) and the
compressed bytes (``sha256``) on the fly, so memory stays flat whatever the
size. Parts upload with S3's SHA-256 checksum; ``manifest.json`` goes last.

The covered range runs from the last day already in S3 (inclusive) to today
(IST), so a missed day is picked up by the next run; the first run or
``--full`` dumps everything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from shared.calendar import today_ist
from shared.config import Config
from shared.dumpstore import DumpStore
from shared.errors import ConfigError, DatabaseError, SchemaMismatchError
from shared.manifest import (
    Column,
    Manifest,
    Part,
    Source,
    TableDump,
    dump_folder,
    new_dump_id,
    part_file_name,
)
from shared.sqlparts import (
    check_watermark_type,
    day_expression,
    day_predicate,
    read_columns,
    read_fills,
    read_primary_key,
    table_ident,
)
from shared.tables import MergeMode, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

# Level 1, not 3: on binary COPY streams of tick rows level 1 is both faster and smaller
# (measured with bench/ticks.py at 1M rows a day: 0.51× vs 0.59× of pg_dump -Fc's bytes;
# 0.65× vs 0.76× when no depth level persists). docs/design-notes.md has the figures.
ZSTD_LEVEL = 1
FLUSH_BYTES = 1 << 20


@dataclass(frozen=True)
class TableBackup:
    name: str
    rows: int
    bytes: int
    parts: int


@dataclass(frozen=True)
class BackupResult:
    dump_id: str
    previous_dump_id: str | None
    kind: str
    first_day: dt.date | None
    last_day: dt.date | None
    tables: tuple[TableBackup, ...]
    seconds: float
    manifest_key: str

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True, "dump_id": self.dump_id, "previous_dump_id": self.previous_dump_id,
            "kind": self.kind,
            "range": None if self.first_day is None else
            {"first": str(self.first_day), "last": str(self.last_day)},
            "rows": self.rows, "bytes": self.bytes, "seconds": round(self.seconds, 3),
            "manifest": self.manifest_key,
            "tables": [{"name": t.name, "rows": t.rows, "bytes": t.bytes, "parts": t.parts}
                       for t in self.tables],
        }

    def summary(self) -> str:
        span = f"{self.first_day} … {self.last_day}" if self.first_day else "no days"
        lines = [f"dump {self.dump_id} ({self.kind}, {span}): {self.rows:,} rows, "
                 f"{self.bytes:,} bytes in {self.seconds:.1f} s"]
        lines += [f"  {t.name}: {t.rows:,} rows in {t.parts} part(s), {t.bytes:,} bytes"
                  for t in self.tables]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Spooled:
    path: Path
    rows: int
    bytes: int
    sha256: str
    content_sha256: str


def export_copy(cursor: psycopg.Cursor[Any], query: sql.Composed, dest: Path) -> _Spooled:
    """Run a ``COPY … TO STDOUT (FORMAT binary)``, compress and hash it into ``dest``."""
    import zstandard

    raw_hash, packed_hash = hashlib.sha256(), hashlib.sha256()
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
    buffer = bytearray()
    written = 0
    with dest.open("wb") as out:
        def flush(final: bool = False) -> None:
            nonlocal written
            raw_hash.update(buffer)
            packed = compressor.compress(bytes(buffer))
            if final:
                packed += compressor.flush()
            packed_hash.update(packed)
            out.write(packed)
            written += len(packed)
            buffer.clear()

        with cursor.copy(query) as copy:
            for chunk in copy:
                buffer += chunk
                if len(buffer) >= FLUSH_BYTES:
                    flush()
        flush(final=True)
    rows = cursor.rowcount
    return _Spooled(dest, rows, written, packed_hash.hexdigest(), raw_hash.hexdigest())


class BackupAgent:
    """Makes one dump. The S3 client and the clock are injected."""

    def __init__(self, config: Config, s3: S3Client, *, instance_id: str | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.config = config
        self.store = DumpStore(s3, config.aws.bucket, config.aws.prefix)
        self.instance_id = instance_id or config.aws.instance_id or socket.gethostname()
        self.clock = clock

    @classmethod
    def from_config(cls, config: Config) -> BackupAgent:
        from shared.aws import AwsClients

        return cls(config, AwsClients(config.aws).s3())

    def run(self, full: bool = False) -> BackupResult:
        if not self.config.tables:
            raise ConfigError(f"{self.config.path}: no [[tables]] configured",
                              "list the tables to back up as [[tables]] entries")
        started = time.monotonic()
        now = self.clock()
        today = today_ist(now)
        previous = None if full else self.store.latest()
        previous_id = previous.manifest.dump_id if previous else None
        if full:
            latest_ref = self.store.list_dumps()
            previous_id = latest_ref[-1].dump_id if latest_ref else None
        first_day = previous.manifest.last_day if previous else None
        if first_day and first_day > today:
            first_day = today
        kind = "incremental" if previous else "full"
        dump_id = new_dump_id(now)
        # Dump ids must sort after their predecessor, whatever the clock says (skew, a
        # second run within the same second): the laptop applies dumps in id order.
        stamp = now
        while previous_id and dump_id <= previous_id:
            stamp += dt.timedelta(seconds=1)
            dump_id = new_dump_id(max(stamp, dt.datetime.strptime(
                previous_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)))
        folder = dump_folder(self.config.aws.prefix, dump_id)

        try:
            conn = psycopg.connect(self.config.database.conninfo, autocommit=False,
                                   application_name="market-sync-agent")
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"cannot connect to the market database: {exc}".strip(),
                                "is the app's PostgreSQL running? check [database] conninfo"
                                ) from None
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        tables: list[TableDump] = []
        results: list[TableBackup] = []
        overall_min: dt.date | None = None
        overall_max: dt.date | None = None
        with conn, tempfile.TemporaryDirectory(prefix="market-sync-backup-") as work:
            # One snapshot for every table; a stable row order gives stable content hashes.
            conn.execute("SET LOCAL synchronize_seqscans = off")
            server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            database = conn.info.dbname
            for spec in self.config.tables:
                table = self._dump_table(conn, spec, first_day, Path(work), folder)
                tables.append(table)
                results.append(TableBackup(str(spec.name), table.rows, table.compressed_bytes,
                                           len(table.parts)))
                low, high = table.watermark_min, table.watermark_max
                if low and (overall_min is None or low < overall_min):
                    overall_min = low
                if high and (overall_max is None or high > overall_max):
                    overall_max = high
            conn.rollback()
        start = first_day or overall_min or today
        manifest = Manifest(
            dump_id=dump_id, previous_dump_id=previous_id, created_at=now,
            source=Source(self.instance_id, database, server_version), kind=kind,
            # A watermark after today (clock skew, a bad row) still lies inside the range.
            first_day=start, last_day=max(today, start, overall_max or start),
            tables=tuple(tables),
        )
        key = self.store.put_manifest(manifest)
        elapsed = time.monotonic() - started
        logger.info("dump %s: %d rows in %.1f s", dump_id, manifest.rows, elapsed)
        return BackupResult(dump_id, previous_id, kind, manifest.first_day, manifest.last_day,
                            tuple(results), elapsed, key)

    def _dump_table(self, conn: psycopg.Connection[Any], spec: TableSpec,
                    first_day: dt.date | None, work: Path, folder: str) -> TableDump:
        live = read_columns(conn, spec.name)
        if not live:
            raise SchemaMismatchError(f"configured table {spec.name} does not exist "
                                      "in the market database",
                                      "fix the [[tables]] name in the agent config")
        types = {c.name: c.type for c in live}
        key = spec.key or read_primary_key(conn, spec.name)
        for column in key:
            if column not in types:
                raise SchemaMismatchError(f"key column {column!r} is not a column of {spec.name}")
        fills = read_fills(conn, spec.name)
        columns = tuple(Column(c.name, c.type, c.not_null, fills.get(c.name)) for c in live)
        select = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(c.name) for c in live), table_ident(spec.name))
        parts: list[Part] = []
        wm_min = wm_max = None
        with conn.cursor() as cur:
            if spec.mode is MergeMode.SNAPSHOT or spec.watermark is None:
                days: list[dt.date | None] = [None]
            else:
                wm_type = check_watermark_type(spec.name, spec.watermark,
                                               types.get(spec.watermark))
                day = day_expression(spec.watermark, wm_type)
                where: sql.Composable = sql.SQL("")
                if first_day is not None:
                    where = sql.SQL(" WHERE {} >= {}").format(day, sql.Literal(first_day))
                cur.execute(sql.SQL("SELECT DISTINCT {day} FROM {t}{where} ORDER BY 1").format(
                    day=day, t=table_ident(spec.name), where=where))
                days = [r[0] for r in cur.fetchall() if r[0] is not None]
                if days:
                    wm_min, wm_max = days[0], days[-1]
            for day_value in days:
                query: sql.Composed = select
                if day_value is not None and spec.watermark is not None:
                    query = sql.SQL("{} WHERE {}").format(
                        select, day_predicate(spec.watermark, types[spec.watermark], day_value))
                if key:
                    # Rows in key order: the content hash depends on the rows alone (not on
                    # storage order, which VACUUM FULL or CLUSTER change), and neighbouring
                    # ticks of one instrument compress better.
                    query = sql.SQL("{} ORDER BY {}").format(
                        query, sql.SQL(", ").join(map(sql.Identifier, key)))
                file = part_file_name(spec.name, day_value)
                spooled = export_copy(cur, sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)")
                                      .format(query), work / "part")
                self.store.upload_file(folder + file, spooled.path, spooled.sha256)
                spooled.path.unlink()
                parts.append(Part(file, day_value, spooled.rows, spooled.bytes, spooled.sha256,
                                  spooled.content_sha256))
                logger.info("%s %s: %d rows, %d bytes", spec.name, day_value or "(all)",
                            spooled.rows, spooled.bytes)
        return TableDump(name=spec.name, columns=columns, key=tuple(key),
                         watermark=spec.watermark, mode=spec.mode, parts=tuple(parts),
                         watermark_min=wm_min, watermark_max=wm_max)
