"""The configuration files the instance gets, rendered from :class:`InstanceSettings`.

``agent.toml`` (the agent's config, same format as the laptop's), the
production compose override (rendered on the instance by setup, from the app's
real services), the CloudWatch agent config, Docker's ``daemon.json``,
logrotate, and ``setup.env`` (the inputs of market-sync-setup).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

import tomli_w

from ec2.instance import layout
from ec2.instance.settings import InstanceSettings, ssm_path
from ec2.instance.units import units_to_enable
from shared.config import parse_config
from shared.errors import ConfigError
from shared.tables import MergeMode, TableSpec

METRIC_NAMESPACE = "MarketSync"
LOG_GROUP_INSTANCE = "/market-sync/instance"
LOG_GROUP_APP = "/market-sync/app"
LOG_MAX_SIZE = "10m"
LOG_MAX_FILES = 5


def _q(value: str) -> str:
    """A double-quoted YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def health_url(settings: InstanceSettings) -> str:
    return f"http://127.0.0.1:{settings.app_port}{settings.health_path}"


def postgres_port(settings: InstanceSettings) -> int:
    match = re.search(r"(?:^|\s)port\s*=\s*(\d+)", settings.database_conninfo)
    return int(match.group(1)) if match else 5432


def table_entry(spec: TableSpec) -> dict[str, object]:
    """One ``[[tables]]`` entry as TOML data, exactly as the config parser reads it back."""
    entry: dict[str, object] = {"name": str(spec.name), "mode": str(spec.mode)}
    if spec.key:
        entry["key"] = list(spec.key)
    if spec.watermark is not None and spec.mode is not MergeMode.SNAPSHOT:
        entry["watermark"] = spec.watermark
    return entry


def render_agent_toml(settings: InstanceSettings) -> str:
    """/etc/market-sync/agent.toml: one document, rendered once by tomli-w and checked by the
    same parser the agent uses."""
    aws: dict[str, object] = {"region": settings.region, "bucket": settings.bucket,
                              "prefix": settings.prefix}
    if settings.endpoint_url:
        aws["endpoint_url"] = settings.endpoint_url
    agent: dict[str, object] = {
        "metric_namespace": METRIC_NAMESPACE,
        "power_off_after_backup": settings.power_off_after_backup,
        "ssm_path": ssm_path(settings.stack_name),
    }
    if settings.sns_topic_arn:
        agent["sns_topic_arn"] = settings.sns_topic_arn
    document: dict[str, object] = {
        "aws": aws,
        "database": {"conninfo": settings.database_conninfo},
        "app": {"health_url": health_url(settings), "port": settings.app_port},
        "agent": agent,
    }
    if settings.tables:
        document["tables"] = [table_entry(spec) for spec in settings.tables]
    text = ("# market-sync agent on the instance. Rendered by market-sync; "
            "`market-sync deploy-agent` rewrites it.\n" + tomli_w.dumps(document))
    parse_config(text, Path(layout.AGENT_TOML))  # anything the agent would refuse fails here
    return text


@dataclass(frozen=True)
class OverrideSpec:
    """What the compose override needs besides the app's services (which setup reads on the
    instance with ``docker compose config``)."""

    postgres_service: str | None  # None: detect it among the app's services
    postgres_port: int
    postgres_data_path: str
    stop_grace_seconds: int

    @classmethod
    def of(cls, settings: InstanceSettings) -> OverrideSpec:
        return cls(settings.postgres_service, postgres_port(settings),
                   settings.postgres_data_path, settings.stop_grace_seconds)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> OverrideSpec:
        data = json.loads(text)
        return cls(data["postgres_service"], int(data["postgres_port"]),
                   str(data["postgres_data_path"]), int(data["stop_grace_seconds"]))


@dataclass(frozen=True)
class ComposeService:
    """One service of the app, from ``docker compose config --format json``."""

    name: str
    image: str = ""


