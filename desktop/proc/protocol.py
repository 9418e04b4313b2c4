"""The worker protocol's records, shared by both ends (no boto3, psycopg or Qt).

The tray writes a :class:`Request` as the child's first stdin line and reads the
child's JSON answers back into these frozen records (see :mod:`desktop.proc.worker`
for the protocol itself).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from desktop.engine.instance import InstanceState
from desktop.engine.progress import SyncProgress
from desktop.engine.records import AppliedDump, ConflictRecord
from desktop.engine.report import DumpReport, SyncReport, TableReport
from shared.config import Config

OPERATIONS = ("status", "sync", "start", "stop", "conflicts", "history", "restore",
              "check-database", "app-secrets", "app-secret-set", "app-secret-delete")
CANCEL = "cancel"

@dataclass(frozen=True)
class Request:
    """What the tray hands the child besides the operation's arguments."""

    config: Config
    now: dt.datetime | None = None
    password: str | None = None  # the Settings dialog's typed password (check-database)
    value: str | None = None  # app-secret-set: the typed value (stdin only, never argv)

    def line(self) -> bytes:
        """The request as the first stdin line."""
        return json.dumps({
            "config": base64.b64encode(pickle.dumps(self.config)).decode("ascii"),
            "now": self.now.isoformat() if self.now else None,
            "password": self.password,
            "value": self.value,
        }).encode() + b"\n"

    @classmethod
    def parse(cls, line: str) -> Request:
        data = json.loads(line)
        config = pickle.loads(base64.b64decode(data["config"]))
        if not isinstance(config, Config):
            raise TypeError("the request's config is not a Config")
        now = dt.datetime.fromisoformat(data["now"]) if data.get("now") else None
        return cls(config, now, data.get("password"), data.get("value"))



# -- the answers read back -----------------------------------------------------------------
def progress_from_json(data: dict[str, Any]) -> SyncProgress:
    names = {f.name for f in fields(SyncProgress)}
    return SyncProgress(**{k: v for k, v in data.items() if k in names})


def report_from_json(data: dict[str, Any]) -> SyncReport:
    """What :meth:`SyncReport.to_json` wrote, read back."""
    def day(value: str | None) -> dt.date | None:
        return dt.date.fromisoformat(value) if value else None

    dumps = tuple(
        DumpReport(dump_id=d["dump_id"], status=d["status"], first_day=day(d["first_day"]),
                   last_day=day(d["last_day"]), bytes=int(d["bytes"]),
                   downloaded_bytes=int(d["downloaded_bytes"]),
                   download_seconds=float(d["download_seconds"]),
                   apply_seconds=float(d["apply_seconds"]),
                   tables=tuple(TableReport(**t) for t in d["tables"]))
        for d in data["dumps"])
    return SyncReport(
        policy=data["policy"], dry_run=bool(data["dry_run"]), dumps=dumps,
        pending=int(data["pending"]), superseded=tuple(data["superseded"]),
        gaps=tuple(dt.date.fromisoformat(g) for g in data["gaps"]),
        chain_breaks=tuple(data["chain_breaks"]),
        missing_history=tuple(dt.date.fromisoformat(d) for d in data.get("missing_history", ())),
        conflict_samples=tuple(data["conflict_samples"]), error=data["error"],
        error_hint=data["hint"] or "", exit_code=int(data["exit_code"]))


def instance_from_json(data: dict[str, Any]) -> InstanceState:
    def moment(value: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(value) if value else None

    seen = moment(data["seen_at"])
    if seen is None:
        raise ValueError("an instance state without seen_at")
    return InstanceState(instance_id=data["instance_id"], state=data["state"],
                         public_ip=data["public_ip"], launch_time=moment(data["launch_time"]),
                         instance_type=data["instance_type"], seen_at=seen)


@dataclass(frozen=True)
class ConflictList:
    records: tuple[ConflictRecord, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConflictList:
        return cls(tuple(ConflictRecord.from_json(r) for r in data["conflicts"]))


@dataclass(frozen=True)
class HistoryList:
    dumps: tuple[AppliedDump, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryList:
        return cls(tuple(AppliedDump.from_json(d) for d in data["dumps"]))


@dataclass(frozen=True)
class RestoredRows:
    conflict_ids: tuple[int, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RestoredRows:
        return cls(tuple(int(i) for i in data["restored"]))


@dataclass(frozen=True)
class AppSecretNames:
    """The app's secrets that are stored: names only, values never leave AWS."""

    names: tuple[str, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppSecretNames:
        return cls(tuple(str(n) for n in data["names"]))


@dataclass(frozen=True)
class AppSecretChange:
    name: str
    deleted: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppSecretChange:
        if "deleted" in data:
            return cls(str(data["deleted"]), True)
        return cls(str(data["stored"]), False)


@dataclass(frozen=True)
class DatabaseCheck:
    ok: bool
    message: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DatabaseCheck:
        return cls(bool(data["ok"]), str(data["message"]))


Decoder = Callable[[dict[str, Any]], object]

