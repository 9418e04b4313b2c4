"""The laptop's config.toml, written from the stack's outputs.

An existing file keeps everything but the ``[aws]`` keys the stack decides
(tables, policy, database…, and its comments and layout: it is edited with
tomlkit); the result is checked by the same parser the app uses before it
replaces the old file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from shared.config import parse_config
from shared.paths import write_atomically
from shared.tomledit import dumps, load_document, table

logger = logging.getLogger(__name__)

DEFAULT_CONNINFO = "host=localhost port=5432 dbname=market user=postgres"


@dataclass(frozen=True)
class LaptopAws:
    region: str
    bucket: str
    instance_id: str | None
    stack: str  # the CloudFormation stack: names the SSM path of the app's secrets
    endpoint_url: str | None = None


def write_laptop_config(path: Path, aws: LaptopAws, conninfo: str | None = None) -> Path:
    """Create or update ``path``; returns it."""
    hint = "fix or move the file, then run this again"
    document = load_document(path, "market-sync on this laptop. `market-sync provision` "
                             "rewrites [aws]; the rest is yours.", hint)
    section = table(document, "aws", path, hint)
    section["region"], section["bucket"], section["stack"] = aws.region, aws.bucket, aws.stack
    # no profile: the laptop acts as its operator key (OS keyring), never as the
    # administrator who provisioned
    section.pop("profile", None)
    for key, value in (("instance_id", aws.instance_id), ("endpoint_url", aws.endpoint_url)):
        if value:
            section[key] = value
        else:
            section.pop(key, None)
    database = table(document, "database", path, hint)
    if conninfo:
        database["conninfo"] = conninfo
    database.setdefault("conninfo", DEFAULT_CONNINFO)
    text = dumps(document)
    parse_config(text, path)  # never write a file the app would refuse
    write_atomically(path, text)
    logger.info("wrote %s", path)
    return path

