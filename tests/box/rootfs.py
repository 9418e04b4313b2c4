"""The cached root filesystems, made by ``mmdebstrap`` from Debian 12's packages.

* the **box**: a Debian 12 system with cloud-init, Docker, compose v2 and every
  package the product's user-data lists for ``debian12`` (so the box needs no
  package repository, as an image with them preinstalled would not);
* the **app image**: PostgreSQL 15 and busybox, the base of the stand-in market
  app's image (built in the box with ``FROM scratch``, no registry).

Each is cached outside the checkout, under ``$MARKET_SYNC_BOX_CACHE`` (default
``~/.cache/market-sync/box``, honouring ``XDG_CACHE_HOME``), so a fresh clone on the
same machine (CI's is one) finds it warm; it is a zstd tarball (box) or a gzip tarball
(image, which Docker's ``ADD`` unpacks), named by a hash of the suite, the package
list and the customize script, so a change to any of them builds a new one. The
box's tarball is unpacked once next to it: the pristine lower directory every box
overlays.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("MARKET_SYNC_BOX_CACHE") or Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "market-sync" / "box")
SUITE = "bookworm"

BOX_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "libpam-systemd", "cloud-init", "locales", "tzdata",
    "python3", "python3-venv", "python3-pip", "docker.io", "iptables", "iproute2",
    "ca-certificates", "curl", "faketime", "procps", "netbase", "awscli", "git",
    "logrotate", "postgresql-client",
)
IMAGE_PACKAGES = ("postgresql-15", "postgresql-client-15", "busybox", "tzdata")

# compose v2: bookworm has only compose v1, Debian 13's package is a static binary.
COMPOSE_DEB_URL = ("http://deb.debian.org/debian/pool/main/d/docker-compose/"
                   "docker-compose_2.26.1-4_amd64.deb")
COMPOSE_DEB_SHA256 = "47681197cb2b1ab88206b42a1a92fc75f50d9530a6322d03494a473eed0408ea"
TOOLS = ("mmdebstrap", "zstd", "systemd-nspawn", "unshare", "nsenter", "ip", "tar", "gzip")


@dataclass(frozen=True)
class Recipe:
    kind: str  # "box" | "image"
    packages: tuple[str, ...]
    hook: Path
    extra: str = ""  # anything else the result depends on

    @property
    def key(self) -> str:
        spec = {"suite": SUITE, "packages": sorted(set(self.packages)),
                "hook": self.hook.read_text(), "extra": self.extra}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def tarball(self) -> Path:
        suffix = ".tar.zst" if self.kind == "box" else ".tar.gz"
        return CACHE / f"{self.kind}-{SUITE}-{self.key}{suffix}"


def product_packages() -> tuple[str, ...]:
    """What the product's user-data installs on Debian 12 (the box must have it all)."""
    from ec2.instance import userdata

    packages: dict[str, list[str]] = userdata.PACKAGES
    return tuple(packages.get("debian12", ()))


def box_recipe() -> Recipe:
    return Recipe("box", BOX_PACKAGES + product_packages(), HERE / "customize-box",
                  COMPOSE_DEB_SHA256)


def image_recipe() -> Recipe:
    return Recipe("image", IMAGE_PACKAGES, HERE / "customize-image")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _compose_deb() -> Path:
    path = CACHE / Path(COMPOSE_DEB_URL).name
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == COMPOSE_DEB_SHA256:
        return path
    with urllib.request.urlopen(COMPOSE_DEB_URL, timeout=120) as response:
        data = response.read()
    if hashlib.sha256(data).hexdigest() != COMPOSE_DEB_SHA256:
        raise RuntimeError(f"{COMPOSE_DEB_URL} does not match its pinned sha256")
    path.write_bytes(data)
    return path


def _mmdebstrap(recipe: Recipe, out: Path, log: list[str]) -> None:
    env = None
    if recipe.kind == "box":
        import os

        env = {**os.environ, "BOX_COMPOSE_DEB": str(_compose_deb())}
    command = ["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet",
               "--include=" + ",".join(sorted(set(recipe.packages))),
               f'--customize-hook={recipe.hook} "$1"', SUITE, str(out)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed ({done.returncode}):\n{done.stderr[-4000:]}")
    log.append(f"mmdebstrap {recipe.kind}: {time.monotonic() - started:.0f} s")


def ensure(recipe: Recipe, log: list[str] | None = None) -> Path:
    """The recipe's cached tarball, built when missing."""
    log = log if log is not None else []
    with _locked():
        if recipe.tarball.exists():
            return recipe.tarball
        with tempfile.TemporaryDirectory(dir=CACHE, prefix=".build-") as tmp:
            raw = Path(tmp) / "rootfs.tar"
            _mmdebstrap(recipe, raw, log)
            packed = Path(tmp) / recipe.tarball.name
            gzip = ["sh", "-c", f'gzip -6 -c "{raw}" >"{packed}"']
            zstd = ["zstd", "-q", "-3", "-T0", str(raw), "-o", str(packed)]
            compress = zstd if recipe.kind == "box" else gzip
            subprocess.run(compress, check=True)
            packed.replace(recipe.tarball)
        for old in CACHE.glob(f"{recipe.kind}-*"):  # earlier recipes: no longer used
            if not old.name.startswith(f"{recipe.kind}-{SUITE}-{recipe.key}"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        return recipe.tarball


def ensure_box_rootfs(log: list[str] | None = None) -> Path:
    """The box's pristine rootfs directory (unpacked from the cached tarball)."""
    recipe = box_recipe()
    tarball = ensure(recipe, log)
    target = tarball.with_name(tarball.name.removesuffix(".tar.zst"))
    complete = target.with_name(target.name + ".complete")
    with _locked():
        if complete.exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        subprocess.run(["tar", "--zstd", "-xf", str(tarball), "-C", str(target)], check=True)
        complete.touch()
        return target


def ensure_image_rootfs(log: list[str] | None = None) -> Path:
    return ensure(image_recipe(), log)
