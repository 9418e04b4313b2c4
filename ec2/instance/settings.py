"""What the installer knows about the instance before it exists, and hands to ``ec2/``.

Two records. :class:`BootSettings` is all the user-data holds: the same for
every market-sync version and every table set, so re-provisioning never
changes the user-data (which would stop and start a running instance).
:class:`InstanceSettings` is everything else; it is rendered into the
*settings bundle* (``artifacts/instance-settings.tar.gz``) that the user-data's
bootstrap fetches at first boot and ``deploy-agent`` replaces later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from shared.appsecrets import (  # the stack's SSM names have one home; re-exported here
    app_env_path,
    app_source_token_parameter,
    database_password_parameter,
    ssm_path,
)
from shared.tables import MergeMode, QualifiedName, TableSpec

__all__ = ["app_env_path", "app_source_token_parameter", "database_password_parameter",
           "ssm_path"]

Distro = Literal["al2023", "ubuntu2204", "debian12"]
DISTROS: tuple[Distro, ...] = ("al2023", "ubuntu2204", "debian12")


@dataclass(frozen=True)
class BootSettings:
    """The user-data's inputs: stable for the life of the stack."""

    region: str
    bucket: str
    stack_name: str
    distro: Distro = "al2023"
    endpoint_url: str | None = None  # the config's [aws] endpoint_url: every AWS call uses it
    sns_topic_arn: str | None = None  # where a failed first-boot setup is reported
    swap_gb: int = 2


@dataclass(frozen=True)
class InstanceSettings:
    region: str
    bucket: str
    prefix: str  # "" or ending in "/"
    agent_wheel_key: str  # e.g. "artifacts/market_sync-0.1.0-py3-none-any.whl"
    app_source: str  # "s3://<bucket>/artifacts/app.tar.gz" or a git URL (https://…)
    sns_topic_arn: str | None = None
    distro: Distro = "al2023"
    # the agent's dependencies: wheel file names under artifacts/wheels/ (no PyPI on the instance)
    wheels: tuple[str, ...] = ()
    app_port: int = 8000
    # the app's PostgreSQL as the instance reaches it (no password: SSM → pgpass at boot)
    database_conninfo: str = "host=127.0.0.1 port=5432 dbname=market user=postgres"
    tables: tuple[TableSpec, ...] = field(default=())  # the trader's [[tables]]
    power_off_after_backup: bool = True
    swap_gb: int = 2
    stack_name: str = "market-sync"  # names the SSM parameters /market-sync/<stack>/…
    endpoint_url: str | None = None
    app_compose_file: str = "docker-compose.yml"  # the app's compose file, relative to its root
    app_git_ref: str = ""  # branch or tag when app_source is a git URL; "" = its default branch
    # the compose service of the app's PostgreSQL; None: detected from the app's services
    postgres_service: str | None = None
    postgres_data_path: str = "/var/lib/postgresql/data"  # its data directory in the container
    stop_grace_seconds: int = 120  # how long the collector gets to flush on stop
    health_path: str = "/health"  # the app's health endpoint on app_port
    compose_version: str = "v2.29.7"  # compose plugin release fetched when no v2 is installed
    log_retention_days: int = 30  # CloudWatch Logs retention the agent config asks for

    def boot(self) -> BootSettings:
        """The part of these settings the user-data holds."""
        return BootSettings(region=self.region, bucket=self.bucket, stack_name=self.stack_name,
                            distro=self.distro, endpoint_url=self.endpoint_url,
                            sns_topic_arn=self.sns_topic_arn, swap_gb=self.swap_gb)


def settings_to_json(settings: InstanceSettings) -> dict[str, Any]:
    """The record as JSON data (S3 keeps it next to the bundle, for ``deploy-agent``)."""
    data = asdict(settings)
    data["tables"] = [{"schema": t.name.schema, "table": t.name.table, "mode": str(t.mode),
                       "key": list(t.key), "watermark": t.watermark} for t in settings.tables]
    return data


def settings_from_json(data: dict[str, Any]) -> InstanceSettings:
    """The inverse of :func:`settings_to_json`; unknown keys (a newer writer) are ignored."""
    known = {f.name for f in fields(InstanceSettings)}
    values = {k: v for k, v in data.items() if k in known}
    values["wheels"] = tuple(data.get("wheels", ()))
    values["tables"] = tuple(
        TableSpec(QualifiedName(t["schema"], t["table"]), MergeMode(t["mode"]),
                  tuple(t.get("key", ())), t.get("watermark"))
        for t in data.get("tables", ()))
    return InstanceSettings(**values)
