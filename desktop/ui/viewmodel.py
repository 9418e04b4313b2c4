"""What the tray shows, derived from the engine's facts: plain Python, no Qt.

:func:`derive_view` turns the latest :class:`~desktop.engine.status.StatusSnapshot`, the
sync in flight and the last sync's outcome into one frozen :class:`TrayView`;
the tray icon, its menu and the status window all draw from it, so they never
disagree.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ec2.instance.schedule import SCHEDULE
from shared.calendar import IST
from shared.words import plural

if TYPE_CHECKING:
    from desktop.engine.progress import SyncProgress
    from desktop.engine.report import SyncReport
    from desktop.engine.status import StatusSnapshot


class TrayState(enum.StrEnum):
    UNKNOWN = "unknown"          # before the first answer
    STOPPED = "stopped"
    TRANSITION = "transition"    # pending / stopping
    HEALTHY = "healthy"          # running, the app answers
    UNHEALTHY = "unhealthy"      # running, the app does not answer
    SYNCING = "syncing"
    ATTENTION = "attention"      # conflicts, gap, failed backup, error


STATE_WORDS = {
    TrayState.UNKNOWN: "checking…",
    TrayState.STOPPED: "instance stopped",
    TrayState.TRANSITION: "instance starting or stopping",
    TrayState.HEALTHY: "running, app healthy",
    TrayState.UNHEALTHY: "running, app not answering",
    TrayState.SYNCING: "syncing",
    TrayState.ATTENTION: "needs attention",
}


@dataclass(frozen=True)
class SyncOutcome:
    """The last sync this session, in a line the menu can show."""

    finished_at: dt.datetime
    ok: bool
    cancelled: bool
    line: str
    applied: int = 0
    conflicts: int = 0
    gaps: tuple[dt.date, ...] = ()

    @classmethod
    def from_report(cls, report: SyncReport, now: dt.datetime) -> SyncOutcome:
        applied = sum(1 for d in report.dumps if d.status == "applied")
        rows = sum(d.new for d in report.dumps)
        cancelled = any(d.status == "cancelled" for d in report.dumps)
        if cancelled:
            line = "cancelled: nothing of the dump in flight was kept"
        elif report.error:
            line = f"failed: {report.error}"
        elif not report.dumps:
            line = "up to date"
        else:
            line = f"{plural(applied, 'dump')} applied, {plural(rows, 'new row')}"
            if report.conflicts:
                line += f", {plural(report.conflicts, 'conflict')}"
        if report.gaps:
            line += f"; gap on {', '.join(g.strftime('%d %b') for g in report.gaps)}"
        return cls(now, report.exit_code in (0, 4), cancelled, line, applied,
                   report.conflicts, report.gaps)

    @classmethod
    def failed(cls, message: str, now: dt.datetime, cancelled: bool = False) -> SyncOutcome:
        line = "cancelled: nothing of the dump in flight was kept" if cancelled \
            else f"failed: {message}"
        return cls(now, False, cancelled, line)


@dataclass(frozen=True)
class TrayView:
    state: TrayState
    tooltip: str
    state_line: str
    schedule_lines: tuple[str, ...]
    health_line: str
    can_start: bool
    can_stop: bool
    pending: int | None
    syncing: bool
    progress: float | None
    last_sync_line: str
    attention: tuple[str, ...]
    backup_line: str = ""
    pending_line: str = ""  # "2 dumps waiting in S3", or "unknown (why)"
    cancelling: bool = False


def clock(moment: dt.datetime | None) -> str:
    """A time of day in IST, labelled: ``10:14 IST``."""
    return f"{moment.astimezone(IST):%H:%M} IST" if moment else "—"


def when(moment: dt.datetime | None) -> str:
    """A moment with its date, in IST: ``Mon 16 Jun 08:55 IST``."""
    if moment is None:
        return "not scheduled"
    return f"{moment.astimezone(IST):%a %d %b %H:%M} IST"


def unknown(why: str) -> str:
    text = why.rstrip(".")
    return "unknown (" + (text[:1].lower() + text[1:] if text[1:2].islower() else text) + ")"


def schedule_lines(snapshot: StatusSnapshot) -> tuple[str, ...]:
    """Whose times are whose: the instance's (AWS's schedule) and the app's (its timer)."""
    s = SCHEDULE
    lines = [f"Instance (AWS schedule): starts {s.instance_start:%H:%M}, safety stop "
             f"{s.safety_stop:%H:%M} IST",
             f"App (on the instance): {s.app_start:%H:%M}–{s.app_stop:%H:%M} IST, trading days"]
    sched = snapshot.schedule
    if sched is not None:
        lines.append(f"Next app start: {when(sched.next_start)}")
    return tuple(lines)


def sync_fraction(progress: SyncProgress | None) -> float | None:
    """Overall progress: half downloading (bytes), half merging (rows)."""
    if progress is None:
        return None
    if progress.phase == "done":
        return 1.0
    rows = progress.rows_done / progress.rows_total if progress.rows_total else 0.0
    if not progress.bytes_total:
        return min(rows, 1.0)
    return min(0.5 * progress.bytes_done / progress.bytes_total + 0.5 * rows, 1.0)


