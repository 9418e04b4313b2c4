"""The ledger's records as plain data: what the engine writes and the tray shows.

No psycopg here, so the tray can read a worker's JSON answer into the same types the
engine returns without loading the database driver.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from shared.isodates import date_or_none, iso_or_none


@dataclass(frozen=True)
class AppliedDump:
    dump_id: str
    previous_dump_id: str | None
    kind: str
    first_day: dt.date | None
    last_day: dt.date | None
    policy: str
    rows_new: int
    rows_unchanged: int
    rows_diverged: int
    bytes: int
    counts: dict[str, Any]
    download_seconds: float
    apply_seconds: float
    applied_at: dt.datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppliedDump:
        return cls(
            dump_id=data["dump_id"], previous_dump_id=data["previous_dump_id"],
            kind=data["kind"], first_day=date_or_none(data["first_day"]),
            last_day=date_or_none(data["last_day"]), policy=data["policy"],
            rows_new=int(data["rows_new"]), rows_unchanged=int(data["rows_unchanged"]),
            rows_diverged=int(data["rows_diverged"]), bytes=int(data["bytes"]),
            counts=dict(data["tables"]), download_seconds=float(data["download_seconds"]),
            apply_seconds=float(data["apply_seconds"]),
            applied_at=dt.datetime.fromisoformat(data["applied_at"]))

    def to_json(self) -> dict[str, Any]:
        return {
            "dump_id": self.dump_id, "previous_dump_id": self.previous_dump_id,
            "kind": self.kind, "first_day": iso_or_none(self.first_day),
            "last_day": iso_or_none(self.last_day),
            "policy": self.policy, "rows_new": self.rows_new,
            "rows_unchanged": self.rows_unchanged, "rows_diverged": self.rows_diverged,
            "bytes": self.bytes, "tables": self.counts,
            "download_seconds": round(self.download_seconds, 3),
            "apply_seconds": round(self.apply_seconds, 3),
            "applied_at": self.applied_at.isoformat(),
        }


@dataclass(frozen=True)
class ConflictRecord:
    id: int
    dump_id: str
    table_name: str
    key: dict[str, Any] | None
    local_row: dict[str, Any] | None
    incoming_row: dict[str, Any] | None
    policy: str
    winner: str
    detected_at: dt.datetime
    restored_at: dt.datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConflictRecord:
        restored = data["restored_at"]
        return cls(id=int(data["id"]), dump_id=data["dump_id"], table_name=data["table"],
                   key=data["key"], local_row=data["local"], incoming_row=data["incoming"],
                   policy=data["policy"], winner=data["winner"],
                   detected_at=dt.datetime.fromisoformat(data["detected_at"]),
                   restored_at=dt.datetime.fromisoformat(restored) if restored else None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "dump_id": self.dump_id, "table": self.table_name, "key": self.key,
            "local": self.local_row, "incoming": self.incoming_row, "policy": self.policy,
            "winner": self.winner, "detected_at": self.detected_at.isoformat(),
            "restored_at": self.restored_at.isoformat() if self.restored_at else None,
        }
