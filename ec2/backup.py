"""``market-sync-agent backup``: one snapshot of the configured tables, to S3.

All tables are read in one REPEATABLE READ, READ ONLY transaction. Each table
becomes one part per watermark day (snapshot tables: one part), streamed
``COPY (SELECT …) TO STDOUT (FORMAT binary)`` → zstd level 1 → a temp file,
hashing both the raw stream (``content_sha256``: same rows, same hash) and the
compressed bytes (``sha256``) on the fly, so memory stays flat whatever the
size. Parts upload with S3's SHA-256 checksum; ``manifest.json`` goes last.

What a dump covers (docs/design-notes.md, "What a dump covers"): for each
watermarked table, every day from where the newest dump in S3 stopped (its
range's last day, inclusive) to today (IST), whether or not the day has rows,
plus each later day the table has rows for (a mistyped future date still
travels) or had rows for at the previous backup (so its removal travels too),
plus the rows whose watermark is NULL, in a part of their own. The start comes
from S3, never from the data: a row dated next year or a back-dated correction
cannot move it, and a missed backup is caught up by the next. A table the newest
dump does not have, and ``--full``, start from the table's earliest day. A newest
dump that cannot be read, or that covers days after today, stops the backup.
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
from shared.errors import ConfigError, DatabaseError, ManifestError, SchemaMismatchError
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


class BackupRangeError(ManifestError):
    """The agent cannot tell which days to cover: it stops rather than cover the wrong ones."""


@dataclass(frozen=True)
class _Previous:
    """What the newest dump in S3 covered: where this backup continues from."""

    dump_id: str
    end: dt.date  # the last day of its range (future-dated rows' days are not part of it)
    tables: dict[str, TableDump]


def _previous_coverage(store: DumpStore, today: dt.date, full: bool) -> _Previous | None:
    """Where the newest dump in S3 stopped. ``full`` needs only its id (and the future
    days it had rows for), so an unreadable or clock-ahead newest dump does not stop it."""
    refs = store.list_dumps()
    if not refs:
        return None
    try:
        manifest = store.load_manifest(refs[-1]).manifest
    except ManifestError as exc:
        if full:
            return _Previous(refs[-1].dump_id, today, {})
        raise BackupRangeError(
            f"the newest dump in S3 ({refs[-1].dump_id}) cannot be read, so the backup "
            f"cannot tell which days to cover: {exc.message}",
            "delete that dump from S3 (or fix its manifest) and run the backup again, "
            "or run `market-sync-agent backup --full`") from None
    end = manifest.last_day
    if manifest.version < 2 and end is not None:
        # A v1 range could end on a mistyped future row's day; its own "today" was the
        # day it was made.
        end = min(end, today_ist(manifest.created_at))
    if end is not None and end > today and not full:
        raise BackupRangeError(
            f"the newest dump in S3 ({manifest.dump_id}) covers days up to {end}, after "
            f"today ({today} IST): the instance's clock is wrong, or was when that dump "
            "was made",
            "set the clock right, then run `market-sync-agent backup --full`")
    return _Previous(manifest.dump_id, min(end or today, today),
                     {str(t.name): t for t in manifest.tables})


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
        previous = _previous_coverage(self.store, today, full)
        previous_id = previous.dump_id if previous else None
        kind = "incremental" if previous and not full else "full"
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
        with conn, tempfile.TemporaryDirectory(prefix="market-sync-backup-") as work:
            # One snapshot for every table; a stable row order gives stable content hashes.
            conn.execute("SET LOCAL synchronize_seqscans = off")
            server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            database = conn.info.dbname
            for spec in self.config.tables:
                before = None if previous is None else previous.tables.get(str(spec.name))
                start = previous.end if previous and before and not full else None
                table = self._dump_table(conn, spec, today, start, before, Path(work), folder)
                tables.append(table)
                results.append(TableBackup(str(spec.name), table.rows, table.compressed_bytes,
                                           len(table.parts)))
            conn.rollback()
        starts = [t.covers[0][0] for t in tables if t.covers and t.covers[0][0] <= today]
        manifest = Manifest(
            dump_id=dump_id, previous_dump_id=previous_id, created_at=now,
            source=Source(self.instance_id, database, server_version), kind=kind,
            # The timeline's range; a mistyped future day travels as a covered day after it.
            first_day=min(starts, default=today), last_day=today,
            tables=tuple(tables),
        )
        key = self.store.put_manifest(manifest)
        elapsed = time.monotonic() - started
        logger.info("dump %s: %d rows in %.1f s", dump_id, manifest.rows, elapsed)
        return BackupResult(dump_id, previous_id, kind, manifest.first_day, manifest.last_day,
                            tuple(results), elapsed, key)

    def _dump_table(self, conn: psycopg.Connection[Any], spec: TableSpec, today: dt.date,
                    start: dt.date | None, before: TableDump | None, work: Path,
                    folder: str) -> TableDump:
        """One table's parts. ``start``: the first day to cover (None: the table's earliest
        day); ``before``: the table in the newest dump in S3, if it has it."""
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
        order = sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(map(sql.Identifier, key))) \
            if key else sql.SQL("")
        dump = _TableDumper(self, conn, spec, select, order, work, folder)
        if spec.mode is MergeMode.SNAPSHOT or spec.watermark is None:
            return TableDump(name=spec.name, columns=columns, key=tuple(key),
                             watermark=spec.watermark, mode=spec.mode,
                             parts=(dump.part(None, sql.SQL("true")),))
        wm_type = check_watermark_type(spec.name, spec.watermark, types.get(spec.watermark))
        day = day_expression(spec.watermark, wm_type)
        ident = table_ident(spec.name)
        with conn.cursor() as cur:
            # The earliest day, through the watermark's index (min() of the plain column).
            cur.execute(sql.SQL("SELECT {day} FROM (SELECT min({wm}) AS {wm} FROM {t}) m")
                        .format(day=day, wm=sql.Identifier(spec.watermark), t=ident))
            history_from: dt.date | None = cur.fetchone()[0]  # type: ignore[index]
            first = start if start is not None else min(history_from or today, today)
            # One scan finds the days to dump and whether NULL watermarks exist (a NOT NULL
            # column has none to look for).
            wm_nullable = not any(c.name == spec.watermark and c.not_null for c in live)
            nulls_too = sql.SQL(" OR {} IS NULL").format(sql.Identifier(spec.watermark)) \
                if wm_nullable else sql.SQL("")
            cur.execute(sql.SQL("SELECT DISTINCT {day} FROM {t} WHERE {day} >= {first}{nulls} "
                                "ORDER BY 1").format(day=day, t=ident, first=sql.Literal(first),
                                                     nulls=nulls_too))
            found: list[dt.date | None] = [r[0] for r in cur.fetchall()]
        days = [d for d in found if d is not None]
        nulls = len(days) < len(found)
        # Days after today stay covered while the previous dump had rows there: a
        # mistyped future row that was corrected is then removed on the laptop too.
        carried = {p.day for p in (before.parts if before else ())
                   if p.day is not None and p.day > today}
        later = sorted({d for d in days if d > today} | carried)
        parts = [dump.part(d, day_predicate(spec.watermark, wm_type, d)) for d in days]
        if nulls:
            parts.append(dump.part(None, sql.SQL("{} IS NULL").format(
                sql.Identifier(spec.watermark)), null=True))
        dated = [p.day for p in parts if p.day is not None]
        return TableDump(
            name=spec.name, columns=columns, key=tuple(key), watermark=spec.watermark,
            mode=spec.mode, parts=tuple(parts),
            watermark_min=min(dated, default=None), watermark_max=max(dated, default=None),
            covers=((first, today), *((d, d) for d in later)), covers_null=True,
            history_from=history_from)


class _TableDumper:
    """Writes one table's parts: COPY out, compress, hash, upload."""

    def __init__(self, agent: BackupAgent, conn: psycopg.Connection[Any], spec: TableSpec,
                 select: sql.Composed, order: sql.Composable, work: Path, folder: str) -> None:
        self.agent, self.conn, self.spec = agent, conn, spec
        self.select, self.order, self.work, self.folder = select, order, work, folder

    def part(self, day: dt.date | None, where: sql.Composable, null: bool = False) -> Part:
        # Rows in key order: the content hash depends on the rows alone (not on storage
        # order, which VACUUM FULL or CLUSTER change), and neighbouring ticks of one
        # instrument compress better.
        query = sql.SQL("COPY ({} WHERE {}{}) TO STDOUT (FORMAT binary)").format(
            self.select, where, self.order)
        file = part_file_name(self.spec.name, day, null=null)
        with self.conn.cursor() as cur:
            spooled = export_copy(cur, query, self.work / "part")
        self.agent.store.upload_file(self.folder + file, spooled.path, spooled.sha256)
        spooled.path.unlink()
        logger.info("%s %s: %d rows, %d bytes", self.spec.name,
                    "(NULL watermark)" if null else day or "(all)", spooled.rows, spooled.bytes)
        return Part(file, day, spooled.rows, spooled.bytes, spooled.sha256,
                    spooled.content_sha256, watermark_null=null)
