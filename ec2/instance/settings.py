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
    # Added for the instance files (ec2/instance/): all with defaults.
    app_compose_file: str = "docker-compose.yml"  # the app's compose file, relative to its root
    app_git_ref: str = ""  # branch or tag when app_source is a git URL; "" = its default branch
    postgres_service: str = "postgres"  # the compose service of the app's PostgreSQL
    postgres_data_path: str = "/var/lib/postgresql/data"  # its data directory in the container
    app_services: tuple[str, ...] = ("postgres", "collector", "api")  # every compose service
    stop_grace_seconds: int = 120  # how long the collector gets to flush on stop
    health_path: str = "/health"  # the app's health endpoint on app_port
    compose_version: str = "v2.29.7"  # docker compose plugin release (GitHub), both distros
    log_retention_days: int = 30  # CloudWatch Logs retention the agent config asks for
