"""Logging, configured once in each ``main()``."""

from __future__ import annotations

import logging
import sys


def configure_cli_logging(verbose: int = 0) -> None:
    """Warnings to stderr by default; ``-v`` info, ``-vv`` debug."""
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
