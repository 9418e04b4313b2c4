"""The tray's brain: polls the engine, runs actions through the runner, keeps one view.

Every engine call is a child process (:meth:`Runner.spawn`): the tray itself stays
light and its UI thread never waits for the engine.

The tray icon, its menu, the status window and the notifications all listen to
:class:`AppController`; none of them calls the engine.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from desktop.engine.gaps import describe_days
from desktop.ui import services
from desktop.ui.jobs import BaseJob, JobFailure
from desktop.ui.runner import Runner
from desktop.ui.viewmodel import SyncOutcome, TrayState, TrayView, derive_view
from shared.config import Config
from shared.words import plural

if TYPE_CHECKING:
    from desktop.engine.progress import SyncProgress
    from desktop.engine.report import SyncReport
    from desktop.engine.status import StatusSnapshot

logger = logging.getLogger(__name__)

HEALTHY_INTERVAL_MS = 30_000
TRANSITION_INTERVAL_MS = 5_000
MAX_INTERVAL_MS = 300_000


@dataclass(frozen=True)
class Notice:
    """Something worth a notification. ``error`` notices pass the errors-only level."""

    key: str       # notices with the same key are shown once until the fact changes
    title: str
    message: str
    error: bool = False


class Poller(QObject):
    """When to poll next: 30 s when all is well, 5 s while the instance changes state,
    doubling after each failure up to 5 minutes. Never polls twice at once.

    Signals:
        due(): time to poll.
    """

    due = Signal()

    def __init__(self, parent: QObject | None = None, healthy_ms: int = HEALTHY_INTERVAL_MS,
                 transition_ms: int = TRANSITION_INTERVAL_MS,
                 max_ms: int = MAX_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.healthy_ms, self.transition_ms, self.max_ms = healthy_ms, transition_ms, max_ms
        self.interval_ms = healthy_ms
        self.failures = 0
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.due)

    def succeeded(self, transitioning: bool) -> None:
        self.failures = 0
        self.interval_ms = self.transition_ms if transitioning else self.healthy_ms
        self.timer.start(self.interval_ms)

    def failed(self) -> None:
        self.failures += 1
        self.interval_ms = min(self.healthy_ms * 2 ** self.failures, self.max_ms)
        self.timer.start(self.interval_ms)

    def stop(self) -> None:
        self.timer.stop()


class AppController(QObject):
    """State and actions of the tray app.

    Signals:
        viewChanged(TrayView): the icon, menu and status window redraw from this.
        syncStarted(BaseJob): a sync began; the progress window follows the job.
        syncFinished(SyncOutcome): a sync ended (applied, failed or cancelled).
        notice(Notice): something to tell the trader (the notifier filters by level).
        configChanged(Config): Settings saved a new configuration.
        stopNeedsForce(str): a stop was refused during market hours; the message says why.
        message(str, bool): a one-off result to show (text, is_error).
    """

    viewChanged = Signal(object)
    syncStarted = Signal(object)
    syncFinished = Signal(object)
    notice = Signal(object)
    configChanged = Signal(object)
    stopNeedsForce = Signal(str)
    message = Signal(str, bool)

    def __init__(self, config: Config, runner: Runner | None = None,
                 parent: QObject | None = None,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        super().__init__(parent)
        self.config = config
        self.runner = runner or Runner(self)
        self.now = now
        self.clock: services.Clock = None  # the engine's idea of now (tests fix it)
        self.snapshot: StatusSnapshot | None = None
        self.poll_error: str | None = None
        self.progress: SyncProgress | None = None
        self.sync_job: BaseJob | None = None
        self.last_sync: SyncOutcome | None = None
        self.busy: str | None = None
        self.conflicts_seen = True
        self.unseen_conflicts = 0
        self.cancelling = False
        self._known_dump: str | None = None  # the newest applied dump the last poll saw
        self.view: TrayView = derive_view(None)
        self._poll_job: BaseJob | None = None
        self.closing = False
        self._notified: dict[str, str] = {}
        self.poller = Poller(self)
        self.poller.due.connect(self.poll)

    # -- polling ---------------------------------------------------------------------------
    @Slot()
    def poll(self) -> None:
        """Ask the engine for a fresh status (off the UI thread); ignored if one is running."""
        if self._poll_job is not None or self.closing:
            return
        self.poller.stop()
        job = self.runner.spawn(services.poll_status(self.config, self.clock))
        job.succeeded.connect(self._polled)
        job.failed.connect(self._poll_failed)
        self._poll_job = job

    @Slot(object)
    def _polled(self, snapshot: StatusSnapshot) -> None:
        self._poll_job = None
        self.snapshot, self.poll_error = snapshot, None
        self._note_applied(snapshot)
        inst = snapshot.instance
        transitioning = inst is not None and inst.state in ("pending", "stopping")
        if snapshot.errors and inst is None:
            self.poller.failed()
        else:
            self.poller.succeeded(transitioning)
        if snapshot.gaps:
            days = ", ".join(g.strftime("%a %d %b") for g in snapshot.gaps)
            self._notify(Notice("gap", "Gap in the backups", f"No dump covers {days}.",
                                error=True), days)
        self._notify_history(snapshot.missing_history)
        if snapshot.backup_missing:
            self._notify(Notice("backup", "Backup missing",
                                "Today's 16:00 IST backup has not reached S3.", error=True),
                         str(snapshot.collected_at.date()))
        self._refresh()

    def _note_applied(self, snapshot: StatusSnapshot) -> None:
        """A dump applied since the last poll (a CLI sync, another tray) that saved
        conflicts asks for attention, as the tray's own sync does."""
        applied = snapshot.last_sync
        if applied is None:
            return
        seen, self._known_dump = self._known_dump, applied.dump_id
        if seen is not None and applied.dump_id != seen and applied.rows_diverged \
                and self.sync_job is None:
            self.unseen_conflicts = applied.rows_diverged
            self.conflicts_seen = False

    @Slot(object)
    def _poll_failed(self, failure: JobFailure) -> None:
        self._poll_job = None
        self.poll_error = failure.message
        self.poller.failed()
        self._refresh()

    # -- instance --------------------------------------------------------------------------
    @Slot()
    def start_instance(self) -> None:
        self._instance_action("starting", services.start_instance(self.config, self.clock))

    @Slot()
    def stop_instance(self) -> None:
        self._stop(False)

    @Slot()
    def force_stop_instance(self) -> None:
        self._stop(True)

    def _stop(self, force: bool) -> None:
        self._instance_action("stopping", services.stop_instance(self.config, force, self.clock))

    def _instance_action(self, what: str, call: services.WorkerCall) -> None:
        if self.busy:
            return
        self.busy = what
        job = self.runner.spawn(call, what)
        job.succeeded.connect(self._instance_done)
        job.failed.connect(self._instance_failed)
        self._refresh()

    @Slot(object)
    def _instance_done(self, _state: object) -> None:
        self.busy = None
        self._refresh()
        self.poll()

    @Slot(object)
    def _instance_failed(self, failure: JobFailure) -> None:
        what, self.busy = self.busy, None
        self._refresh()
        if what == "stopping" and failure.kind == "MarketHoursError":
            self.stopNeedsForce.emit(str(failure))
        else:
            self.message.emit(f"Could not {'start' if what == 'starting' else 'stop'} the "
                              f"instance: {failure}", True)

    # -- sync ------------------------------------------------------------------------------
    @Slot()
    def sync_now(self) -> BaseJob | None:
        if self.sync_job is not None:
            return self.sync_job
        job = self.runner.spawn(services.run_sync(self.config))
        job.progressed.connect(self._sync_progress)
        job.succeeded.connect(self._sync_done)
        job.failed.connect(self._sync_failed)
        self.sync_job, self.progress = job, None
        self.syncStarted.emit(job)
        self._refresh()
        return job

    @Slot()
    def cancel_sync(self) -> None:
        if self.sync_job is not None and not self.cancelling:
            self.cancelling = True
            self.sync_job.cancel()
            self._refresh()

    @Slot(object)
    def _sync_progress(self, progress: SyncProgress) -> None:
        self.progress = progress
        old = self.view
        self._refresh(force=False)
        # Redraw the icon only when the ring moves a visible step.
        if old.progress is None or self.view.progress is None or \
                abs(self.view.progress - old.progress) >= 0.02:
            self.viewChanged.emit(self.view)

    @Slot(object)
    def _sync_done(self, report: SyncReport) -> None:
        outcome = SyncOutcome.from_report(report, self.now())
        if report.conflicts and not outcome.cancelled:
            self.conflicts_seen = False
            self.unseen_conflicts = report.conflicts
        if report.dumps and report.dumps[-1].status == "applied":
            self._known_dump = report.dumps[-1].dump_id
        self._sync_ended(outcome)
        if outcome.cancelled:
            return
        if report.error:
            self._notify(Notice("sync", "Sync failed", report.error, error=True), report.error,
                         always=True)
        else:
            self._notify(Notice("sync", "Sync finished", outcome.line), outcome.line, always=True)
        if report.conflicts:
            self._notify(Notice("conflicts", "Conflicts found",
                                f"{plural(report.conflicts, 'row')} differed; open Conflicts… "
                                "to review.",
                                error=True), str(report.conflicts), always=True)
        if report.gaps:
            days = ", ".join(g.strftime("%a %d %b") for g in report.gaps)
            self._notify(Notice("gap", "Gap in the backups", f"No dump covers {days}.",
                                error=True), days)
        self._notify_history(report.missing_history)

    def _notify_history(self, days: tuple[dt.date, ...]) -> None:
        """The instance's days before the laptop's first that no dump in S3 holds any more."""
        if days:
            text = describe_days(days)
            self._notify(Notice("history", "History missing",
                                f"No dump in S3 covers {text}; run `market-sync-agent backup "
                                "--full` on the instance to send them.", error=True), text)

    @Slot(object)
    def _sync_failed(self, failure: JobFailure) -> None:
        outcome = SyncOutcome.failed(failure.message, self.now(), failure.cancelled)
        self._sync_ended(outcome)
        if not failure.cancelled:
            self._notify(Notice("sync", "Sync failed", str(failure), error=True),
                         failure.message, always=True)

    def _sync_ended(self, outcome: SyncOutcome) -> None:
        self.sync_job, self.progress, self.last_sync = None, None, outcome
        self.cancelling = False
        self.syncFinished.emit(outcome)
        self._refresh()
        self.poll()

    @Slot()
    def conflicts_opened(self) -> None:
        if not self.conflicts_seen:
            self.conflicts_seen = True
            self._refresh()

    # -- config ----------------------------------------------------------------------------
    def set_config(self, config: Config) -> None:
        self.config = config
        self.configChanged.emit(config)
        self.poll()

    # -- view ------------------------------------------------------------------------------
    def _refresh(self, force: bool = True) -> None:
        self.view = derive_view(
            self.snapshot, poll_error=self.poll_error, syncing=self.progress,
            sync_running=self.sync_job is not None, last_sync=self.last_sync, busy=self.busy,
            conflicts_seen=self.conflicts_seen, unseen_conflicts=self.unseen_conflicts,
            cancelling=self.cancelling)
        if force:
            self.viewChanged.emit(self.view)

    def _notify(self, notice: Notice, fact: str, always: bool = False) -> None:
        """Emit ``notice`` unless the same fact was already told (``always``: every time)."""
        if not always and self._notified.get(notice.key) == fact:
            return
        self._notified[notice.key] = fact
        self.notice.emit(notice)

    @property
    def state(self) -> TrayState:
        return self.view.state

    def shutdown(self) -> None:
        """Stop polling; cancel what runs and wait for the children (Quit)."""
        self.closing = True
        self.poller.stop()
        self.runner.shutdown()
