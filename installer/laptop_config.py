"""The laptop's config.toml, written from the stack's outputs.

An existing file keeps everything but the ``[aws]`` keys the stack decides
(tables, policy, database…); the result is checked by the same parser the app
uses before it replaces the old file.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from shared.config import parse_config
from shared.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_CONNINFO = "host=localhost port=5432 dbname=market user=postgres"


@dataclass(frozen=True)
class LaptopAws:
    region: str
    bucket: str
    instance_id: str | None
    profile: str | None  # None: keys from the OS keyring, or the default chain
    endpoint_url: str | None = None


def write_laptop_config(path: Path, aws: LaptopAws, conninfo: str | None = None) -> Path:
    """Create or update ``path``; returns it."""
    document: dict[str, Any] = {}
    if path.exists():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot update {path}: {exc}",
                              "fix or move the file, then run this again") from None
    section: dict[str, Any] = dict(document.get("aws", {}))
    section.update(region=aws.region, bucket=aws.bucket)
    for key, value in (("instance_id", aws.instance_id), ("profile", aws.profile),
                       ("endpoint_url", aws.endpoint_url)):
        if value:
            section[key] = value
        else:
            section.pop(key, None)
    document["aws"] = section
    database = dict(document.get("database", {}))
    if conninfo:
        database["conninfo"] = conninfo
    database.setdefault("conninfo", DEFAULT_CONNINFO)
    document["database"] = database
    text = ("# market-sync on this laptop. `market-sync provision` rewrites [aws]; "
            "the rest is yours.\n" + tomli_w.dumps(document))
    parse_config(text, path)  # never write a file the app would refuse
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    logger.info("wrote %s", path)
    return path
