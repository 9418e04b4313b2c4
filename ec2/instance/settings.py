"""What the installer knows about the instance before it exists, and hands to ``ec2/``.

Every value is concrete when the stack is created (the installer names the
bucket and the SNS topic up front), so the rendered user-data holds no
CloudFormation placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Distro = Literal["al2023", "ubuntu2204"]


@dataclass(frozen=True)
class InstanceSettings:
    region: str
    bucket: str
    prefix: str  # "" or ending in "/"
    agent_wheel_key: str  # e.g. "artifacts/market_sync-0.1.0-py3-none-any.whl"
    app_source: str  # "s3://<bucket>/artifacts/app.tar.gz" or a git URL (https://…)
    sns_topic_arn: str | None = None
    distro: Distro = "al2023"
    app_port: int = 8000
    database_conninfo: str = "host=127.0.0.1 port=5432 dbname=market user=postgres"
    tables_toml: str = ""  # the [[tables]] blocks of agent.toml, as the trader configured them
    power_off_after_backup: bool = True
    swap_gb: int = 2
