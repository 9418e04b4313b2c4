"""The trader's side of the box tests: the laptop config, the agent wheel and its
dependency wheels, the stand-in market app's tarball, and `market-sync provision`
against the moto server — everything a real trader's first week starts from."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.box.rootfs import CACHE, HERE

APP_DIR = HERE / "app"
STACK = "market-sync"
REGION = "ap-south-1"
APP_DATABASE = "host=127.0.0.1 port=5432 dbname=market user=market"
APP_PASSWORD = "box: tick-tock 7"  # the app database's password (SSM only)
TABLES = '''
[[tables]]
name = "ticks"
key = ["symbol", "ts"]
watermark = "run_date"
'''
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
# The clocks the guard (and the backup's trading-day check) see through libfaketime:
# the box shares the kernel's wall clock, which may be any day of the week in CI.
TRADING_DAY = dt.datetime(2026, 11, 23, 9, 20, tzinfo=IST)  # a Monday with a session
HOLIDAY = dt.datetime(2026, 11, 24, 9, 0, tzinfo=IST)  # Guru Nanak Jayanti (NSE holiday)


@dataclass
class Trader:
    """One trader's files on the laptop."""

    home: Path
    config: Path
    password_file: Path
    app_tarball: Path
    wheel: Path
    wheelhouse: Path

    def provision_args(self, *, app_source: str | None = None) -> list[str]:
        """`market-sync provision` as the issue writes it (the exact form)."""
        return ["--config", str(self.config), "provision", "--distro", "debian12",
                "--app-source", app_source or str(self.app_tarball), "--wheel", str(self.wheel),
                "--email", "trader@example.com", "--ip", "49.36.10.20",
                "--app-database", APP_DATABASE,
                "--app-database-password-file", str(self.password_file),
                # one image serves all three services: the trader names the database's
                "--app-postgres-service", "db"]


def laptop_config(path: Path, endpoint_url: str, laptop_conninfo: str) -> Path:
    path.write_text(f'[aws]\nregion = "{REGION}"\nbucket = ""\nendpoint_url = "{endpoint_url}"\n'
                    f'\n[database]\nconninfo = "{laptop_conninfo}"\n' + TABLES)
    return path


def app_tarball(out: Path, image_rootfs: Path) -> Path:
    """The stand-in app as a trader would upload it: its compose project, with the
    image's rootfs (from Debian's packages) inside, so nothing comes from a registry."""
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        for path in sorted(APP_DIR.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(APP_DIR)))
        tar.add(image_rootfs, arcname="image/rootfs.tar.gz")
    return out


def agent_wheel(out_dir: Path) -> Path:
    """This checkout's market-sync, as provision would build it."""
    from installer.agent import build_wheel, source_root

    return build_wheel(source_root(), out_dir)


def wheelhouse(wheel: Path) -> Path:
    """The agent's dependencies as wheels for the instance, fetched once with pip and
    cached beside the rootfs (tests.box.rootfs.CACHE) by the project's dependency list."""
    from installer.artifacts import build_wheelhouse

    pyproject = (HERE.parents[1] / "pyproject.toml").read_text()
    dependencies = re.search(r"(?ms)^dependencies = \[(.*?)^\]", pyproject)
    assert dependencies is not None
    key = hashlib.sha256(dependencies.group(1).encode()).hexdigest()[:16]
    target = CACHE / f"wheelhouse-{key}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        build_wheelhouse(wheel, target)
        (target / ".complete").touch()
    for own in target.glob("market_sync-*.whl"):
        own.unlink()
    return target


def trader(home: Path, endpoint_url: str, laptop_conninfo: str, image_rootfs: Path) -> Trader:
    home.mkdir(parents=True, exist_ok=True)
    password = home / "app-db-password"
    password.write_text(APP_PASSWORD + "\n")
    password.chmod(0o600)
    wheel = agent_wheel(home / "dist")
    return Trader(home=home, config=laptop_config(home / "config.toml", endpoint_url,
                                                  laptop_conninfo),
                  password_file=password, app_tarball=app_tarball(home / "app.tar.gz",
                                                                 image_rootfs),
                  wheel=wheel, wheelhouse=wheelhouse(wheel))


def faketime_drop_in(at: dt.datetime) -> str:
    """A drop-in that gives one service a clock starting at ``at`` (libfaketime)."""
    stamp = at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return ("[Service]\n"
            "Environment=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1\n"
            f'Environment="FAKETIME=@{stamp}" TZ=UTC\n')