def derive_view(snapshot: StatusSnapshot | None, *, poll_error: str | None = None,
                syncing: SyncProgress | None = None, sync_running: bool = False,
                last_sync: SyncOutcome | None = None, busy: str | None = None,
                conflicts_seen: bool = False, unseen_conflicts: int = 0,
                cancelling: bool = False) -> TrayView:
    """The one place that decides the icon and the lines of the menu (times in IST)."""
    attention: list[str] = []
    state_line = "Instance: checking…"
    health_line = ""
    lines: tuple[str, ...] = ()
    backup_line = pending_line = ""
    can_start = can_stop = False
    pending: int | None = None
    state = TrayState.UNKNOWN
    if snapshot is not None:
        pending = snapshot.pending_dumps
        why = snapshot.unknown
        inst = snapshot.instance
        if inst is None:
            state_line = "Instance: " + (unknown(why["instance"]) if "instance" in why
                                         else "unknown")
        else:
            since = f" since {clock(inst.launch_time)}" if inst.state == "running" \
                and inst.launch_time else ""
            state_line = f"Instance {inst.state}{since} · seen {clock(inst.seen_at)}"
            can_start = inst.state == "stopped"
            can_stop = inst.state in ("running", "pending")
            if inst.state in ("pending", "stopping", "shutting-down"):
                state = TrayState.TRANSITION
            elif inst.state == "running":
                healthy = snapshot.health is None or snapshot.health.ok
                state = TrayState.HEALTHY if healthy else TrayState.UNHEALTHY
            else:
                state = TrayState.STOPPED
        if snapshot.health is not None:
            health = snapshot.health
            health_line = (f"App {'healthy' if health.ok else 'not answering'}: "
                           f"{health.detail} · checked {clock(health.checked_at)}")
        lines = schedule_lines(snapshot)
        if snapshot.newest_backup is not None:
            backup = snapshot.newest_backup
            day = f"{backup.last_day:%d %b}" if backup.last_day else "snapshot"
            backup_line = f"Newest backup: {backup.dump_id} ({day})"
        elif "newest_backup" in why:
            backup_line = "Newest backup: " + unknown(why["newest_backup"])
        else:
            backup_line = "Newest backup: none in S3"
        pending_line = (unknown(why.get("pending_dumps", "")) if pending is None
                        else f"{plural(pending, 'dump')} waiting in S3")
        if snapshot.gaps:
            attention.append("Gap: no dump covers " +
                             ", ".join(g.strftime("%a %d %b") for g in snapshot.gaps))
        if snapshot.missing_history:
            days = snapshot.missing_history
            attention.append(f"History: no dump in S3 covers {days[0]:%d %b %Y} … "
                             f"{days[-1]:%d %b %Y} ({len(days):,} trading days); "
                             "backup --full on the instance sends them")
        attention.extend(snapshot.errors)
    if poll_error:
        attention.append(poll_error)
    if busy:
        state = TrayState.TRANSITION
        state_line = f"Instance: {busy}…"
        can_start = can_stop = False

    if last_sync is not None:
        last_line = f"Last sync {clock(last_sync.finished_at)}: {last_sync.line}"
        if not last_sync.ok and not last_sync.cancelled:
            attention.append(f"Sync {last_sync.line}")
    elif snapshot is not None and snapshot.last_sync is not None:
        applied = snapshot.last_sync
        last_line = (f"Last sync {applied.applied_at.astimezone(IST):%d %b %H:%M} IST: "
                     f"{applied.dump_id}, {plural(applied.rows_new, 'new row')}")
        if applied.rows_diverged:
            last_line += f", {plural(applied.rows_diverged, 'conflict')}"
    elif snapshot is not None and "last_sync" in snapshot.unknown:
        last_line = "Last sync: " + unknown(snapshot.unknown["last_sync"])
    else:
        last_line = "Last sync: never"
    if unseen_conflicts and not conflicts_seen:
        attention.append(f"{plural(unseen_conflicts, 'conflict')} to review")

    if attention and state is not TrayState.TRANSITION:
        state = TrayState.ATTENTION
    fraction = sync_fraction(syncing) if sync_running else None
    if cancelling and fraction is not None:
        fraction = min(fraction, 0.99)  # a cancelled sync never reads "100%"
    if sync_running:
        state = TrayState.SYNCING
    tooltip_lines = [f"market-sync: {STATE_WORDS[state]}", state_line]
    if sync_running and cancelling:
        tooltip_lines.append("Cancelling the sync…")
    elif sync_running and fraction is not None:
        tooltip_lines.append(f"Syncing: {fraction:.0%}")
    tooltip_lines.extend(attention[:3])
    return TrayView(
        state=state, tooltip="\n".join(tooltip_lines), state_line=state_line,
        schedule_lines=lines, health_line=health_line, can_start=can_start,
        can_stop=can_stop, pending=pending, syncing=sync_running, progress=fraction,
        last_sync_line=last_line, attention=tuple(attention), backup_line=backup_line,
        pending_line=pending_line, cancelling=cancelling)
