"""What the engine tells the UI while it works, and how the UI stops it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SyncProgress:
    """A snapshot of a running sync: per dump and overall, bytes and rows."""

    phase: str  # "listing" | "downloading" | "verifying" | "applying" | "done"
    dump_id: str | None = None
    dump_index: int = 0  # 1-based; 0 before the first dump
    dump_count: int = 0
    table: str | None = None
    dump_bytes_done: int = 0
    dump_bytes_total: int = 0
    dump_rows_done: int = 0
    dump_rows_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    rows_done: int = 0
    rows_total: int = 0


ProgressCallback = Callable[[SyncProgress], None]


class CancelToken:
    """Set from any thread; the engine checks it between chunks and interrupts queries."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._interrupts: list[Callable[[], None]] = []

    def cancel(self) -> None:
        self._event.set()
        with self._lock:
            interrupts = list(self._interrupts)
        for interrupt in interrupts:
            interrupt()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def on_cancel(self, interrupt: Callable[[], None]) -> None:
        with self._lock:
            self._interrupts.append(interrupt)

    def forget(self, interrupt: Callable[[], None]) -> None:
        with self._lock:
            if interrupt in self._interrupts:
                self._interrupts.remove(interrupt)
