"""Reading a manifest: every field checked for its type, and against the table it describes.

A damaged or hostile manifest must change nothing on the laptop, so nothing is
believed that does not hold together: a watermarked table's parts each name a
day it covers (or are its NULL-watermark part), a snapshot has exactly one
whole-table part, key and watermark are columns of the table, the totals are
the sums of the parts, and the covered days are sorted, disjoint and inside the
dump's range (days after it only where the instance had rows). Errors quote at
most :data:`QUOTE_CHARS` characters of any value.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from shared.errors import ManifestError
from shared.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_MANIFEST_BYTES,
    READABLE_VERSIONS,
    Column,
    Manifest,
    Part,
    SchemaFile,
    Source,
    TableDump,
)
from shared.sqlparts import DAY_TYPES
from shared.tables import MAX_IDENTIFIER_BYTES, MergeMode, QualifiedName

# Matched with fullmatch: "$" alone would also accept a trailing newline.
_DUMP_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
_PART_FILE = re.compile(r"[A-Za-z0-9_.%-]{1,900}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
QUOTE_CHARS = 200
MAX_COUNT = 1 << 62  # rows and bytes: far beyond any dump, inside PostgreSQL's bigint
MAX_TYPE_CHARS = 200
MAX_FILL_CHARS = 1 << 20  # a column default's text, as PostgreSQL stores it
MAX_FUTURE_DAYS = 366  # covered days after the range: days the instance had rows for


def quote(value: object) -> str:
    """``repr(value)``, cut to :data:`QUOTE_CHARS` characters."""
    text = repr(value)
    if len(text) <= QUOTE_CHARS:
        return text
    return f"{text[:QUOTE_CHARS]}… ({len(text):,} characters)"


class _Reader:
    """Typed field access that names the field path in every error."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, problem: str) -> ManifestError:
        return ManifestError(
            f"manifest {self.where} is refused: {path} {problem}",
            "the dump is damaged or was not written by market-sync's agent; nothing of it "
            "was applied. Delete it from S3 and run `market-sync-agent backup --full`")

    def get(self, obj: Any, key: str, path: str, kind: type | tuple[type, ...],
            optional: bool = False) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(path, "is not an object")
        full = f"{path}.{key}" if path else key
        if key not in obj:
            raise self.fail(full, "is missing")
        value = obj[key]
        if value is None and optional:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(full, f"must be {names}, not {type(value).__name__}")
        return value

    def text(self, obj: Any, key: str, path: str, limit: int,
             optional: bool = False) -> Any:
        value = self.get(obj, key, path, str, optional)
        if value is not None and (len(value) > limit or "\x00" in value):
            raise self.fail(f"{path}.{key}" if path else key,
                            f"is not a plausible value: {quote(value)}")
        return value

    def name(self, obj: Any, key: str, path: str, optional: bool = False) -> Any:
        """An identifier: 1 to 63 bytes, no NUL (PostgreSQL would truncate a longer one)."""
        value = self.get(obj, key, path, str, optional)
        if value is not None and (not value or "\x00" in value
                                  or len(value.encode()) > MAX_IDENTIFIER_BYTES):
            raise self.fail(f"{path}.{key}", f"is not an identifier: {quote(value)}")
        return value

    def date(self, obj: Any, key: str, path: str, optional: bool = False) -> dt.date | None:
        text = self.get(obj, key, path, str, optional)
        if text is None:
            return None
        return self.parse_date(text, f"{path}.{key}" if path else key)

    def parse_date(self, text: Any, path: str) -> dt.date:
        if not isinstance(text, str) or len(text) != 10:
            raise self.fail(path, f"is not a date: {quote(text)}")
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise self.fail(path, f"is not a date: {quote(text)}") from None

    def count(self, obj: Any, key: str, path: str) -> int:
        value: int = self.get(obj, key, path, int)
        if value < 0:
            raise self.fail(f"{path}.{key}", "is negative")
        if value > MAX_COUNT:
            raise self.fail(f"{path}.{key}", "is impossibly large")
        return value

    def sha(self, obj: Any, key: str, path: str) -> str:
        value: str = self.get(obj, key, path, str)
        if not _SHA256.fullmatch(value):
            raise self.fail(f"{path}.{key}", "is not a sha256 hex digest")
        return value

    def file(self, obj: Any, key: str, path: str) -> str:
        value: str = self.get(obj, key, path, str)
        if not _PART_FILE.fullmatch(value) or value.startswith(".") or ".." in value:
            raise self.fail(f"{path}.{key}", f"is not a safe object name: {quote(value)}")
        return value


