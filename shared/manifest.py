"""Dump format v2: the manifest, written last, that makes a dump exist.

A dump is a folder ``<prefix>dumps/YYYY/MM/DD/<dump_id>/`` holding one part per
table per watermark day (a zstd-compressed PostgreSQL binary COPY stream) and
``manifest.json``.

The coverage contract (docs/design-notes.md, "What a dump covers"): each
watermarked table states the days it ``covers`` — the instance's complete rows
for each of those days, a day without a part being a day with no rows — and
whether it covers the rows whose watermark is NULL (``covers_null``; they travel
in a part of their own, ``watermark_null``). Version 1 manifests (no ``covers``)
are still read: they cover exactly the days they have parts for.

Reading a manifest (:mod:`shared.manifest_read`) validates it completely.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from shared.isodates import iso_or_none
from shared.tables import MergeMode, QualifiedName

FORMAT_NAME = "market-sync-dump"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# A manifest is a few kB a day of tables; anything near this is damaged or hostile, and
# is refused before it is read into memory or parsed.
MAX_MANIFEST_BYTES = 16 << 20
NULL_DAY_KEY = "(null)"
MANIFEST_NAME = "manifest.json"
DUMPS_FOLDER = "dumps/"
SCHEMA_FILE = "schema.sql.zst"



def new_dump_id(now: dt.datetime | None = None) -> str:
    """Sortable: UTC time to the second, then 8 random hex digits."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def dump_folder(prefix: str, dump_id: str) -> str:
    """``<prefix>dumps/YYYY/MM/DD/<dump_id>/`` (the date is the dump id's UTC date)."""
    return f"{prefix}{DUMPS_FOLDER}{dump_id[0:4]}/{dump_id[4:6]}/{dump_id[6:8]}/{dump_id}/"


def part_file_name(name: QualifiedName, day: dt.date | None, *, null: bool = False) -> str:
    """An object name safe anywhere: anything but ``[A-Za-z0-9_-]`` is %-escaped."""
    def escape(text: str) -> str:
        return "".join(
            ch if re.fullmatch(r"[A-Za-z0-9_-]", ch) else "".join(f"%{b:02X}" for b in ch.encode())
            for ch in text
        )

    suffix = "null" if null else day.isoformat() if day else "all"
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
    """One table's rows for one watermark day (``day`` None: the whole table, or with
    ``watermark_null`` the rows whose watermark is NULL)."""

    file: str
    day: dt.date | None
    rows: int
    bytes: int
    sha256: str  # of the compressed object, as stored
    content_sha256: str  # of the uncompressed COPY stream: same rows, same hash
    watermark_null: bool = False

    @property
    def day_key(self) -> str:
        """How the laptop's ledger names the part's day: ISO date, ``(null)`` for the
        NULL-watermark rows, or ``*`` for a snapshot."""
        if self.watermark_null:
            return NULL_DAY_KEY
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
    # Inclusive day ranges, sorted and disjoint: for each of these days the dump holds
    # every row the instance had (a day without a part had none). Empty for snapshots.
    covers: tuple[tuple[dt.date, dt.date], ...] = ()
    covers_null: bool = False  # the NULL-watermark rows are complete too (maybe none)
    history_from: dt.date | None = None  # the instance's earliest watermark day

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def covers_day(self, day: dt.date) -> bool:
        return any(first <= day <= last for first, last in self.covers)

    def empty_ranges(self) -> list[tuple[dt.date, dt.date]]:
        """The covered days no part stands for (the instance had no rows), as ranges."""
        with_part = sorted(p.day for p in self.parts if p.day is not None)
        out: list[tuple[dt.date, dt.date]] = []
        one = dt.timedelta(days=1)
        for first, last in self.covers:
            start = first
            for day in (d for d in with_part if first <= d <= last):
                if start < day:
                    out.append((start, day - one))
                start = day + one
            if start <= last:
                out.append((start, last))
        return out

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
                    "covers": [[a.isoformat(), b.isoformat()] for a, b in t.covers],
                    "covers_null": t.covers_null,
                    "history_from": iso_or_none(t.history_from),
                    "parts": [
                        {
                            "file": p.file, "day": iso_or_none(p.day),
                            "watermark_null": p.watermark_null, "rows": p.rows,
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


def parse_manifest(raw: bytes, where: str = "") -> Manifest:
    """Parse and validate a manifest; ``where`` (its S3 key) goes into errors."""
    from shared.manifest_read import read_manifest

    return read_manifest(raw, where)
