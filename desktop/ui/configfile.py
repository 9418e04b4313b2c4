"""Write the Settings dialog's values into the config TOML (no Qt here).

The file is read with tomlkit (shared/tomledit.py) and only the keys the dialog owns
are changed: everything else, comments and layout included, stays as the trader wrote
it. The result is validated with the same parser the app uses, and only then written
(to a temporary file, renamed over the old one).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.config import Config, ConflictPolicy, NotificationLevel, parse_config
from shared.paths import write_atomically
from shared.tables import TableSpec
from shared.tomledit import dumps, load_document, table
from shared.validate import (
    Problem,
    check_bucket,
    check_conninfo,
    check_instance_id,
    check_region,
)


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
    add_missing_columns: bool = False
    keep_dropped_columns: bool = False

    @classmethod
    def from_config(cls, config: Config) -> SettingsValues:
        return cls(profile=config.aws.profile or "", region=config.aws.region,
                   bucket=config.aws.bucket, instance_id=config.aws.instance_id or "",
                   conninfo=config.database.conninfo, policy=config.sync.policy,
                   notifications=config.ui.notifications,
                   allow_insecure_keyring=config.ui.allow_insecure_keyring,
                   add_missing_columns=config.sync.add_missing_columns,
                   keep_dropped_columns=config.sync.keep_dropped_columns)


def check_settings(values: SettingsValues) -> list[tuple[str, Problem]]:
    """Each field that would break the tray, with why (shared/validate.py's sentences)."""
    found: list[tuple[str, Problem]] = []
    for name, value, check in (("region", values.region, check_region),
                               ("bucket", values.bucket, check_bucket),
                               ("instance_id", values.instance_id, check_instance_id),
                               ("conninfo", values.conninfo, check_conninfo)):
        text = value.strip()
        if name == "instance_id" and not text:
            continue  # optional: status says none is configured
        problem = check(text)
        if problem is not None:
            found.append((name, problem))
    return found


def _set(section: MutableMapping[str, Any], key: str, value: str | bool | None) -> None:
    if value is None or value == "":
        section.pop(key, None)
    else:
        section[key] = value


def render_settings(path: Path, values: SettingsValues) -> tuple[str, Config]:
    """The new file's text and its parsed Config; raises ConfigError if it is not valid."""
    hint = "fix the file by hand (or move it away), then save again"
    document = load_document(path, "market-sync configuration (written by the Settings "
                             "dialog; comments you add are kept)", hint)
    aws = table(document, "aws", path, hint)
    _set(aws, "profile", values.profile.strip())
    _set(aws, "region", values.region.strip())
    _set(aws, "bucket", values.bucket.strip())
    _set(aws, "instance_id", values.instance_id.strip())
    table(document, "database", path, hint)["conninfo"] = values.conninfo.strip()
    sync = table(document, "sync", path, hint)
    sync["policy"] = str(values.policy)
    sync["add_missing_columns"] = values.add_missing_columns
    sync["keep_dropped_columns"] = values.keep_dropped_columns
    ui = table(document, "ui", path, hint)
    ui["notifications"] = str(values.notifications)
    ui["allow_insecure_keyring"] = values.allow_insecure_keyring
    new_text = dumps(document)
    return new_text, parse_config(new_text, path)


def save_settings(path: Path, values: SettingsValues) -> Config:
    text, config = render_settings(path, values)
    write_atomically(path, text)
    return config


def render_wizard_choices(path: Path, tables: tuple[TableSpec, ...],
                          allow_insecure_keyring: bool) -> tuple[str, Config]:
    """The file ``provision`` wrote, with the wizard's ``[[tables]]`` (the same the agent
    got) and its keyring choice; validated like every other write."""
    import tomlkit

    hint = "fix the file by hand (or move it away), then run the wizard again"
    document = load_document(path, "market-sync configuration", hint)
    aot = tomlkit.aot()
    for spec in tables:
        entry = tomlkit.table()
        entry["name"] = str(spec.name)
        if spec.key:
            entry["key"] = list(spec.key)
        if spec.watermark is not None:
            entry["watermark"] = spec.watermark
        entry["mode"] = str(spec.mode)
        aot.append(entry)
    document["tables"] = aot
    if allow_insecure_keyring:
        table(document, "ui", path, hint)["allow_insecure_keyring"] = True
    text = dumps(document)
    return text, parse_config(text, path)


def write_wizard_choices(path: Path, tables: tuple[TableSpec, ...],
                         allow_insecure_keyring: bool) -> Config:
    text, config = render_wizard_choices(path, tables, allow_insecure_keyring)
    write_atomically(path, text)
    return config
