"""``Sync now``: find new dumps in S3, download and verify them, merge each in one transaction.

A dump is applied together with its ledger row in one transaction: a crash, a
cancel, SIGKILL or a dropped connection leaves nothing half-applied, and the
next sync applies each dump exactly once. Every part's sha256 is verified
before the database is touched.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from desktop.engine import coverage, gaps, ledger, session
from desktop.engine.dberrors import database_error, first_line
from desktop.engine.downloads import DownloadFolder
from desktop.engine.merge import (
    ConflictAbortWithSamples,
    DumpApplier,
    TableCounts,
    check_manifest_safety,
)
from desktop.engine.progress import CancelToken, ProgressCallback, SyncProgress
from desktop.engine.records import AppliedDump
from desktop.engine.report import DumpReport, SyncReport, TableReport
from desktop.engine.tableplan import SchemaOptions, TablePlan
from shared.calendar import TradingCalendar
from shared.config import Config, ConflictPolicy
from shared.dumpstore import DumpRef, DumpStore, LoadedManifest
from shared.errors import (
    Cancelled,
    DatabaseError,
    IntegrityError,
    ManifestError,
    MarketSyncError,
    SyncBusyError,
)
from shared.manifest import Part, TableDump

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks (phase changes always report)


def connect_local(conninfo: str, password: str | None = None) -> psycopg.Connection[Any]:
    """The laptop database. The password, if any, comes from the keyring, never the config."""
    kwargs: dict[str, Any] = {"application_name": "market-sync"}
    if password:
        kwargs["password"] = password
    from shared.validate import check_conninfo

    problem = check_conninfo(conninfo)
    if problem is not None:  # libpq would refuse it too, in words of its own
        raise DatabaseError(problem.message, problem.hint)
    try:
        conn = psycopg.connect(conninfo, autocommit=True, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to the laptop database: {first_line(exc)}",
            "is PostgreSQL running? check [database] conninfo in the config "
            "(and the password in the keyring, PGPASSWORD or .pgpass)") from None
    # Temp tables (staging) and hash joins of a day's rows want more than the defaults.
    conn.execute("SET temp_buffers = '256MB'")
    conn.execute("SET work_mem = '64MB'")
    # Bulk statements run once per part: JIT compilation (~0.2 s each) never pays back.
    conn.execute("SET jit = off")
    return conn


class _Progress:
    """Accumulates counts and calls the callback at most every PROGRESS_INTERVAL."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.state = SyncProgress(phase="listing")
        self._last = 0.0

    def update(self, force: bool = False, **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        now = time.monotonic()
        if self.callback and (force or now - self._last >= PROGRESS_INTERVAL):
            self._last = now
            self.callback(self.state)

    def add_bytes(self, n: int) -> None:
        s = self.state
        self.update(dump_bytes_done=s.dump_bytes_done + n, bytes_done=s.bytes_done + n)

    def add_rows(self, n: int) -> None:
        s = self.state
        self.update(dump_rows_done=s.dump_rows_done + n, rows_done=s.rows_done + n)


@dataclass(frozen=True)
class SyncPlan:
    """What a sync would do: pending dumps (oldest first) and what it would skip."""

    pending: tuple[LoadedManifest, ...]
    superseded: tuple[str, ...]
    applied: tuple[AppliedDump, ...]
    listed: tuple[DumpRef, ...]
    # The first pending dump whose manifest is refused: it and every later one wait.
    refused: tuple[DumpRef, ManifestError] | None = None

    @property
    def bytes(self) -> int:
        return sum(m.manifest.compressed_bytes for m in self.pending)

    @property
    def rows(self) -> int:
        return sum(m.manifest.rows for m in self.pending)


class SyncEngine:
    """One laptop database, one bucket. Clients and paths are injected."""

    def __init__(self, config: Config, store: DumpStore, downloads_dir: Path, *,
                 password: str | None = None,
                 calendar: TradingCalendar | None = None,
                 today: Callable[[], dt.date] | None = None) -> None:
        self.config = config
        self.store = store
        # Each config's downloads in a folder of its own: two configs (two buckets or
        # prefixes) syncing at once never delete each other's partial downloads.
        self.downloads = DownloadFolder.for_config(downloads_dir, config)
        self.downloads_dir = self.downloads.path
        self.password = password
        self.calendar = calendar or TradingCalendar.load()
        from shared.calendar import today_ist

        self.today = today or today_ist
        self.downloaded_bytes = 0  # of the dump in progress

    # -- planning --------------------------------------------------------------------------
    def plan(self, conn: psycopg.Connection[Any]) -> SyncPlan:
        applied = ledger.applied_dumps(conn)
        applied_ids = {a.dump_id for a in applied}
        newest = applied[-1].dump_id if applied else ""
        listed = self.store.list_dumps()
        pending, superseded = [], []
        refused = None
        for ref in listed:
            if ref.dump_id in applied_ids:
                continue
            if ref.dump_id < newest:
                superseded.append(ref.dump_id)
                continue
            try:
                pending.append(self.store.load_manifest(ref))
            except ManifestError as exc:
                refused = (ref, exc)  # dumps apply in order: none after it either
                break
        return SyncPlan(tuple(pending), tuple(superseded), tuple(applied), tuple(listed),
                        refused)

    def pending_count(self) -> int:
        with connect_local(self.config.database.conninfo, self.password) as conn:
            return len(self.plan(conn).pending)

    # -- running ---------------------------------------------------------------------------
    def run(self, policy: ConflictPolicy | None = None, *, dry_run: bool = False,
            add_columns: bool | None = None, keep_dropped_columns: bool | None = None,
            progress: ProgressCallback | None = None,
            cancel: CancelToken | None = None) -> SyncReport:
        policy = policy or self.config.sync.policy
        add = SchemaOptions(
            add_columns=self.config.sync.add_missing_columns if add_columns is None
            else add_columns,
            keep_dropped_columns=self.config.sync.keep_dropped_columns
            if keep_dropped_columns is None else keep_dropped_columns)
        cancel = cancel or CancelToken()
        tracker = _Progress(progress)
        tracker.update(force=True, phase="listing")
        conn = connect_local(self.config.database.conninfo, self.password)
        session.prepare(conn)  # one snapshot a dump, no endless waits, no trader timeouts
        interrupt = conn.cancel_safe
        cancel.on_cancel(interrupt)
        try:
            if not ledger.try_lock(conn):
                raise SyncBusyError("another sync is already running on this laptop database",
                                    "wait for it to finish (see the tray), then try again")
            if dry_run:
                # One outer transaction that always rolls back: each dump's work sees the
                # previous ones, and nothing stays.
                with conn.transaction(force_rollback=True):
                    ledger.ensure_schema(conn)
                    return self._run_locked(conn, policy, dry_run, add, tracker, cancel)
            ledger.ensure_schema(conn)
            return self._run_locked(conn, policy, dry_run, add, tracker, cancel)
        finally:
            cancel.forget(interrupt)
            try:
                ledger.unlock(conn)
            except psycopg.Error:
                pass  # the connection is gone; the server released the lock with it
            conn.close()

    def _run_locked(self, conn: psycopg.Connection[Any], policy: ConflictPolicy, dry_run: bool,
                    add_columns: SchemaOptions, tracker: _Progress,
                    cancel: CancelToken) -> SyncReport:
        plan = self.plan(conn)
        self._forget_stale_downloads({m.manifest.dump_id for m in plan.pending})
        tracker.update(force=True, dump_count=len(plan.pending), bytes_total=plan.bytes,
                       rows_total=plan.rows)
        reports: list[DumpReport] = []
        error: MarketSyncError | None = None
        samples: tuple[dict[str, Any], ...] = ()
        for index, loaded in enumerate(plan.pending, start=1):
            m = loaded.manifest
            tracker.update(force=True, phase="downloading", dump_id=m.dump_id, dump_index=index,
                           dump_bytes_done=0, dump_bytes_total=m.compressed_bytes,
                           dump_rows_done=0, dump_rows_total=m.rows, table=None)
            started = time.monotonic()
            try:
                check_manifest_safety(m, self.config)
                self.downloaded_bytes = 0
                try:
                    files = self._download(conn, loaded, tracker, cancel)
                except psycopg.Error as exc:
                    raise database_error(exc, f"downloading dump {m.dump_id}",
                                         hint="nothing of this dump was applied; ") from None
                downloaded = time.monotonic() - started
                tracker.update(force=True, phase="applying")
                report = self._apply(conn, loaded, files, policy, dry_run, add_columns,
                                     tracker, cancel, downloaded)
            except MarketSyncError as exc:
                error = exc
                status = {ConflictAbortWithSamples: "aborted", Cancelled: "cancelled"}.get(
                    type(exc), "failed")
                if isinstance(exc, ConflictAbortWithSamples):
                    samples = tuple(exc.samples)
                reports.append(DumpReport(m.dump_id, status, m.first_day, m.last_day,
                                          m.compressed_bytes, time.monotonic() - started, 0.0, ()))
                break
            reports.append(replace(report, downloaded_bytes=self.downloaded_bytes))
            if not dry_run:
                self.downloads.forget(m.dump_id)
        if plan.refused is not None and error is None:
            ref, error = plan.refused
            reports.append(DumpReport(ref.dump_id, "failed", None, None, 0, 0.0, 0.0, ()))
        tracker.update(force=True, phase="done")
        missing = self._gaps(plan, reports)
        exit_code = error.exit_code if error else (4 if missing else 0)
        return SyncReport(
            policy=str(policy), dry_run=dry_run, dumps=tuple(reports), pending=len(plan.pending),
            superseded=plan.superseded, gaps=missing.holes, chain_breaks=missing.breaks,
            missing_history=missing.history,
            conflict_samples=samples, error=error.message if error else None,
            error_hint=error.hint if error else "", exit_code=exit_code)

    # -- download and verify ---------------------------------------------------------------
    def _forget_stale_downloads(self, keep: set[str]) -> None:
        """Partial downloads are kept to resume; those of dumps no longer pending are not."""
        self.downloads.forget_all_but(keep)

    def _download(self, conn: psycopg.Connection[Any], loaded: LoadedManifest,
                  tracker: _Progress, cancel: CancelToken) -> dict[str, Callable[[], Path]]:
        """Download and verify every part, except re-sent days the ledger already holds
        with the same content: those are fetched (and verified) only if the apply finds
        the laptop's rows for that day were changed since."""
        m = loaded.manifest
        folder = self.downloads.folder(m.dump_id, m.compressed_bytes)
        files: dict[str, Callable[[], Path]] = {}
        has_ledger = ledger.ledger_exists(conn)
        for number, (table, part) in enumerate(
                (t, p) for t in m.tables for p in t.parts):
            tracker.update(table=str(table.name))
            known = ledger.applied_part(conn, str(table.name), part.day_key) \
                if has_ledger else None
            if known is not None and known.content_sha256 == part.content_sha256:
                files[part.file] = _Deferred(functools.partial(
                    self._fetch, loaded, number, table, part, folder, tracker, cancel))
                tracker.add_bytes(part.bytes)  # accounted as done; fetched only if needed
                continue
            path = self._fetch(loaded, number, table, part, folder, tracker, cancel)
            files[part.file] = functools.partial(_same, path)
        return files

    def _fetch(self, loaded: LoadedManifest, number: int, table: TableDump, part: Part,
               folder: Path, tracker: _Progress, cancel: CancelToken) -> Path:
        m = loaded.manifest
        # Local names never come from the manifest: a number per part.
        dest = folder / f"part-{number:05d}.copy.zst"
        for attempt in (1, 2):
            if not (dest.exists() and dest.stat().st_size == part.bytes):
                dest.unlink(missing_ok=True)
                try:
                    with self.downloads.writing(m.dump_id, m.compressed_bytes):
                        self.store.download(loaded.ref.folder + part.file, dest, part.bytes,
                                            progress=tracker.add_bytes,
                                            cancelled=lambda: cancel.cancelled)
                except IntegrityError as exc:
                    raise IntegrityError(
                        f"dump {m.dump_id}: the part of {table.name} "
                        f"{part.day or '(whole table)'} is damaged: {exc.message}",
                        "nothing of this dump was applied. Re-run "
                        "`market-sync-agent backup --full` on the instance") from None
            else:
                tracker.add_bytes(part.bytes)
            if _sha256_file(dest) == part.sha256:
                self.downloaded_bytes += part.bytes
                return dest
            dest.unlink()
            if attempt == 2:
                raise IntegrityError(
                    f"dump {m.dump_id}: the part of {table.name} "
                    f"{part.day or '(whole table)'} does not match its checksum",
                    "nothing of this dump was applied. The object in S3 is damaged: "
                    "re-run `market-sync-agent backup --full` on the instance")
            logger.warning("checksum mismatch for %s; downloading it again", part.file)
            tracker.add_bytes(-part.bytes)
        raise AssertionError("unreachable")

    # -- apply -----------------------------------------------------------------------------
    def _apply(self, conn: psycopg.Connection[Any], loaded: LoadedManifest,
               files: dict[str, Callable[[], Path]], policy: ConflictPolicy, dry_run: bool,
               add_columns: SchemaOptions,
               tracker: _Progress, cancel: CancelToken, download_seconds: float) -> DumpReport:
        m = loaded.manifest
        started = time.monotonic()
        applier = DumpApplier(conn, self.config, policy, m.dump_id, schema=add_columns,
                              on_rows=tracker.add_rows, cancelled=lambda: cancel.cancelled)
        counts: dict[str, TableCounts] = {}
        grown: list[TablePlan] = []  # tables the dump added rows to
        current = ""
        try:
            with conn.transaction():
                for table in m.tables:
                    current = str(table.name)
                    tracker.update(force=True, table=current)
                    plan, created = applier.plan(table)
                    table_counts = counts.setdefault(current, TableCounts(created=created))
                    for part in table.parts:
                        if cancel.cancelled:
                            raise Cancelled("sync cancelled", "nothing of this dump was kept; "
                                            "run sync again to continue")
                        applier.apply_part(plan, part, files[part.file], table_counts)
                    # Covered days the instance has no rows for: the laptop's rows there go.
                    for part in coverage.emptied_parts(conn, plan):
                        applier.apply_part(plan, part, functools.partial(
                            coverage.empty_copy_file, self.downloads_dir / m.dump_id),
                            table_counts)
                    if table_counts.new and not dry_run:
                        grown.append(plan)
                seconds = time.monotonic() - started
                report = self._dump_report(m, counts, "would apply" if dry_run else "applied",
                                           download_seconds, seconds)
                ledger.record_dump(conn, AppliedDump(
                    dump_id=m.dump_id, previous_dump_id=m.previous_dump_id, kind=m.kind,
                    first_day=m.first_day, last_day=m.last_day, policy=str(policy),
                    rows_new=report.new, rows_unchanged=report.unchanged,
                    rows_diverged=report.diverged, bytes=m.compressed_bytes,
                    counts={t.name: t.to_json() for t in report.tables},
                    download_seconds=download_seconds, apply_seconds=seconds,
                    applied_at=dt.datetime.now(dt.UTC)), loaded.sha256)
        except psycopg.errors.QueryCanceled as exc:
            if not cancel.cancelled:  # not the trader's Cancel: the server's, say so
                raise database_error(exc, f"applying dump {m.dump_id}", table=current,
                                     user=conn.info.user) from None
            raise Cancelled("sync cancelled", "nothing of this dump was kept; "
                            "run sync again to continue") from None
        except psycopg.Error as exc:
            raise database_error(exc, f"applying dump {m.dump_id}", table=current,
                                 user=conn.info.user) from None
        # Once the dump is in (a sequence is not transactional: a dump rolled back must not
        # have moved one either).
        for plan in grown:
            try:
                applier.advance_sequences(plan)
            except psycopg.Error as exc:
                logger.warning("%s: could not move its id sequence past the synced rows (%s); "
                               "your own inserts may need explicit ids", plan.label,
                               first_line(exc))
        logger.info("dump %s %s in %.1f s", m.dump_id, report.status, report.apply_seconds)
        return report

    @staticmethod
    def _dump_report(m: Any, counts: dict[str, TableCounts], status: str,
                     download_seconds: float, apply_seconds: float) -> DumpReport:
        tables = tuple(
            TableReport(name, c.new, c.unchanged, c.diverged, c.parts_skipped, c.parts_copied,
                        c.parts_merged, c.created) for name, c in counts.items())
        return DumpReport(m.dump_id, status, m.first_day, m.last_day, m.compressed_bytes,
                          download_seconds, apply_seconds, tables)

    # -- gaps ----------------------------------------------------------------------------
    def _gaps(self, plan: SyncPlan, reports: list[DumpReport]) -> gaps.Missing:
        covered = [(a.first_day, a.last_day) for a in plan.applied
                   if a.first_day and a.last_day]
        covered += [(r.first_day, r.last_day) for r in reports
                    if r.first_day and r.last_day and r.status in ("applied", "would apply")]
        return gaps.what_is_missing(
            self.store, self.calendar, covered, applied=[a.dump_id for a in plan.applied],
            listed=plan.listed, superseded=plan.superseded, pending=plan.pending,
            newest_readable=plan.refused is None)


def _same(path: Path) -> Path:
    return path


class _Deferred:
    """A part not downloaded yet: fetched on first use, then remembered."""

    def __init__(self, fetch: Callable[[], Path]) -> None:
        self._fetch = fetch
        self._path: Path | None = None

    def __call__(self) -> Path:
        if self._path is None:
            self._path = self._fetch()
        return self._path


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
