"""The one runner for background work (STYLE.md: Anki's QueryOp/TaskManager).

Engine work runs in a child process (:meth:`Runner.spawn`, a
:class:`~desktop.ui.childjob.ChildJob` over ``python -m desktop.proc.worker``): the tray
never imports boto3 or psycopg and never competes for its GIL with a merge.
Light work that needs no engine (the first-run wizard's steps) can still run on
the runner's :class:`QThreadPool` (:meth:`Runner.run`). Either way what the work
returns, raises or reports comes back to the UI thread as the same signals:

    job = runner.spawn(services.run_sync(config))
    job.progressed.connect(window.show_progress)
    job.succeeded.connect(window.show_report)
    job.failed.connect(window.show_failure)
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from desktop.engine.progress import CancelToken
from desktop.ui.childjob import ChildJob
from desktop.ui.jobs import BaseJob, JobFailure

if TYPE_CHECKING:
    from desktop.ui.services import WorkerCall

logger = logging.getLogger(__name__)


class JobContext:
    """What the work function gets: a thread-safe progress report and the cancel token."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self.cancel = job.cancel_token

    def report(self, progress: object) -> None:
        """Call from the worker with a frozen dataclass; it reaches the UI thread queued."""
        self._job._progress.emit(progress)


Work = Callable[[JobContext], object]


class Job(BaseJob):
    """Work on the runner's thread pool (only for work that needs no engine)."""

    # Emitted from the worker thread; queued to the slots below on the UI thread.
    _progress = Signal(object)
    _result = Signal(object)
    _error = Signal(object)

    def __init__(self, name: str, work: Work, parent: QObject | None = None) -> None:
        super().__init__(name, parent)
        self.work = work
        self.cancel_token = CancelToken()
        self._progress.connect(self._on_progress)
        self._result.connect(self._on_result)
        self._error.connect(self._on_error)

    def cancel(self) -> None:
        """Ask the work to stop; the engine rolls back what is in flight."""
        self.cancel_token.cancel()

    def execute(self) -> None:
        """Runs on the worker thread."""
        from shared.errors import Cancelled, MarketSyncError

        try:
            result = self.work(JobContext(self))
        except Cancelled as exc:
            self._error.emit(JobFailure(self.name, exc.message, exc.hint, cancelled=True,
                                        kind=type(exc).__name__))
        except MarketSyncError as exc:
            self._error.emit(JobFailure(self.name, exc.message, exc.hint,
                                        kind=type(exc).__name__))
        except Exception as exc:  # a bug: keep the UI alive, log the traceback
            logger.exception("background job %s failed", self.name)
            self._error.emit(JobFailure(self.name, f"{type(exc).__name__}: {exc}",
                                        "this is a bug; the log has the details",
                                        details=traceback.format_exc(),
                                        kind=type(exc).__name__))
        else:
            self._result.emit(result)

    @Slot(object)
    def _on_progress(self, progress: object) -> None:
        if not self.done:
            self.progressed.emit(progress)

    @Slot(object)
    def _on_result(self, result: object) -> None:
        self._succeed(result)

    @Slot(object)
    def _on_error(self, failure: JobFailure) -> None:
        self._fail(failure)


class _Task(QRunnable):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def run(self) -> None:
        self.job.execute()


def worker_command() -> tuple[str, ...]:
    """``python -m desktop.proc.worker``, or the packaged app's own executable with its
    worker switch (tests substitute their own)."""
    from desktop.system.installation import worker_command as command

    return command()


class Runner(QObject):
    """Runs jobs (child processes, or work on its thread pool) and keeps them alive until
    they finish.

    Signals:
        busyChanged(bool): True when the first job starts, False when the last one ends.
    """

    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None, max_threads: int = 3,
                 worker: Sequence[str] | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.worker = tuple(worker) if worker else worker_command()
        self._jobs: list[BaseJob] = []

    def run(self, name: str, work: Work) -> Job:
        """Run ``work`` on the thread pool (never engine work: that is :meth:`spawn`)."""
        job = Job(name, work, self)
        self._track(job)
        self.pool.start(_Task(job))
        return job

    def spawn(self, call: WorkerCall, name: str | None = None) -> BaseJob:
        """Run one worker operation in a child process."""
        job = ChildJob(name or call.operation, (*self.worker, call.operation, *call.arguments),
                       call, self)
        self._track(job)
        job.start()
        return job

    def _track(self, job: BaseJob) -> None:
        job.finished.connect(self._forget)
        self._jobs.append(job)
        if len(self._jobs) == 1:
            self.busyChanged.emit(True)

    @property
    def jobs(self) -> tuple[BaseJob, ...]:
        return tuple(self._jobs)

    def running(self, name: str) -> BaseJob | None:
        return next((j for j in self._jobs if j.name == name), None)

    @Slot()
    def _forget(self) -> None:
        job = self.sender()
        if isinstance(job, BaseJob) and job in self._jobs:
            self._jobs.remove(job)
            job.deleteLater()
            if not self._jobs:
                self.busyChanged.emit(False)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything and wait for the threads and the child processes (at Quit).

        A child that has not ended within ``timeout_ms`` is killed; its transaction dies
        with it. Blocks the UI thread, which is what Quit wants: nothing outlives the app.
        """
        jobs = list(self._jobs)
        for job in jobs:
            job.cancel()
        ok = self.pool.waitForDone(timeout_ms)
        for job in jobs:
            if isinstance(job, ChildJob):
                ok = job.wait_ended(timeout_ms) and ok
        return ok


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Work:
    """A work function that ignores the context: ``runner.run("x", call(f, a))``."""
    return lambda _ctx: fn(*args, **kwargs)
