"""One worker operation in a child process, observed through :class:`QProcess`.

Asynchronous from end to end: the UI thread never waits on the child (except at
Quit, :meth:`ChildJob.wait_ended`). The child's stdout is read as JSON lines as
they arrive (``readyReadStandardOutput``); its stderr goes to the tray's log.
Whatever goes wrong in the child (an error, a crash, a timeout, an answer that
is not JSON) ends as one :class:`JobFailure` sentence, never a traceback.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Slot

from desktop.proc.protocol import CANCEL
from desktop.system.installation import is_frozen
from desktop.ui.jobs import BaseJob, JobFailure

if TYPE_CHECKING:
    from desktop.ui.services import WorkerCall

logger = logging.getLogger(__name__)

CANCEL_GRACE_MS = 60_000  # after "cancel", how long the rollback may take before a kill
_ROOT = str(Path(__file__).resolve().parents[2])  # where ``desktop`` can be imported from


class ChildJob(BaseJob):
    """``argv`` run as a child process speaking the protocol of :mod:`desktop.proc.worker`."""

    def __init__(self, name: str, argv: Sequence[str], call: WorkerCall,
                 parent: QObject | None = None) -> None:
        super().__init__(name, parent)
        self.argv = tuple(argv)
        self.call = call
        self.cancel_requested = False
        self.timed_out = False
        self._answer: tuple[str, Any] | None = None
        self._buffer = b""
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self.process = QProcess(self)
        self.process.setProgram(self.argv[0])
        self.process.setArguments(list(self.argv[1:]))
        env = QProcessEnvironment.systemEnvironment()
        if not is_frozen():  # the packaged executable carries its own modules
            paths = [p for p in (env.value("PYTHONPATH"),) if p]
            env.insert("PYTHONPATH", os.pathsep.join([_ROOT, *paths]))
        env.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(env)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._ended)
        self.process.errorOccurred.connect(self._error)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._timeout)

    def start(self) -> None:
        logger.debug("starting %s", " ".join(self.argv))
        self.process.start()
        self.process.write(self.call.request.line())  # buffered until the child runs
        if self.call.timeout_ms is not None:
            self.timer.start(self.call.timeout_ms)

    # -- control ---------------------------------------------------------------------------
    def cancel(self) -> None:
        """A sync: ``cancel`` on the child's stdin, the engine rolls back the dump in flight,
        and a child that does not end within the grace period is killed (its transaction
        dies with it). Anything else (each step its own transaction) is killed at once."""
        if self.done or self.cancel_requested:
            return
        self.cancel_requested = True
        if self.process.state() == QProcess.ProcessState.NotRunning:
            return
        if self.call.progress is None:  # not a sync: nothing to roll back, stop it now
            self.process.kill()
            return
        self.process.write(f"{CANCEL}\n".encode())
        self.timer.start(CANCEL_GRACE_MS)

    def wait_ended(self, timeout_ms: int) -> bool:
        """Block until the child has ended (Quit only); kill it after ``timeout_ms``."""
        if self.process.state() == QProcess.ProcessState.NotRunning:
            return True
        if self.process.waitForFinished(timeout_ms):
            return True
        logger.warning("%s did not end in %d ms; killing it", self.name, timeout_ms)
        self.process.kill()
        return self.process.waitForFinished(5_000) and False

    # -- the child's output ----------------------------------------------------------------
    @Slot()
    def _read_stdout(self) -> None:
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._line(line)

    def _line(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            (kind, body), = message.items()
        except (ValueError, AttributeError):
            logger.warning("%s: not a protocol line: %r", self.name, raw[:200])
            return
        if kind == "progress" and self.call.progress is not None and not self.done:
            try:
                self.progressed.emit(self.call.progress(body))
            except (KeyError, TypeError, ValueError) as exc:
                logger.warning("%s: unreadable progress %r (%s)", self.name, body, exc)
        elif kind in ("result", "error"):
            self._answer = (kind, body)

    @Slot()
    def _read_stderr(self) -> None:
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self._stderr.append(line)
                logger.info("[%s] %s", self.name, line)

    # -- the end ---------------------------------------------------------------------------
    @Slot(int, QProcess.ExitStatus)
    def _ended(self, code: int, status: QProcess.ExitStatus) -> None:
        self.timer.stop()
        self._read_stdout()
        if self._buffer.strip():
            self._line(self._buffer)
            self._buffer = b""
        self._read_stderr()
        if not self.done:
            self._conclude(code, status)

    def _conclude(self, code: int, status: QProcess.ExitStatus) -> None:
        answer = self._answer
        if answer is not None and answer[0] == "result":
            try:
                result = self.call.decode(answer[1])
            except (KeyError, TypeError, ValueError) as exc:
                logger.error("%s: unreadable answer %r", self.name, answer[1], exc_info=exc)
                self._fail(JobFailure(self.name, "The background worker's answer could not be "
                                      "read.", "this is a bug; the log has the details",
                                      kind=type(exc).__name__))
            else:
                self._succeed(result)
            return
        if answer is not None and isinstance(answer[1], dict):
            error = answer[1]
            self._fail(JobFailure(self.name, str(error.get("message") or "failed"),
                                  str(error.get("hint") or ""),
                                  cancelled=bool(error.get("cancelled")),
                                  kind=str(error.get("kind") or "")))
            return
        if self.timed_out:
            seconds = (self.call.timeout_ms or 0) // 1000
            message = f"The {self.name} request took longer than {seconds} s and was " \
                "stopped." \
                if not self.cancel_requested else "Cancelling took too long; the work was " \
                "stopped and nothing half-applied was kept."
            self._fail(JobFailure(self.name, message, "the log has the details",
                                  cancelled=self.cancel_requested, kind="Timeout"))
            return
        if self.cancel_requested:
            self._fail(JobFailure(self.name, "Cancelled; nothing half-applied was kept.",
                                  cancelled=True, kind="Cancelled"))
            return
        crashed = status == QProcess.ExitStatus.CrashExit
        for line in self._stderr:
            logger.warning("[%s] %s", self.name, line)
        how = "crashed" if crashed else f"stopped with exit code {code}"
        self._fail(JobFailure(self.name, f"The background worker {how} without an answer.",
                              "the log has its last lines", kind="WorkerCrashed"))

    @Slot(QProcess.ProcessError)
    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and not self.done:
            self.timer.stop()
            self._fail(JobFailure(self.name, f"Could not start the background worker "
                                  f"({self.argv[0]}): {self.process.errorString()}.",
                                  "reinstall market-sync", kind="FailedToStart"))

    @Slot()
    def _timeout(self) -> None:
        if self.process.state() != QProcess.ProcessState.NotRunning:
            logger.warning("%s: no answer in time; killing the child", self.name)
            self.timed_out = True
            self.process.kill()
