"""Where market-sync keeps things on this machine: one platformdirs-based object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "market-sync"
CONFIG_ENV = "MARKET_SYNC_CONFIG"


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    cache_dir: Path
    log_dir: Path
    state_dir: Path

    @classmethod
    def default(cls) -> AppPaths:
        import platformdirs

        return cls(
            config_dir=platformdirs.user_config_path(APP_NAME),
            cache_dir=platformdirs.user_cache_path(APP_NAME),
            log_dir=platformdirs.user_log_path(APP_NAME),
            state_dir=platformdirs.user_state_path(APP_NAME),
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def downloads_dir(self) -> Path:
        return self.cache_dir / "downloads"


def is_frozen() -> bool:
    """True in the packaged app (PyInstaller sets ``sys.frozen``)."""
    import sys

    return bool(getattr(sys, "frozen", False))


def bundle_dir() -> Path:
    """Where the packaged app's own files are (PyInstaller's ``sys._MEIPASS``)."""
    import sys

    return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """``--config`` wins, then ``$MARKET_SYNC_CONFIG``, then the platform default."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return AppPaths.default().config_file


def write_atomically(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (str: UTF-8) in one rename: a reader sees the old
    file or the new one, never half of it. The folder is created; a failed write (a full
    disk) removes its temporary file and leaves the old file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    try:
        if isinstance(data, str):
            temporary.write_text(data, encoding="utf-8")
        else:
            temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
