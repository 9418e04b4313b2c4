"""Where ``provision`` and ``deploy-agent`` get the agent wheel when ``--wheel`` is not given.

The instance installs market-sync from a wheel under ``artifacts/``. Which one depends on
how market-sync is installed on this laptop, and none of the three needs PyPI:

* the packaged app: the wheel ``scripts/package`` built and shipped inside it (``agent/``);
* a source checkout: ``pip wheel`` of the checkout (:func:`installer.agent.build_wheel`);
* ``pip install market-sync``: the installed distribution zipped back into the wheel it
  came from (its files, as its RECORD lists them, with a fresh RECORD).

The agent's dependencies go the same way: the packaged app ships them
(:func:`shipped_wheelhouse`); elsewhere ``pip download`` fetches them.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from installer.agent import DeployError, build_wheel, source_root
from shared.errors import MarketSyncError
from shared.paths import bundle_dir, is_frozen

DIST_NAME = "market-sync"
SHIPPED_DIR = "agent"  # inside the packaged app (packaging/market-sync.spec)
SHIPPED_WHEELHOUSE = "wheels"  # under SHIPPED_DIR: the agent's dependencies for the instance
_SKIPPED_METADATA = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def shipped_wheel() -> Path | None:
    """The wheel inside the packaged app, or None when this is not the packaged app."""
    if not is_frozen():
        return None
    wheels = sorted((bundle_dir() / SHIPPED_DIR).glob("*.whl"))
    if len(wheels) != 1:
        raise DeployError(f"the packaged app holds {len(wheels)} agent wheels, expected one",
                          "reinstall market-sync, or pass --wheel")
    return wheels[0]


def shipped_wheelhouse() -> Path | None:
    """The agent's dependency wheels inside the packaged app (``scripts/package`` fetched
    them for the instance's platform), or None when this is not the packaged app: there,
    :func:`installer.artifacts.build_wheelhouse` runs pip, which a frozen app does not have."""
    if not is_frozen():
        return None
    folder = bundle_dir() / SHIPPED_DIR / SHIPPED_WHEELHOUSE
    if not any(folder.glob("*.whl")):
        raise DeployError("the packaged app holds none of the agent's dependency wheels",
                          "reinstall market-sync, or pass --wheelhouse DIR")
    return folder


def agent_wheel(out_dir: Path,
                build: Callable[[Path, Path], Path] = build_wheel) -> Path:
    """The agent wheel of this installation (built into ``out_dir`` where it must be)."""
    shipped = shipped_wheel()
    if shipped is not None:
        return shipped
    try:
        source = source_root()
    except DeployError:
        return wheel_from_installed(out_dir)
    return build(source, out_dir)


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def wheel_from_installed(out_dir: Path, name: str = DIST_NAME) -> Path:
    """The installed distribution ``name`` as a wheel again (PEP 427 layout, fresh RECORD)."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise DeployError(f"{name} is neither packaged, a source checkout nor installed",
                          "pass --wheel") from None
    wheel_meta = dist.read_text("WHEEL") or ""
    if "Root-Is-Purelib: true" not in wheel_meta:
        raise DeployError(f"the installed {name} is not a pure-Python wheel install",
                          "pass --wheel")
    project = dist.metadata["Name"].replace("-", "_")
    dist_info = f"{project}-{dist.version}.dist-info"
    members: dict[str, bytes] = {}
    for file in dist.files or ():
        parts = file.parts
        if parts[0] == ".." or "__pycache__" in parts or file.suffix == ".pyc":
            continue  # console scripts (bin/) and byte code are the installer's, not the wheel's
        if parts[0].endswith(".dist-info"):
            if file.name in _SKIPPED_METADATA:
                continue
            members[f"{dist_info}/{'/'.join(parts[1:])}"] = Path(str(file.locate())).read_bytes()
        else:
            members[file.as_posix()] = Path(str(file.locate())).read_bytes()
    if not any(path.startswith("ec2/") for path in members):
        raise DeployError(f"the installed {name} has no agent (ec2/) files: an editable or "
                          "partial install", "run from the checkout, or pass --wheel")
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{project}-{dist.version}-py3-none-any.whl"
    record = [f"{path},{record_hash(data)},{len(data)}" for path, data in members.items()]
    record.append(f"{dist_info}/RECORD,,")
    try:
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, data in members.items():
                archive.writestr(path, data)
            archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    except OSError as exc:
        raise MarketSyncError(f"could not write the agent wheel {wheel}: {exc}") from None
    return wheel
