"""Dump format v1: the manifest, written last, that makes a dump exist.

A dump is a folder ``<prefix>dumps/YYYY/MM/DD/<dump_id>/`` holding one part per
table per watermark day (a zstd-compressed PostgreSQL binary COPY stream) and
``manifest.json``. Reading a manifest validates it completely: an unknown
version, a missing field or a wrong type is a :class:`ManifestError` that names
the field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ManifestError
from shared.isodates import iso_or_none
from shared.tables import MergeMode, QualifiedName

FORMAT_NAME = "market-sync-dump"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DUMPS_FOLDER = "dumps/"
SCHEMA_FILE = "schema.sql.zst"

# Matched with fullmatch: "$" alone would also accept a trailing newline.
_DUMP_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
_PART_FILE = re.compile(r"[A-Za-z0-9_.%-]{1,900}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def new_dump_id(now: dt.datetime | None = None) -> str:
    """Sortable: UTC time to the second, then 8 random hex digits."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def dump_folder(prefix: str, dump_id: str) -> str:
    """``<prefix>dumps/YYYY/MM/DD/<dump_id>/`` (the date is the dump id's UTC date)."""
    return f"{prefix}{DUMPS_FOLDER}{dump_id[0:4]}/{dump_id[4:6]}/{dump_id[6:8]}/{dump_id}/"


def part_file_name(name: QualifiedName, day: dt.date | None) -> str:
    """An object name safe anywhere: anything but ``[A-Za-z0-9_-]`` is %-escaped."""
    def escape(text: str) -> str:
        return "".join(
            ch if re.fullmatch(r"[A-Za-z0-9_-]", ch) else "".join(f"%{b:02X}" for b in ch.encode())
            for ch in text
        )

    suffix = day.isoformat() if day else "all"
    return f"{escape(name.schema)}.{escape(name.table)}.{suffix}.copy.zst"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type() text, e.g. "numeric(12,2)", "double precision[]"
    not_null: bool = False
    # Added on the instance with a default: the value its rows that predate the column hold
    # (PostgreSQL's attmissingval, as text); `sync --add-columns` gives the laptop's the same.
    fill: str | None = None


@dataclass(frozen=True)
class Part:
    """One table's rows for one watermark day (``day`` None: the whole table)."""

    file: str
    day: dt.date | None
    rows: int
    bytes: int
    sha256: str  # of the compressed object, as stored
    content_sha256: str  # of the uncompressed COPY stream: same rows, same hash

    @property
    def day_key(self) -> str:
        """How the laptop's ledger names the part's day: ISO date, or ``*`` for a snapshot."""
        return self.day.isoformat() if self.day else "*"


@dataclass(frozen=True)
class TableDump:
    name: QualifiedName
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    watermark: str | None
    mode: MergeMode
    parts: tuple[Part, ...]
    watermark_min: dt.date | None = None
    watermark_max: dt.date | None = None

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def compressed_bytes(self) -> int:
        return sum(p.bytes for p in self.parts)


@dataclass(frozen=True)
class Source:
    instance_id: str
    database: str
    server_version: str


@dataclass(frozen=True)
class SchemaFile:
    file: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    dump_id: str
    previous_dump_id: str | None
    created_at: dt.datetime
    source: Source
    kind: str  # "incremental" | "full"
    first_day: dt.date | None
    last_day: dt.date | None
    tables: tuple[TableDump, ...]
    schema: SchemaFile | None = None
    version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def compressed_bytes(self) -> int:
        return sum(t.compressed_bytes for t in self.tables)

    def covered_days(self) -> tuple[dt.date, dt.date] | None:
        if self.first_day is None or self.last_day is None:
            return None
        return (self.first_day, self.last_day)

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT_NAME,
            "version": self.version,
            "dump_id": self.dump_id,
            "previous_dump_id": self.previous_dump_id,
            "created_at": self.created_at.isoformat(),
            "source": {
                "instance_id": self.source.instance_id,
                "database": self.source.database,
                "server_version": self.source.server_version,
            },
            "kind": self.kind,
            "range": None if self.first_day is None or self.last_day is None
            else {"first": self.first_day.isoformat(), "last": self.last_day.isoformat()},
            "tables": [
                {
                    "schema": t.name.schema,
                    "table": t.name.table,
                    "columns": [
                        {"name": c.name, "type": c.type, "not_null": c.not_null,
                         **({"fill": c.fill} if c.fill is not None else {})} for c in t.columns
                    ],
                    "key": list(t.key),
                    "watermark": t.watermark,
                    "mode": str(t.mode),
                    "rows": t.rows,
                    "bytes": t.compressed_bytes,
                    "watermark_min": iso_or_none(t.watermark_min),
                    "watermark_max": iso_or_none(t.watermark_max),
                    "parts": [
                        {
                            "file": p.file, "day": iso_or_none(p.day), "rows": p.rows,
                            "bytes": p.bytes, "sha256": p.sha256,
                            "content_sha256": p.content_sha256,
                        }
                        for p in t.parts
                    ],
                }
                for t in self.tables
            ],
            "schema_sql": None if self.schema is None else {
                "file": self.schema.file, "bytes": self.schema.bytes, "sha256": self.schema.sha256,
            },
        }
        return json.dumps(doc, indent=1, ensure_ascii=False).encode() + b"\n"