def read_manifest(raw: bytes, where: str = "") -> Manifest:
    """Parse and validate a manifest; ``where`` (its S3 key) goes into errors."""
    r = _Reader(where or "(unnamed)")
    if len(raw) > MAX_MANIFEST_BYTES:
        raise r.fail("", f"is {len(raw):,} bytes, more than the {MAX_MANIFEST_BYTES:,} a "
                     "manifest may have")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise r.fail("", f"is not valid JSON ({quote(str(exc))})") from None
    if r.get(doc, "format", "", str) != FORMAT_NAME:
        raise r.fail("format", f"is not {FORMAT_NAME!r}")
    version = r.get(doc, "version", "", int)
    if version not in READABLE_VERSIONS:
        raise ManifestError(
            f"manifest {r.where} is dump format version {quote(version)}; "
            f"this market-sync reads version {FORMAT_VERSION}",
            "update market-sync on the laptop" if version > FORMAT_VERSION
            else "the dump predates this format; re-run the backup with --full")
    dump_id = r.get(doc, "dump_id", "", str)
    if not _DUMP_ID.fullmatch(dump_id):
        raise r.fail("dump_id", f"is not a dump id: {quote(dump_id)}")
    previous = r.get(doc, "previous_dump_id", "", str, optional=True)
    if previous is not None and not _DUMP_ID.fullmatch(previous):
        raise r.fail("previous_dump_id", f"is not a dump id: {quote(previous)}")
    if previous is not None and previous >= dump_id:
        raise r.fail("previous_dump_id", f"{previous} does not come before {dump_id}")
    try:
        created = dt.datetime.fromisoformat(r.text(doc, "created_at", "", 64))
    except ValueError:
        raise r.fail("created_at", "is not an ISO timestamp") from None
    src = r.get(doc, "source", "", dict)
    source = Source(
        instance_id=r.text(src, "instance_id", "source", 255),
        database=r.text(src, "database", "source", 255),
        server_version=r.text(src, "server_version", "source", 255),
    )
    kind = r.get(doc, "kind", "", str)
    if kind not in ("incremental", "full"):
        raise r.fail("kind", f"must be 'incremental' or 'full', not {quote(kind)}")
    rng = r.get(doc, "range", "", dict, optional=True)
    first = r.date(rng, "first", "range") if rng is not None else None
    last = r.date(rng, "last", "range") if rng is not None else None
    if first and last and first > last:
        raise r.fail("range", "ends before it starts")

    tables = [_table(r, t, f"tables[{i}]", version, first, last)
              for i, t in enumerate(r.get(doc, "tables", "", list))]
    names = [t.name for t in tables]
    if len(names) != len(set(names)):
        raise r.fail("tables", "name the same table twice")
    files = [p.file for t in tables for p in t.parts]
    if len(files) != len(set(files)):
        raise r.fail("tables", "name the same part file twice")
    schema = None
    sch = r.get(doc, "schema_sql", "", dict, optional=True)
    if sch is not None:
        schema = SchemaFile(r.file(sch, "file", "schema_sql"), r.count(sch, "bytes", "schema_sql"),
                            r.sha(sch, "sha256", "schema_sql"))
    return Manifest(
        dump_id=dump_id, previous_dump_id=previous, created_at=created, source=source,
        kind=kind, first_day=first, last_day=last, tables=tuple(tables), schema=schema,
        version=version,
    )


