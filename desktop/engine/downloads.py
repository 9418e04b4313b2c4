"""Where a config's parts are downloaded to, and what a full or unwritable disk is told as.

Each config (its file, bucket and prefix) downloads into a folder of its own under the
downloads root, so two configs syncing at the same time never delete each other's
partial downloads. A disk that fills up stops the sync at once (no retry against a full
disk) with one sentence: which disk, and how much to free.
"""

from __future__ import annotations

import errno
import hashlib
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.config import Config
from shared.dumpstore import LocalFileError
from shared.errors import MarketSyncError

MB = 1 << 20


class DiskFullError(MarketSyncError):
    pass


@dataclass(frozen=True)
class DownloadFolder:
    root: Path  # the downloads root all configs share
    path: Path  # this config's folder in it

    @classmethod
    def for_config(cls, root: Path, config: Config) -> DownloadFolder:
        where = f"{config.path.resolve() if config.path else ''}\n{config.aws.bucket}\n" \
                f"{config.aws.prefix}"
        readable = re.sub(r"[^A-Za-z0-9_.-]", "_", config.aws.bucket)[:40]
        return cls(root, root / f"{readable}-{hashlib.sha256(where.encode()).hexdigest()[:12]}")

    def folder(self, dump_id: str, dump_bytes: int) -> Path:
        folder = self.path / dump_id
        with self.writing(dump_id, dump_bytes):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LocalFileError(folder, exc) from None
        return folder

    def forget(self, dump_id: str) -> None:
        shutil.rmtree(self.path / dump_id, ignore_errors=True)

    def forget_all_but(self, keep: set[str]) -> None:
        """Partial downloads are kept to resume; those of dumps no longer pending are not."""
        if self.path.is_dir():
            for folder in self.path.iterdir():
                if folder.is_dir() and folder.name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def writing(self, dump_id: str, dump_bytes: int) -> Iterator[None]:
        """Turn a failed local write into one sentence naming the disk (and, when it is
        full, how much to free for the rest of the dump)."""
        try:
            yield
        except LocalFileError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                held = sum(f.stat().st_size for f in (self.path / dump_id).glob("*")
                           if f.is_file()) if (self.path / dump_id).is_dir() else 0
                free = shutil.disk_usage(self._existing(exc.path)).free
                needed = max(1, -(-(dump_bytes - held - free) // MB))
                raise DiskFullError(
                    f"the disk holding {self.root} is full: free {needed:,} MB "
                    f"(dump {dump_id} needs {max(dump_bytes - held, 0) / MB:,.1f} MB more)",
                    "nothing was applied; the part downloaded so far is kept and the next "
                    "sync resumes it") from None
            raise MarketSyncError(
                f"cannot write the download to {exc.path}: {exc.strerror}",
                "nothing was applied; check that folder's permissions and disk") from None

    @staticmethod
    def _existing(path: Path) -> Path:
        while not path.exists() and path != path.parent:
            path = path.parent
        return path
