"""The outcome of a sync, as frozen dataclasses: what the CLI prints and the tray shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from desktop.engine.gaps import describe_days
from shared.isodates import iso_or_none
from shared.words import plural


@dataclass(frozen=True)
class TableReport:
    name: str
    new: int
    unchanged: int
    diverged: int
    parts_skipped: int
    parts_copied: int
    parts_merged: int
    created: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "new": self.new, "unchanged": self.unchanged,
                "diverged": self.diverged, "parts_skipped": self.parts_skipped,
                "parts_copied": self.parts_copied, "parts_merged": self.parts_merged,
                "created": self.created}


@dataclass(frozen=True)
class DumpReport:
    dump_id: str
    status: str  # "applied" | "would apply" | "aborted" | "failed" | "cancelled"
    first_day: dt.date | None
    last_day: dt.date | None
    bytes: int
    download_seconds: float
    apply_seconds: float
    tables: tuple[TableReport, ...]
    downloaded_bytes: int = 0  # re-sent days the laptop holds unchanged are not downloaded

    @property
    def new(self) -> int:
        return sum(t.new for t in self.tables)

    @property
    def unchanged(self) -> int:
        return sum(t.unchanged for t in self.tables)

    @property
    def diverged(self) -> int:
        return sum(t.diverged for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        return {"dump_id": self.dump_id, "status": self.status,
                "first_day": iso_or_none(self.first_day), "last_day": iso_or_none(self.last_day),
                "bytes": self.bytes, "downloaded_bytes": self.downloaded_bytes,
                "new": self.new, "unchanged": self.unchanged,
                "diverged": self.diverged, "download_seconds": round(self.download_seconds, 3),
                "apply_seconds": round(self.apply_seconds, 3),
                "tables": [t.to_json() for t in self.tables]}


@dataclass(frozen=True)
class SyncReport:
    policy: str
    dry_run: bool
    dumps: tuple[DumpReport, ...] = ()
    pending: int = 0
    superseded: tuple[str, ...] = ()  # unapplied dumps older than the ledger's newest
    gaps: tuple[dt.date, ...] = ()
    chain_breaks: tuple[str, ...] = ()
    # Trading days the instance held before the laptop's first covered day that no dump
    # in S3 holds any more (they expired before this laptop synced): exit 4.
    missing_history: tuple[dt.date, ...] = ()
    conflict_samples: tuple[dict[str, Any], ...] = field(default=())
    error: str | None = None
    error_hint: str = ""
    exit_code: int = 0

    @property
    def conflicts(self) -> int:
        return sum(d.diverged for d in self.dumps)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code in (0, 4), "exit_code": self.exit_code, "policy": self.policy,
            "dry_run": self.dry_run, "pending": self.pending,
            "applied": sum(1 for d in self.dumps if d.status in ("applied", "would apply")),
            "rows_new": sum(d.new for d in self.dumps),
            "rows_unchanged": sum(d.unchanged for d in self.dumps),
            "rows_diverged": self.conflicts,
            "dumps": [d.to_json() for d in self.dumps],
            "superseded": list(self.superseded),
            "gaps": [g.isoformat() for g in self.gaps],
            "chain_breaks": list(self.chain_breaks),
            "missing_history": [d.isoformat() for d in self.missing_history],
            "conflict_samples": list(self.conflict_samples),
            "error": self.error, "hint": self.error_hint or None,
        }

    def summary(self) -> str:
        lines: list[str] = []
        if not self.dumps and self.error is None:
            lines.append("Up to date: no new dumps in S3.")
        verb = "would apply" if self.dry_run else "applied"
        for d in self.dumps:
            span = f"{d.first_day} … {d.last_day}" if d.first_day else "snapshot"
            lines.append(f"{d.dump_id} ({span}): {d.status}: {d.new:,} new, "
                         f"{d.unchanged:,} unchanged, {d.diverged:,} diverged "
                         f"[{d.downloaded_bytes / 1e6:.1f} of {d.bytes / 1e6:.1f} MB downloaded "
                         f"in {d.download_seconds:.1f} s, "
                         f"merge {d.apply_seconds:.1f} s]")
            for t in d.tables:
                how = ", ".join(f"{n} {w}" for n, w in ((t.parts_copied, "copied"),
                                (t.parts_merged, "merged"), (t.parts_skipped, "skipped")) if n)
                created = " (table created)" if t.created else ""
                lines.append(f"    {t.name}: {t.new:,} new, {t.unchanged:,} unchanged, "
                             f"{t.diverged:,} diverged; parts {how or 'none'}{created}")
        done = sum(1 for d in self.dumps if d.status in ("applied", "would apply"))
        if self.dumps:
            lines.append(f"{done} of {plural(self.pending, 'pending dump')} {verb} "
                         f"under policy {self.policy}.")
        if self.conflicts and self.policy != "abort":
            lines.append(f"{plural(self.conflicts, 'conflict')} saved: "
                         "see `market-sync conflicts`.")
        for dump_id in self.superseded:
            lines.append(f"Skipped {dump_id}: older than the newest applied dump.")
        if self.gaps:
            days = "trading day " if len(self.gaps) == 1 else "trading days "
            lines.append("Gap: no dump covers " + days
                         + ", ".join(g.isoformat() for g in self.gaps)
                         + ". Run `market-sync-agent backup --full` on the instance to fill them.")
        lines.extend(f"Gap: {b}" for b in self.chain_breaks)
        if self.missing_history:
            lines.append(
                f"History: the instance holds data from {self.missing_history[0]}, but no "
                "dump in S3 or on this laptop covers "
                + ("trading day " if len(self.missing_history) == 1 else "trading days ")
                + describe_days(self.missing_history) + " (older dumps expired from S3, or "
                "rows were back-dated). Run `market-sync-agent backup --full` on the instance "
                "to send them.")
        if self.error:
            lines.append(f"Error: {self.error}")
            if self.error_hint:
                lines.append(f"  → {self.error_hint}")
        if self.dry_run:
            lines.append("Dry run: nothing was changed.")
        return "\n".join(lines)
