"""Logging, configured once in each ``main()``."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

LOG_FILE_NAME = "market-sync.log"
_NOISY = ("botocore", "boto3", "s3transfer", "urllib3", "werkzeug")


def configure_cli_logging(verbose: int = 0) -> None:
    """Warnings to stderr by default; ``-v`` info, ``-vv`` debug."""
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


class _MarketSyncFileHandler(logging.handlers.RotatingFileHandler):
    """The rotating log's handler, recognisable so a second call replaces it."""


def configure_file_logging(log_dir: Path | None = None, *, level: int = logging.INFO,
                           max_bytes: int = 2_000_000, backups: int = 5) -> Path:
    """A rotating log (``market-sync.log`` plus ``backups`` older ones) for the tray.

    ``log_dir`` defaults to the platform's log folder (platformdirs). Other handlers
    (e.g. the CLI's stderr one) stay; calling this again replaces only the file handler.
    Returns the log file's path ("Open logs" shows it).
    """
    if log_dir is None:
        from shared.paths import AppPaths

        log_dir = AppPaths.default().log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_FILE_NAME
    handler = _MarketSyncFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                     encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    handler.setLevel(level)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _MarketSyncFileHandler)]:
        root.removeHandler(old)
        old.close()
    if root.level > level:
        # The other handlers keep showing what they showed before (the CLI's warnings).
        for other in root.handlers:
            if other.level == logging.NOTSET:
                other.setLevel(root.level)
        root.setLevel(level)
    root.addHandler(handler)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    return path
