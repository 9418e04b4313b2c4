"""What every background job is, seen from the UI thread: its signals and its failure."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed: the trader's sentence, the hint, and for bugs the traceback."""

    job: str
    message: str
    hint: str = ""
    cancelled: bool = False
    details: str = ""
    kind: str = ""  # the exception's class name, e.g. "MarketHoursError"

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class BaseJob(QObject):
    """One piece of background work, observed from the UI thread.

    Signals:
        progressed(object): a progress dataclass the work reported (UI thread).
        succeeded(object): the work's result, usually a frozen dataclass (UI thread).
        failed(JobFailure): the work raised; expected errors carry the trader's message.
        finished(): after succeeded or failed, exactly once.
    """

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.done = False
        self.result: object = None
        self.failure: JobFailure | None = None

    def cancel(self) -> None:
        """Ask the work to stop; the engine rolls back what is in flight."""
        raise NotImplementedError

    def _succeed(self, result: object) -> None:
        self.done, self.result = True, result
        self.succeeded.emit(result)
        self.finished.emit()

    def _fail(self, failure: JobFailure) -> None:
        self.done, self.failure = True, failure
        if not failure.cancelled:
            logger.warning("%s failed: %s", self.name, failure.message)
        self.failed.emit(failure)
        self.finished.emit()