def app_services(compose_json: str) -> tuple[ComposeService, ...]:
    """The services of the app's project, as ``docker compose config --format json`` lists
    them (compose has already merged and normalised the app's files)."""
    try:
        data = json.loads(compose_json)
        services = data["services"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError("`docker compose config --format json` did not list the app's "
                          "services") from None
    found = []
    for name, body in sorted(services.items()):
        if not _NAME.match(name):
            raise ConfigError(f"compose service name {name!r} is not a plain name")
        image = body.get("image", "") if isinstance(body, dict) else ""
        found.append(ComposeService(name, str(image or "")))
    if not found:
        raise ConfigError("the app's compose project has no services")
    return tuple(found)


def postgres_service_of(spec: OverrideSpec, services: tuple[ComposeService, ...]) -> str:
    """The trader's choice, else the one service whose image or name says postgres."""
    names = [s.name for s in services]
    if spec.postgres_service is not None:
        if spec.postgres_service not in names:
            raise ConfigError(f"the PostgreSQL service {spec.postgres_service!r} is not one of "
                              f"the app's services {names}",
                              "provision with --app-postgres-service NAME")
        return spec.postgres_service
    by_image = [s.name for s in services if "postgres" in s.image.rsplit("/", 1)[-1].lower()]
    by_name = [s.name for s in services if "postgres" in s.name.lower()]
    for matches in (by_image, by_name):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            break
    raise ConfigError(f"cannot tell which of the app's services {names} is its PostgreSQL",
                      "provision with --app-postgres-service NAME")


def render_compose_override(spec: OverrideSpec, services: tuple[ComposeService, ...]) -> str:
    """The production override the units pass after the app's own compose file: one entry
    per service the app really has (compose refuses a service with no image)."""
    postgres = postgres_service_of(spec, services)
    lines = [
        "# Production settings for the market app on the instance (rendered by market-sync).",
        "# PostgreSQL only on 127.0.0.1 with its data in a named volume; restarts; log",
        "# rotation; time for the collector to flush when it is stopped.",
        "x-market-sync: &production",
        "  restart: unless-stopped",
        f"  stop_grace_period: {spec.stop_grace_seconds}s",
        "  logging:",
        "    driver: json-file",
        "    options:",
        f"      max-size: {_q(LOG_MAX_SIZE)}",
        f"      max-file: {_q(str(LOG_MAX_FILES))}",
        "services:",
    ]
    for service in services:
        lines += [f"  {_q(service.name)}:", "    <<: *production"]
        if service.name == postgres:
            lines += [
                "    ports: !override",
                f"      - {_q(f'127.0.0.1:{spec.postgres_port}:5432')}",
                "    volumes:",
                f"      - {_q(f'pgdata:{spec.postgres_data_path}')}",
            ]
    lines += ["volumes:", "  pgdata: {}", ""]
    return "\n".join(lines)


def render_cloudwatch_config(settings: InstanceSettings) -> str:
    """The CloudWatch agent: the journal copy, the containers' logs, disk and memory use."""

    def logs(path: str, group: str, stream: str) -> dict[str, object]:
        return {"file_path": path, "log_group_name": group,
                "log_stream_name": "{instance_id}/" + stream,
                "retention_in_days": settings.log_retention_days, "timezone": "Local"}

    config = {
        "agent": {"metrics_collection_interval": 300, "run_as_user": "root"},
        "metrics": {
            "namespace": METRIC_NAMESPACE,
            "append_dimensions": {"InstanceId": "${aws:InstanceId}"},
            "aggregation_dimensions": [["InstanceId", "path"]],
            "metrics_collected": {
                "disk": {"measurement": ["used_percent"], "resources": ["/"],
                         "drop_device": True, "metrics_collection_interval": 300},
                "mem": {"measurement": ["mem_used_percent"]},
                "swap": {"measurement": ["swap_used_percent"]},
            },
        },
        "logs": {"logs_collected": {"files": {"collect_list": [
            logs(layout.JOURNAL_LOG, LOG_GROUP_INSTANCE, "journal"),
            logs("/var/log/cloud-init-output.log", LOG_GROUP_INSTANCE, "cloud-init"),
            logs("/var/lib/docker/containers/*/*-json.log", LOG_GROUP_APP, "containers"),
        ]}}},
    }
    return json.dumps(config, indent=2) + "\n"


def render_docker_daemon_json(settings: InstanceSettings) -> str:
    """Log rotation for every container, and time to stop them at shutdown."""
    config = {"log-driver": "json-file",
              "log-opts": {"max-size": LOG_MAX_SIZE, "max-file": str(LOG_MAX_FILES)},
              "shutdown-timeout": settings.stop_grace_seconds + 30}
    return json.dumps(config, indent=2) + "\n"


def render_logrotate() -> str:
    return (f"{layout.LOG_DIR}/*.log {{\n    daily\n    rotate 14\n    missingok\n"
            "    notifempty\n    compress\n    delaycompress\n    copytruncate\n}\n")


def render_setup_env(settings: InstanceSettings) -> str:
    """The inputs of market-sync-setup, as shell assignments."""
    enable = units_to_enable()
    start = [unit for unit in enable if unit.endswith(".timer")] + ["market-sync-journal.service"]
    values = {
        "DISTRO": settings.distro,
        "REGION": settings.region,
        "BUCKET": settings.bucket,
        "ENDPOINT_URL": settings.endpoint_url or "",
        "WHEELHOUSE_PREFIX": layout.WHEELHOUSE_PREFIX,
        "WHEELS": " ".join(settings.wheels),
        "AGENT_WHEEL_KEY": settings.agent_wheel_key,
        "APP_SOURCE": settings.app_source,
        "APP_GIT_REF": settings.app_git_ref,
        "APP_COMPOSE_FILE": settings.app_compose_file,
        "COMPOSE_VERSION": settings.compose_version,
        "UNITS_ENABLE": " ".join(enable),
        "UNITS_START": " ".join(start),
    }
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())
