"""The configuration files the instance gets, rendered from :class:`InstanceSettings`.

``agent.toml`` (the agent's config, same format as the laptop's), the
production compose override, the CloudWatch agent config, Docker's
``daemon.json``, logrotate, and ``setup.env`` (the inputs of market-sync-setup).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import tomli_w

from ec2.instance import layout
from ec2.instance.settings import InstanceSettings
from ec2.instance.units import units_to_enable
from shared.config import parse_config
from shared.errors import ConfigError

METRIC_NAMESPACE = "MarketSync"
LOG_GROUP_INSTANCE = "/market-sync/instance"
LOG_GROUP_APP = "/market-sync/app"
LOG_MAX_SIZE = "10m"
LOG_MAX_FILES = 5


def health_url(settings: InstanceSettings) -> str:
    return f"http://127.0.0.1:{settings.app_port}{settings.health_path}"


def postgres_port(settings: InstanceSettings) -> int:
    match = re.search(r"(?:^|\s)port\s*=\s*(\d+)", settings.database_conninfo)
    return int(match.group(1)) if match else 5432


def render_agent_toml(settings: InstanceSettings) -> str:
    """/etc/market-sync/agent.toml; checked by the same parser the agent uses."""
    agent: dict[str, object] = {
        "metric_namespace": METRIC_NAMESPACE,
        "power_off_after_backup": settings.power_off_after_backup,
    }
    if settings.sns_topic_arn:
        agent["sns_topic_arn"] = settings.sns_topic_arn
    document = {
        "aws": {"region": settings.region, "bucket": settings.bucket, "prefix": settings.prefix},
        "database": {"conninfo": settings.database_conninfo},
        "app": {"health_url": health_url(settings), "port": settings.app_port},
        "agent": agent,
    }
    text = ("# market-sync agent on the instance. Rendered by market-sync; "
            "`market-sync deploy-agent` rewrites it.\n" + tomli_w.dumps(document))
    if settings.tables_toml.strip():
        text += "\n" + settings.tables_toml.strip() + "\n"
    parse_config(text, Path(layout.AGENT_TOML))  # a bad [[tables]] block fails here, not at 16:00
    return text


def _q(value: str) -> str:
    """A double-quoted YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def render_compose_override(settings: InstanceSettings) -> str:
    """The production override the units pass after the app's own compose file."""
    if settings.postgres_service not in settings.app_services:
        raise ConfigError(f"postgres_service {settings.postgres_service!r} is not one of the "
                          f"app's services {list(settings.app_services)}")
    port = postgres_port(settings)
    lines = [
        "# Production settings for the market app on the instance (rendered by market-sync).",
        "# PostgreSQL only on 127.0.0.1 with its data in a named volume; restarts; log",
        "# rotation; time for the collector to flush when it is stopped.",
        "x-market-sync: &production",
        "  restart: unless-stopped",
        f"  stop_grace_period: {settings.stop_grace_seconds}s",
        "  logging:",
        "    driver: json-file",
        "    options:",
        f"      max-size: {_q(LOG_MAX_SIZE)}",
        f"      max-file: {_q(str(LOG_MAX_FILES))}",
        "services:",
    ]
    for service in settings.app_services:
        lines += [f"  {_q(service)}:", "    <<: *production"]
        if service == settings.postgres_service:
            lines += [
                "    ports: !override",
                f"      - {_q(f'127.0.0.1:{port}:5432')}",
                "    volumes:",
                f"      - {_q(f'pgdata:{settings.postgres_data_path}')}",
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
        "AGENT_WHEEL_KEY": settings.agent_wheel_key,
        "APP_SOURCE": settings.app_source,
        "APP_GIT_REF": settings.app_git_ref,
        "APP_COMPOSE_FILE": settings.app_compose_file,
        "COMPOSE_VERSION": settings.compose_version,
        "UNITS_ENABLE": " ".join(enable),
        "UNITS_START": " ".join(start),
    }
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())
