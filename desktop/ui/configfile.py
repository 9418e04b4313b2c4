"""Write the Settings dialog's values into the config TOML (no Qt here).

The file is read as TOML, only the keys the dialog owns are changed, the result
is validated with the same parser the app uses, and only then written (to a
temporary file, renamed over the old one). Tables and other sections are kept.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from shared.config import Config, ConflictPolicy, NotificationLevel, parse_config


@dataclass(frozen=True)
class SettingsValues:
    """What the Settings dialog edits."""

    profile: str
    region: str
    bucket: str
    instance_id: str
    conninfo: str
    policy: ConflictPolicy
    notifications: NotificationLevel
    allow_insecure_keyring: bool

    @classmethod
    def from_config(cls, config: Config) -> SettingsValues:
        return cls(profile=config.aws.profile or "", region=config.aws.region,
                   bucket=config.aws.bucket, instance_id=config.aws.instance_id or "",
                   conninfo=config.database.conninfo, policy=config.sync.policy,
                   notifications=config.ui.notifications,
                   allow_insecure_keyring=config.ui.allow_insecure_keyring)


def _set(section: dict[str, Any], key: str, value: str | bool | None) -> None:
    if value is None or value == "":
        section.pop(key, None)
    else:
        section[key] = value


def render_settings(path: Path, values: SettingsValues) -> tuple[str, Config]:
    """The new file's text and its parsed Config; raises ConfigError if it is not valid."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    data: dict[str, Any] = tomllib.loads(text) if text else {}
    aws = data.setdefault("aws", {})
    _set(aws, "profile", values.profile.strip())
    _set(aws, "region", values.region.strip())
    _set(aws, "bucket", values.bucket.strip())
    _set(aws, "instance_id", values.instance_id.strip())
    data.setdefault("database", {})["conninfo"] = values.conninfo.strip()
    data.setdefault("sync", {})["policy"] = str(values.policy)
    ui = data.setdefault("ui", {})
    ui["notifications"] = str(values.notifications)
    ui["allow_insecure_keyring"] = values.allow_insecure_keyring
    # tomli_w writes tables after plain keys; keep [[tables]] last for readability.
    ordered: dict[str, Any] = {k: data[k] for k in ("aws", "database", "sync", "app", "agent", "ui")
               if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    new_text = "# market-sync configuration (written by the Settings dialog)\n" + \
        tomli_w.dumps(ordered)
    return new_text, parse_config(new_text, path)


def save_settings(path: Path, values: SettingsValues) -> Config:
    text, config = render_settings(path, values)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return config
