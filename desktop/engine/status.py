"""Everything the tray and ``market-sync status`` show, gathered in one call.

Each part (the instance, the app's health, the newest backup in S3, the laptop's
ledger) is read independently: a part that fails becomes one sentence in
:attr:`StatusSnapshot.errors` and the others are still shown. Light to import:
boto3 and psycopg are loaded inside :func:`collect_status`.

:meth:`StatusSnapshot.from_json` reads back what :meth:`StatusSnapshot.to_json`
wrote, without boto3 or psycopg: the tray polls through a child process
(``python -m desktop.proc.worker status``) and rebuilds the snapshot from its JSON.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from desktop.engine.gaps import describe_days, history_from, missing_history
from desktop.engine.instance import (
    AppHealth,
    InstanceController,
    InstanceState,
    ScheduleInfo,
    current_time,
    next_schedule,
)
from desktop.engine.records import AppliedDump
from shared.calendar import IST, TradingCalendar, today_ist
from shared.config import Config
from shared.errors import MarketSyncError
from shared.isodates import date_or_none, iso_or_none
from shared.words import plural

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.dumpstore import DumpRef, DumpStore, LoadedManifest

logger = logging.getLogger(__name__)

BACKUP_DUE = dt.time(16, 30)  # the 16:00 IST backup plus its grace: after this it is missing


@dataclass(frozen=True)
class BackupInfo:
    """The newest dump in S3, from its manifest."""

    dump_id: str
    created_at: dt.datetime
    first_day: dt.date | None
    last_day: dt.date | None
    rows: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"dump_id": self.dump_id, "created_at": self.created_at.isoformat(),
                "first_day": iso_or_none(self.first_day), "last_day": iso_or_none(self.last_day),
                "rows": self.rows, "bytes": self.bytes}


    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BackupInfo:
        return cls(dump_id=data["dump_id"], created_at=_moment(data["created_at"]),
                   first_day=date_or_none(data["first_day"]),
                   last_day=date_or_none(data["last_day"]),
                   rows=int(data["rows"]), bytes=int(data["bytes"]))


PARTS = ("instance", "newest_backup", "last_sync", "pending_dumps", "gaps")


@dataclass(frozen=True)
class StatusSnapshot:
    """One look at everything.

    A part that could not be read is ``None`` *and* named in ``unknown`` with the sentence
    why: "no backup in S3" (``newest_backup`` None, not in ``unknown``) is a fact, "could not
    list S3" is not, and the two are never shown alike. ``health`` is also ``None`` when it
    was not probed because the instance is not running.
    """

    instance: InstanceState | None
    health: AppHealth | None
    schedule: ScheduleInfo
    newest_backup: BackupInfo | None
    last_sync: AppliedDump | None
    pending_dumps: int | None
    gaps: tuple[dt.date, ...]
    errors: tuple[str, ...]
    collected_at: dt.datetime
    backup_missing: bool = False  # today's backup is overdue; today is then in ``gaps``
    # Trading days the instance holds before the laptop's first covered day that no dump
    # in S3 covers any more (desktop/engine/gaps.py, as `sync` reports them).
    missing_history: tuple[dt.date, ...] = ()
    unknown: Mapping[str, str] = field(default_factory=dict)  # part -> why it is unknown

    @property
    def ok(self) -> bool:
        return not self.errors

    def why_unknown(self, part: str) -> str | None:
        return self.unknown.get(part)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "instance": self.instance.to_json() if self.instance else None,
            "health": self.health.to_json() if self.health else None,
            "schedule": self.schedule.to_json(),
            "newest_backup": self.newest_backup.to_json() if self.newest_backup else None,
            "last_sync": self.last_sync.to_json() if self.last_sync else None,
            "pending_dumps": self.pending_dumps,
            "gaps": [d.isoformat() for d in self.gaps],
            "backup_missing": self.backup_missing,
            "missing_history": [d.isoformat() for d in self.missing_history],
            "errors": list(self.errors),
            "collected_at": self.collected_at.isoformat(),
            **{f"{part}_error": self.unknown.get(part) for part in PARTS},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StatusSnapshot:
        """What :meth:`to_json` wrote (``market-sync status --json``), read back.

        Raises KeyError, TypeError or ValueError when ``data`` is not such a document.
        """
        inst, health, sched = data["instance"], data["health"], data["schedule"]
        return cls(
            instance=None if inst is None else InstanceState(
                instance_id=inst["instance_id"], state=inst["state"],
                public_ip=inst["public_ip"], launch_time=_moment_or_none(inst["launch_time"]),
                instance_type=inst["instance_type"], seen_at=_moment(inst["seen_at"])),
            health=None if health is None else AppHealth(
                ok=bool(health["ok"]), status=health["status"], detail=health["detail"],
                checked_at=_moment(health["checked_at"])),
            schedule=ScheduleInfo(_moment_or_none(sched["next_start"]),
                                  _moment_or_none(sched["next_stop"])),
            newest_backup=None if data["newest_backup"] is None
            else BackupInfo.from_json(data["newest_backup"]),
            last_sync=None if data["last_sync"] is None
            else AppliedDump.from_json(data["last_sync"]),
            pending_dumps=None if data["pending_dumps"] is None else int(data["pending_dumps"]),
            gaps=tuple(dt.date.fromisoformat(d) for d in data["gaps"]),
            errors=tuple(str(e) for e in data["errors"]),
            collected_at=_moment(data["collected_at"]),
            backup_missing=bool(data["backup_missing"]),
            missing_history=tuple(dt.date.fromisoformat(d)
                                  for d in data.get("missing_history", ())),
            unknown={part: str(data[f"{part}_error"]) for part in PARTS
                     if data.get(f"{part}_error")})

    def summary(self) -> str:
        """The same facts as text, one line each (``market-sync status``)."""
        inst = self.instance
        lines = [f"Instance   {inst.describe() if inst else self._unknown('instance')}"]
        if self.health is not None:
            word = "healthy" if self.health.ok else "unhealthy"
            lines.append(f"App        {word}: {self.health.detail}")
        elif self.instance is not None:
            lines.append("App        not checked (the instance is not running)")
        lines.append(f"Schedule   next start {_when(self.schedule.next_start)}, "
                     f"next stop {_when(self.schedule.next_stop)}")
        b = self.newest_backup
        lines.append("Backup     " + (
            f"{b.dump_id}: {_days(b.first_day, b.last_day)}, {plural(b.rows, 'row')}, "
            f"{b.bytes / 1e6:,.1f} MB, made {_when(b.created_at)}" if b
            else self._unknown("newest_backup", "none in S3")))
        s = self.last_sync
        lines.append("Last sync  " + (
            f"{s.dump_id}: {_days(s.first_day, s.last_day)}, applied {_when(s.applied_at)}"
            if s else self._unknown("last_sync", "never")))
        lines.append("Pending    " + (
            self._unknown("pending_dumps") if self.pending_dumps is None
            else f"{plural(self.pending_dumps, 'dump')} to sync"))
        if "gaps" in self.unknown and "pending_dumps" not in self.unknown:
            lines.append(f"Gaps       {self._unknown('gaps')}")
        if self.gaps:
            lines.append("Gaps       " + ", ".join(d.isoformat() for d in self.gaps)
                         + " (trading days no dump covers)")
        if self.missing_history:
            days = "trading day " if len(self.missing_history) == 1 else "trading days "
            lines.append("History    " + days + describe_days(self.missing_history)
                         + " held by the instance are in no dump in S3 any more "
                         "(`market-sync-agent backup --full` on the instance sends them again)")
        if self.backup_missing:
            lines.append(f"Backup missing: no backup of {today_ist(self.collected_at)} in S3 "
                         f"after {BACKUP_DUE:%H:%M} IST")
        lines.extend(f"Problem:   {e}" for e in self.errors)
        return "\n".join(lines)


    def _unknown(self, part: str, otherwise: str = "unknown") -> str:
        why = self.unknown.get(part)
        return f"unknown ({lowered(why)})" if why else otherwise


def lowered(sentence: str) -> str:
    """A sentence as a clause: "The bucket is gone." → "the bucket is gone"."""
    text = sentence.rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _moment(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


def _moment_or_none(value: str | None) -> dt.datetime | None:
    return _moment(value) if value else None


def _days(first: dt.date | None, last: dt.date | None) -> str:
    return f"{first} … {last}" if first and last else "snapshot"


def _when(moment: dt.datetime | None) -> str:
    return f"{moment.astimezone(IST):%a %d %b %Y %H:%M} IST" if moment else "unknown"


def sentence(exc: BaseException) -> str:
    """An error as one sentence for a status line: message, then what to do."""
    if isinstance(exc, MarketSyncError):
        text = exc.message + (f" ({exc.hint})" if exc.hint else "")
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def health_url_for(config: Config) -> str:
    """``[app] health_url``, or the app's port on the instance's public address."""
    return config.app.health_url or f"http://{{ip}}:{config.app.port}/health"


def collect_status(config: Config, clients: AwsClients, *, password: str | None = None,
                   clock: Callable[[], dt.datetime] = current_time,
                   calendar: TradingCalendar | None = None) -> StatusSnapshot:
    """Read every part; none of them raises."""
    calendar = calendar or TradingCalendar.load()
    now = clock().astimezone(IST)
    errors = _Problems()
    unknown: dict[str, str] = {}

    instance, health = _instance_part(config, clients, calendar, clock, errors)
    if instance is None and errors:
        unknown["instance"] = errors.short[-1]
    before = len(errors)
    store, listed, newest = _backup_part(config, clients, errors)
    if len(errors) > before:
        unknown["newest_backup"] = errors.short[-1]
    applied = _ledger_part(config, password, errors)
    if applied is None:
        unknown["last_sync"] = errors.short[-1]

    pending_refs: list[DumpRef] = []
    if listed is not None and applied is not None:
        done = {a.dump_id for a in applied}
        newest_applied = applied[-1].dump_id if applied else ""
        # The rule of SyncEngine.plan: dumps older than the newest applied one are superseded.
        pending_refs = [r for r in listed if r.dump_id not in done and r.dump_id >= newest_applied]
    else:
        unknown["pending_dumps"] = unknown.get("newest_backup") or unknown["last_sync"]

    before = len(errors)
    gaps, missing = _gaps(store, calendar, applied or [], pending_refs, newest, errors)
    if len(errors) > before:
        unknown["gaps"] = errors.short[-1]
    elif "pending_dumps" in unknown or "newest_backup" in unknown:
        unknown["gaps"] = unknown.get("newest_backup") or unknown["pending_dumps"]
    backup = _backup_info(newest)
    today = today_ist(now)
    backup_missing = (
        listed is not None and calendar.is_trading_day(today) and now.time() >= BACKUP_DUE
        and (backup is None or backup.last_day is None or backup.last_day < today))
    if backup_missing and today not in gaps:
        gaps = tuple(sorted((*gaps, today)))
    return StatusSnapshot(
        instance=instance, health=health, schedule=next_schedule(calendar, now),
        newest_backup=backup, last_sync=applied[-1] if applied else None,
        pending_dumps=None if "pending_dumps" in unknown else len(pending_refs), gaps=gaps,
        errors=tuple(errors), collected_at=now, backup_missing=backup_missing, unknown=unknown,
        missing_history=missing)


def _instance_part(config: Config, clients: AwsClients, calendar: TradingCalendar,
                   clock: Callable[[], dt.datetime], errors: _Problems,
                   ) -> tuple[InstanceState | None, AppHealth | None]:
    if not config.aws.instance_id:
        errors.add("No instance is configured (set instance_id under [aws] in the config).",
                   "no instance is configured")
        return None, None
    try:
        controller = InstanceController(clients.ec2(), config.aws.instance_id,
                                        health_url=health_url_for(config), calendar=calendar,
                                        clock=clock)
        instance = controller.state()
    except Exception as exc:
        _note(errors, exc, "the instance")
        return None, None
    health = controller.health(instance.public_ip) if instance.is_running else None
    return instance, health


def _backup_part(config: Config, clients: AwsClients, errors: _Problems,
                 ) -> tuple[DumpStore | None, list[DumpRef] | None, LoadedManifest | None]:
    from shared.dumpstore import DumpStore

    try:
        store = DumpStore(clients.s3(), config.aws.bucket, config.aws.prefix)
        listed = store.list_dumps()
    except Exception as exc:
        _note(errors, exc, "the backups in S3")
        return None, None, None
    if not listed:
        return store, listed, None
    try:
        return store, listed, store.load_manifest(listed[-1])
    except Exception as exc:
        _note(errors, exc, "the newest backup's manifest")
        return store, listed, None


def _ledger_part(config: Config, password: str | None,
                 errors: _Problems) -> list[AppliedDump] | None:
    try:
        from desktop.engine import ledger
        from desktop.engine.sync import connect_local

        with connect_local(config.database.conninfo, password) as conn:
            return ledger.applied_dumps(conn)
    except Exception as exc:
        _note(errors, exc, "the laptop database's sync history")
        return None


def _gaps(store: DumpStore | None, calendar: TradingCalendar, applied: list[AppliedDump],
          pending: list[DumpRef], newest: LoadedManifest | None,
          errors: _Problems) -> tuple[tuple[dt.date, ...], tuple[dt.date, ...]]:
    """Trading days from the newest applied dump's last day to the newest backup's last day
    that neither an applied dump nor a pending one covers; and the instance's history
    before the first of them that no dump covers any more."""
    if store is None or newest is None or newest.manifest.last_day is None:
        return (), ()
    ranges = [(a.first_day, a.last_day) for a in applied if a.first_day and a.last_day]
    manifests = [newest]
    if pending:
        try:
            manifests += [store.load_manifest(r) for r in pending
                          if r.dump_id != newest.ref.dump_id]
        except Exception as exc:
            _note(errors, exc, "the pending backups' manifests")
            return (), ()
    ranges += [(m.manifest.first_day, m.manifest.last_day) for m in manifests
               if m.manifest.first_day and m.manifest.last_day]
    missing = tuple(missing_history(calendar, ranges, history_from(newest.manifest)))
    synced = [a.last_day for a in applied if a.last_day]
    start = max(synced) if synced else min((a for a, _ in ranges), default=None)
    end = newest.manifest.last_day
    if start is None or start > end:
        return (), missing
    return tuple(day for day in calendar.trading_days(start, end)
                 if not any(a <= day <= b for a, b in ranges)), missing


def _backup_info(loaded: LoadedManifest | None) -> BackupInfo | None:
    if loaded is None:
        return None
    m = loaded.manifest
    return BackupInfo(dump_id=m.dump_id, created_at=m.created_at, first_day=m.first_day,
                      last_day=m.last_day, rows=m.rows, bytes=m.compressed_bytes)


class _Problems(list[str]):
    """The sentences for ``errors`` (message and hint), and each one's short form for
    "unknown (why)"."""

    def __init__(self) -> None:
        super().__init__()
        self.short: list[str] = []

    def add(self, full: str, short: str) -> None:
        self.append(full)
        self.short.append(short)


def _note(errors: _Problems, exc: BaseException, part: str) -> None:
    if isinstance(exc, MarketSyncError):
        errors.add(sentence(exc), exc.message)
    else:  # a bug, not the trader's problem: keep the traceback in the log
        logger.error("could not read %s", part, exc_info=exc)
        errors.add(sentence(RuntimeError(f"could not read {part}: {exc!r}")),
                   f"could not read {part}")