def _table(r: _Reader, t: Any, path: str, version: int, first: dt.date | None,
           last: dt.date | None) -> TableDump:
    name = QualifiedName(r.name(t, "schema", path), r.name(t, "table", path))
    columns = []
    for j, c in enumerate(r.get(t, "columns", path, list)):
        cpath = f"{path}.columns[{j}]"
        columns.append(Column(r.name(c, "name", cpath), r.text(c, "type", cpath, MAX_TYPE_CHARS),
                              r.get(c, "not_null", cpath, bool),
                              r.text(c, "fill", cpath, MAX_FILL_CHARS, optional=True)
                              if isinstance(c, dict) and "fill" in c else None))
    if not columns:
        raise r.fail(f"{path}.columns", "is empty")
    types = {c.name: c.type for c in columns}
    if len(types) != len(columns):
        raise r.fail(f"{path}.columns", "name the same column twice")
    key = r.get(t, "key", path, list)
    if not all(isinstance(k, str) for k in key):
        raise r.fail(f"{path}.key", "must be a list of strings")
    for k in key:
        if k not in types:
            raise r.fail(f"{path}.key", f"names {quote(k)}, which is not one of its columns")
    if len(set(key)) != len(key):
        raise r.fail(f"{path}.key", "names a column twice")
    mode_text = r.get(t, "mode", path, str)
    try:
        mode = MergeMode(mode_text)
    except ValueError:
        raise r.fail(f"{path}.mode", f"is not a merge mode: {quote(mode_text)}") from None
    watermark = r.name(t, "watermark", path, optional=True)
    dated = watermark is not None and mode is not MergeMode.SNAPSHOT
    if dated and types.get(watermark) not in DAY_TYPES:
        raise r.fail(f"{path}.watermark", f"{quote(watermark)} is not a date or timestamp "
                     "column of the table")
    parts = []
    for j, p in enumerate(r.get(t, "parts", path, list)):
        ppath = f"{path}.parts[{j}]"
        null = bool(r.get(p, "watermark_null", ppath, bool)) if version >= 2 else False
        parts.append(Part(
            file=r.file(p, "file", ppath), day=r.date(p, "day", ppath, optional=True),
            rows=r.count(p, "rows", ppath), bytes=r.count(p, "bytes", ppath),
            sha256=r.sha(p, "sha256", ppath),
            content_sha256=r.sha(p, "content_sha256", ppath), watermark_null=null))
    table = TableDump(
        name=name, columns=tuple(columns), key=tuple(key), watermark=watermark, mode=mode,
        parts=tuple(parts),
        watermark_min=r.date(t, "watermark_min", path, optional=True),
        watermark_max=r.date(t, "watermark_max", path, optional=True),
        covers=_covers(r, t, path, version, parts),
        covers_null=bool(r.get(t, "covers_null", path, bool)) if version >= 2 else False,
        history_from=r.date(t, "history_from", path, optional=True) if version >= 2 else None,
    )
    if dated:
        _check_dated(r, path, table, first, last, version)
    else:
        _check_whole(r, path, table)
    _check_totals(r, t, path, table)
    return table


def _covers(r: _Reader, t: Any, path: str, version: int,
            parts: list[Part]) -> tuple[tuple[dt.date, dt.date], ...]:
    if version < 2:  # format v1 covers exactly the days it has parts for
        return tuple((p.day, p.day) for p in sorted(parts, key=lambda p: p.day or dt.date.min)
                     if p.day is not None)
    ranges = []
    previous: dt.date | None = None
    for i, item in enumerate(r.get(t, "covers", path, list)):
        cpath = f"{path}.covers[{i}]"
        if not isinstance(item, list) or len(item) != 2:
            raise r.fail(cpath, "must be a [first, last] pair of dates")
        a, b = r.parse_date(item[0], cpath), r.parse_date(item[1], cpath)
        if a > b:
            raise r.fail(cpath, "ends before it starts")
        if previous is not None and a <= previous + dt.timedelta(days=1):
            raise r.fail(cpath, "overlaps or touches the range before it, or is out of order")
        ranges.append((a, b))
        previous = b
    return tuple(ranges)


