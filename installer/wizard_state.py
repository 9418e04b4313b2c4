"""What the first-run wizard needs that is not Qt: its saved answers, the AWS profiles,
the trader's public address, and the local database test.

The saved answers hold no secret (keys and passwords go to the keyring), so
the wizard can be closed and resumed where it was.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from shared.errors import DatabaseError, MarketSyncError
from shared.paths import write_atomically

logger = logging.getLogger(__name__)

CHECKIP_URL = "https://checkip.amazonaws.com"


@dataclass(frozen=True)
class WizardState:
    page: int = 0
    credentials: str = "profile"  # profile | keys
    profile: str = ""
    region: str = "ap-south-1"
    public_ip: str = ""
    email: str = ""
    app_source: str = ""
    instance_type: str = "t3.small"
    conninfo: str = "host=localhost port=5432 dbname=market user=postgres"
    provisioned: bool = False
    # The tables page's choices: {"name", "key": [...], "watermark", "mode"} each.
    tables: tuple[dict[str, Any], ...] = ()
    allow_insecure_keyring: bool = False

    @staticmethod
    def path(state_dir: Path) -> Path:
        return state_dir / "wizard.json"

    @classmethod
    def load(cls, state_dir: Path) -> WizardState:
        path = cls.path(state_dir)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            logger.warning("ignoring the unreadable wizard state %s: %s", path, exc)
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        if isinstance(values.get("tables"), list):
            values["tables"] = tuple(t for t in values["tables"] if isinstance(t, dict))
        try:
            return cls(**values)
        except TypeError:
            return cls()

    def save(self, state_dir: Path) -> None:
        write_atomically(self.path(state_dir), json.dumps(asdict(self), indent=1))


def aws_profiles() -> list[str]:
    """Profile names from ~/.aws/config and ~/.aws/credentials (no network)."""
    import boto3

    return sorted(boto3.Session().available_profiles)


def detect_public_ip(url: str = CHECKIP_URL, timeout: float = 10.0) -> str:
    """This machine's public IPv4 address as AWS sees it (HTTPS only)."""
    if not url.startswith("https://"):
        raise MarketSyncError(f"refusing to ask {url} over plain HTTP")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text: str = response.read(64).decode("ascii", "replace").strip()
    except OSError as exc:
        raise MarketSyncError(f"could not detect the public address: {exc}",
                              "type it in (search the web for 'what is my ip')") from None
    return text


@dataclass(frozen=True)
class DatabaseCheck:
    ok: bool
    message: str


def check_database(conninfo: str, password: str | None = None) -> DatabaseCheck:
    """Connect to the laptop's PostgreSQL once and say what answered."""
    import psycopg

    from shared.config import _PASSWORD_IN_CONNINFO

    if _PASSWORD_IN_CONNINFO.search(conninfo):
        raise DatabaseError("the connection string contains a password",
                            "remove it; the password field keeps it in the keyring")
    try:
        extra = {"password": password} if password else {}
        with psycopg.connect(conninfo, connect_timeout=5, **extra) as conn:  # type: ignore[arg-type]
            version = conn.execute("SHOW server_version").fetchone()
            database = conn.info.dbname
    except psycopg.Error as exc:
        return DatabaseCheck(False, f"could not connect: {str(exc).strip()}")
    return DatabaseCheck(True, f"connected to {database} (PostgreSQL "
                         f"{version[0] if version else '?'})")