def manifest_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class _Reader:
    """Typed field access that names the field path in every error."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, problem: str) -> ManifestError:
        return ManifestError(
            f"manifest {self.where}: {path} {problem}",
            "the dump is not of a format this version of market-sync reads; "
            "update market-sync on both sides, or delete the dump from S3",
        )

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

    def date(self, obj: Any, key: str, path: str, optional: bool = False) -> dt.date | None:
        text = self.get(obj, key, path, str, optional)
        if text is None:
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise self.fail(f"{path}.{key}", f"is not a date: {text!r}") from None

    def count(self, obj: Any, key: str, path: str) -> int:
        value: int = self.get(obj, key, path, int)
        if value < 0:
            raise self.fail(f"{path}.{key}", "is negative")
        return value

    def sha(self, obj: Any, key: str, path: str) -> str:
        value: str = self.get(obj, key, path, str)
        if not _SHA256.fullmatch(value):
            raise self.fail(f"{path}.{key}", "is not a sha256 hex digest")
        return value

    def file(self, obj: Any, key: str, path: str) -> str:
        value: str = self.get(obj, key, path, str)
        if not _PART_FILE.fullmatch(value) or value.startswith(".") or ".." in value:
            raise self.fail(f"{path}.{key}", f"is not a safe object name: {value!r}")
        return value


def parse_manifest(raw: bytes, where: str = "") -> Manifest:
    """Parse and validate a manifest; ``where`` (its S3 key) goes into errors."""
    r = _Reader(where or "(unnamed)")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise r.fail("", f"is not valid JSON ({exc})") from None
    if r.get(doc, "format", "", str) != FORMAT_NAME:
        raise r.fail("format", f"is not {FORMAT_NAME!r}")
    version = r.get(doc, "version", "", int)
    if version != FORMAT_VERSION:
        raise ManifestError(
            f"manifest {r.where} is dump format version {version}; "
            f"this market-sync reads version {FORMAT_VERSION}",
            "update market-sync on the laptop" if version > FORMAT_VERSION
            else "the dump predates this format; re-run the backup with --full",
        )
    dump_id = r.get(doc, "dump_id", "", str)
    if not _DUMP_ID.fullmatch(dump_id):
        raise r.fail("dump_id", f"is not a dump id: {dump_id!r}")
    previous = r.get(doc, "previous_dump_id", "", str, optional=True)
    if previous is not None and not _DUMP_ID.fullmatch(previous):
        raise r.fail("previous_dump_id", f"is not a dump id: {previous!r}")
    try:
        created = dt.datetime.fromisoformat(r.get(doc, "created_at", "", str))
    except ValueError:
        raise r.fail("created_at", "is not an ISO timestamp") from None
    src = r.get(doc, "source", "", dict)
    source = Source(
        instance_id=r.get(src, "instance_id", "source", str),
        database=r.get(src, "database", "source", str),
        server_version=r.get(src, "server_version", "source", str),
    )
    kind = r.get(doc, "kind", "", str)
    if kind not in ("incremental", "full"):
        raise r.fail("kind", f"must be 'incremental' or 'full', not {kind!r}")
    rng = r.get(doc, "range", "", dict, optional=True)
    first = r.date(rng, "first", "range") if rng is not None else None
    last = r.date(rng, "last", "range") if rng is not None else None
    if first and last and first > last:
        raise r.fail("range", "ends before it starts")

    tables = []
    for i, t in enumerate(r.get(doc, "tables", "", list)):
        path = f"tables[{i}]"
        name = QualifiedName(r.get(t, "schema", path, str), r.get(t, "table", path, str))
        columns = []
        for j, c in enumerate(r.get(t, "columns", path, list)):
            cpath = f"{path}.columns[{j}]"
            columns.append(Column(r.get(c, "name", cpath, str), r.get(c, "type", cpath, str),
                                  r.get(c, "not_null", cpath, bool),
                                  r.get(c, "fill", cpath, str, optional=True)
                                  if isinstance(c, dict) and "fill" in c else None))
        if not columns:
            raise r.fail(f"{path}.columns", "is empty")
        key = r.get(t, "key", path, list)
        if not all(isinstance(k, str) for k in key):
            raise r.fail(f"{path}.key", "must be a list of strings")
        mode_text = r.get(t, "mode", path, str)
        try:
            mode = MergeMode(mode_text)
        except ValueError:
            raise r.fail(f"{path}.mode", f"is not a merge mode: {mode_text!r}") from None
        parts = []
        for j, p in enumerate(r.get(t, "parts", path, list)):
            ppath = f"{path}.parts[{j}]"
            parts.append(Part(
                file=r.file(p, "file", ppath), day=r.date(p, "day", ppath, optional=True),
                rows=r.count(p, "rows", ppath), bytes=r.count(p, "bytes", ppath),
                sha256=r.sha(p, "sha256", ppath),
                content_sha256=r.sha(p, "content_sha256", ppath),
            ))
        tables.append(TableDump(
            name=name, columns=tuple(columns), key=tuple(key),
            watermark=r.get(t, "watermark", path, str, optional=True), mode=mode,
            parts=tuple(parts),
            watermark_min=r.date(t, "watermark_min", path, optional=True),
            watermark_max=r.date(t, "watermark_max", path, optional=True),
        ))
    names = [t.name for t in tables]
    if len(names) != len(set(names)):
        raise r.fail("tables", "name the same table twice")
    for i, table in enumerate(tables):
        if table.watermark_min and table.watermark_max and \
                table.watermark_min > table.watermark_max:
            raise r.fail(f"tables[{i}]", "has watermark_min after watermark_max")
        for j, part in enumerate(table.parts):
            if part.day and first and last and not first <= part.day <= last:
                raise r.fail(f"tables[{i}].parts[{j}].day", f"{part.day} is outside the "
                             f"dump's range {first} … {last}")
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