def _check_totals(r: _Reader, t: Any, path: str, table: TableDump) -> None:
    if r.count(t, "rows", path) != table.rows:
        raise r.fail(f"{path}.rows", f"is {t['rows']}, but its parts hold {table.rows}")
    if r.count(t, "bytes", path) != table.compressed_bytes:
        raise r.fail(f"{path}.bytes",
                     f"is {t['bytes']}, but its parts are {table.compressed_bytes}")
    days = sorted(p.day for p in table.parts if p.day is not None)
    low, high = (days[0], days[-1]) if days else (None, None)
    if (table.watermark_min, table.watermark_max) != (low, high):
        raise r.fail(path, f"has watermark_min … watermark_max {table.watermark_min} … "
                     f"{table.watermark_max}, but its parts' days are {low} … {high}")


def _check_whole(r: _Reader, path: str, table: TableDump) -> None:
    """A snapshot (or a table without watermark): one part, the whole table."""
    if len(table.parts) != 1 or table.parts[0].day is not None \
            or table.parts[0].watermark_null:
        raise r.fail(f"{path}.parts", f"of a {table.mode} table without watermark days must "
                     "be exactly one part with no day")
    if table.covers or table.covers_null:
        raise r.fail(f"{path}.covers", "must be empty for a table without watermark days")


def _check_dated(r: _Reader, path: str, table: TableDump, first: dt.date | None,
                 last: dt.date | None, version: int) -> None:
    seen: set[dt.date] = set()
    nulls = 0
    for j, part in enumerate(table.parts):
        ppath = f"{path}.parts[{j}]"
        if part.watermark_null:
            nulls += 1
            if part.day is not None:
                raise r.fail(ppath, "is the NULL-watermark part but names a day")
            if not table.covers_null:
                raise r.fail(ppath, "is a NULL-watermark part of a table that does not "
                             "cover NULL watermarks")
            continue
        if part.day is None:
            raise r.fail(f"{ppath}.day", f"is missing: every part of {table.name}, whose "
                         f"watermark is {quote(table.watermark)}, must name its day")
        if part.day in seen:
            raise r.fail(f"{ppath}.day", f"{part.day} has a part already")
        seen.add(part.day)
        if not table.covers_day(part.day):
            raise r.fail(f"{ppath}.day", f"{part.day} is not among the days the table covers")
        if version < 2 and first and last and not first <= part.day <= last:
            raise r.fail(f"{ppath}.day", f"{part.day} is outside the dump's range "
                         f"{first} … {last}")
    if nulls > 1:
        raise r.fail(f"{path}.parts", "hold more than one NULL-watermark part")
    if version < 2 or not table.covers:
        return
    if first is None or last is None:
        raise r.fail(f"{path}.covers", "names days, but the dump has no range")
    if table.covers[0][0] < first:
        raise r.fail(f"{path}.covers", f"starts at {table.covers[0][0]}, before the dump's "
                     f"range {first} … {last}")
    # Up to the range's last day: one block ending there. After it: single days, each a
    # day the instance had rows for (now or at the previous backup), at most a year's worth.
    regular = [c for c in table.covers if c[0] <= last]
    later = [c for c in table.covers if c[0] > last]
    if len(regular) > 1 or (regular and regular[0][1] != last):
        raise r.fail(f"{path}.covers", f"must cover one run of days ending on the dump's "
                     f"last day {last}")
    if any(a != b for a, b in later) or len(later) > MAX_FUTURE_DAYS:
        raise r.fail(f"{path}.covers", f"after the dump's last day {last} may only name "
                     f"single days, at most {MAX_FUTURE_DAYS}")
