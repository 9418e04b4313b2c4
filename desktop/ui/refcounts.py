"""Keep ``None``, ``True`` and ``False`` alive under a PySide6 that does not count them.

Found with PySide6 6.12.0 (the ``cp310-abi3`` wheel) on CPython 3.11: its wrappers
return ``None`` (every void method: ``setText``, ``QTimer.start``, ``processEvents``…)
and ``True`` (``SignalInstance.emit``, ``disconnect``) without taking a reference,
as is only correct where those objects are immortal (CPython 3.12+). Each such call
leaves the singleton's reference count one lower; thousands of calls later (a
sync's progress, a day of polls, a test session) the count reaches zero and CPython
aborts with ``Fatal Python error: bool_dealloc`` (or ``none_dealloc``) -- while the
app runs, or at interpreter exit once modules let go of their references, after
every test has passed. The lighter the process, the sooner: the tray without boto3
and psycopg holds far fewer references to them.

:func:`guard_singletons` measures whether the installed PySide6 does this and, if it
does, makes the three singletons effectively immortal, as CPython 3.12 does, by
giving each a reference count no run can exhaust. Nothing else is changed; these
objects are never freed in a healthy interpreter anyway. On CPython 3.12+ or a
PySide6 that counts correctly it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys

logger = logging.getLogger(__name__)

SPARE_REFERENCES = 1 << 40  # ~10^12: a call per microsecond for 12 days would not use it up
_guarded = False


def _leaks() -> tuple[bool, bool]:
    """(void methods drop None, emit drops True), measured on a throwaway QObject."""
    from PySide6.QtCore import QObject, Signal

    class Probe(QObject):
        ping = Signal()

    probe = Probe()
    none_before = sys.getrefcount(None)
    for _ in range(8):
        probe.blockSignals(False)  # returns bool: a control, must not move None
        probe.setObjectName("probe")  # void
    none_dropped = sys.getrefcount(None) < none_before
    true_before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    true_dropped = sys.getrefcount(True) < true_before
    return none_dropped, true_dropped


def guard_singletons() -> bool:
    """Make None/True/False immortal if the installed PySide6 under-counts them.

    Returns whether it had to. Idempotent; call it before the first Qt object is used
    in earnest (``desktop.ui.app.application`` does).
    """
    global _guarded
    if _guarded or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    none_dropped, true_dropped = _leaks()
    if not (none_dropped or true_dropped):
        return False
    import PySide6

    logger.info("PySide6 %s does not count references to None/True/False on Python %s; "
                "keeping them alive", PySide6.__version__, sys.version.split()[0])
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += SPARE_REFERENCES
    _guarded = True
    return True
