"""A throwaway PostgreSQL cluster: initdb + pg_ctl in a temp folder, on a free port.

Binaries come from PATH or ``/usr/lib/postgresql/*/bin`` (newest first). As
root (CI, containers) the server runs as the ``postgres`` user, since PostgreSQL
refuses to run as root. The cluster trusts local connections: it exists only
for the life of the process and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import MarketSyncError

logger = logging.getLogger(__name__)


class PostgresNotFound(MarketSyncError):
    pass


def find_pg_bin() -> Path:
    """The folder holding initdb and pg_ctl."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent

    def version(path: str) -> float:
        m = re.search(r"/postgresql/(\d+(?:\.\d+)?)/bin", path)
        return float(m.group(1)) if m else 0.0

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")):
            return Path(folder)
    raise PostgresNotFound(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found",
        "install them, e.g. `sudo apt-get install postgresql` (Debian/Ubuntu), "
        "`brew install postgresql@16` (macOS)",
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgCluster:
    """A running throwaway cluster. Use as a context manager, or call stop()."""

    fast: bool = True  # fsync off: for tests and the demo, never for real data
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 0
    root: Path | None = None
    bin_dir: Path | None = None
    _run_as: str | None = None

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def _cmd(self, *args: str) -> list[str]:
        if self._run_as:
            return ["runuser", "-u", self._run_as, "--", *args]
        return list(args)

    def start(self) -> None:
        self.bin_dir = find_pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="market-sync-pg-"))
        if os.geteuid() == 0:
            self._run_as = "postgres"
            try:
                user = pwd.getpwnam(self._run_as)
            except KeyError:
                self._run_as = "nobody"
                user = pwd.getpwnam("nobody")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.port = free_port()
        initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]
        self._run(initdb)
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "60",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
        }
        if self.fast:
            options.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        options.update(self.settings)
        opts = " ".join(f"-c {k}={v}" for k, v in options.items())
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60",
                   "-l", str(self.root / "server.log"), "-o", opts, "start"])
        logger.info("throwaway PostgreSQL on 127.0.0.1:%d (%s)", self.port, self.root)

    def _run(self, args: list[str]) -> None:
        result = subprocess.run(self._cmd(*args), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = ""
            if self.root and (self.root / "server.log").exists():
                log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise MarketSyncError(
                f"{Path(args[0]).name} failed (exit {result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{log}"
            )

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.conninfo(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    def stop(self) -> None:
        if self.root is None:
            return
        if self.bin_dir and (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m",
                          "immediate", "-w", "stop"),
                capture_output=True, check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
