"""The cloud-init user-data of the instance: one ``#cloud-config`` document.

cloud-init sets the timezone, makes the swap file, installs the distro's
packages and writes every file (each gzip+base64, which keeps the document
well under EC2's 16 KB); then ``market-sync-setup`` (runcmd) installs the
compose plugin, the agent and the app and enables the units. The document is
JSON after its header line, which YAML reads as it is.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from dataclasses import dataclass
from importlib import resources

from ec2.instance import layout
from ec2.instance.configs import (
    render_agent_toml,
    render_cloudwatch_config,
    render_compose_override,
    render_docker_daemon_json,
    render_logrotate,
    render_setup_env,
)
from ec2.instance.schedule import TIMEZONE
from ec2.instance.settings import InstanceSettings
from ec2.instance.units import render_units
from shared.errors import ConfigError

USER_DATA_LIMIT = 16 * 1024  # EC2's limit on user-data, before base64

PACKAGES: dict[str, list[str]] = {
    "al2023": ["docker", "postgresql15", "python3.11", "python3.11-pip", "git", "tar",
               "awscli-2", "amazon-cloudwatch-agent", "logrotate"],
    "ubuntu2204": ["docker.io", "postgresql-client", "python3.11", "python3.11-venv", "git",
                   "curl", "awscli", "logrotate", "ca-certificates"],
}


@dataclass(frozen=True)
class InstanceFile:
    path: str
    content: str
    permissions: str = "0644"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHECKS: list[tuple[str, str, str]] = [
    ("region", r"^[a-z]{2}(-[a-z]+)+-\d$", "an AWS region like ap-south-1"),
    ("bucket", r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "an S3 bucket name"),
    ("prefix", r"^([A-Za-z0-9!_.*'()/-]+/)?$", '"" or a key prefix ending in /'),
    ("agent_wheel_key", r"^[A-Za-z0-9!_.*'()/+-]+\.whl$", "an S3 key ending in .whl"),
    ("app_source", r"^(s3://[a-z0-9][a-z0-9.-]+/\S+\.(tar\.gz|tgz)|https://\S+)$",
     "s3://bucket/key.tar.gz or an https:// git URL"),
    ("app_git_ref", r"^[A-Za-z0-9._/-]*$", "a branch or tag name"),
    ("app_compose_file", r"^[A-Za-z0-9._-]+\.ya?ml$", "a file name like docker-compose.yml"),
    ("compose_version", r"^v\d+\.\d+\.\d+$", "a release like v2.29.7"),
    ("health_path", r"^/[A-Za-z0-9._~/-]*$", "a URL path like /health"),
    ("postgres_data_path", r"^/[A-Za-z0-9._/-]+$", "an absolute path in the container"),
]


def validate(settings: InstanceSettings) -> None:
    """Refuse values that would break a unit file, the shell or YAML, before rendering."""
    for field, pattern, what in _CHECKS:
        value = getattr(settings, field)
        if not re.match(pattern, value):
            raise ConfigError(f"instance setting {field}={value!r} is not {what}")
    if settings.distro not in PACKAGES:
        raise ConfigError(f"distro {settings.distro!r} is not supported",
                          f"choose one of {', '.join(PACKAGES)}")
    for service in settings.app_services:
        if not _NAME.match(service):
            raise ConfigError(f"compose service name {service!r} is not a plain name")
    if not 1 <= settings.swap_gb <= 16:
        raise ConfigError(f"swap_gb={settings.swap_gb} is outside 1..16")
    if not 1 <= settings.app_port <= 65535:
        raise ConfigError(f"app_port={settings.app_port} is not a TCP port")
    if settings.stop_grace_seconds < 10:
        raise ConfigError("stop_grace_seconds below 10 leaves the collector no time to flush")


def instance_files(settings: InstanceSettings) -> list[InstanceFile]:
    """Every file the user-data writes, in order."""
    validate(settings)
    files = [InstanceFile(f"{layout.UNIT_DIR}/{name}", text)
             for name, text in render_units(settings).items()]
    setup = resources.files("ec2.instance").joinpath("files/scripts/market-sync-setup")
    files += [
        InstanceFile(layout.AGENT_TOML, render_agent_toml(settings), "0600"),
        InstanceFile(layout.SETUP_ENV, render_setup_env(settings), "0600"),
        InstanceFile(layout.COMPOSE_OVERRIDE, render_compose_override(settings)),
        InstanceFile(layout.CLOUDWATCH_CONFIG, render_cloudwatch_config(settings)),
        InstanceFile(layout.DOCKER_DAEMON_JSON, render_docker_daemon_json(settings)),
        InstanceFile(layout.LOGROTATE, render_logrotate()),
        InstanceFile(layout.SETUP_SCRIPT, setup.read_text("utf-8"), "0755"),
    ]
    return files


def _packed(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")


def cloud_config(settings: InstanceSettings) -> dict[str, object]:
    """The cloud-config as data (what :func:`render_user_data` serialises)."""
    return {
        "timezone": TIMEZONE,
        "swap": {"filename": layout.SWAP_FILE, "size": settings.swap_gb * 1024**3,
                 "maxsize": settings.swap_gb * 1024**3},
        "package_update": True,
        "package_upgrade": False,
        "packages": PACKAGES[settings.distro],
        # owner defaults to root:root; each file is written after the packages (defer)
        "write_files": [
            {"path": item.path, "permissions": item.permissions, "encoding": "gz+b64",
             "content": _packed(item.content), "defer": True}
            for item in instance_files(settings)
        ],
        "runcmd": [[layout.SETUP_SCRIPT]],
    }


def render_user_data(settings: InstanceSettings) -> str:
    """The complete ``#cloud-config`` document for ``settings.distro``."""
    config = cloud_config(settings)
    files = config.pop("write_files")
    assert isinstance(files, list)
    body = json.dumps(config, separators=(",", ":"))[:-1]
    body += ',\n"write_files":[\n' + ",\n".join(json.dumps(f, separators=(",", ":"))
                                                for f in files) + "]}\n"
    document = (f"#cloud-config\n# market-sync instance ({settings.distro}): "
                f"rendered by market-sync, not edited by hand.\n{body}")
    size = len(document.encode("utf-8"))
    if size > USER_DATA_LIMIT:
        raise ConfigError(f"the rendered user-data is {size} bytes, over EC2's 16 KB",
                          "shorten the [[tables]] configuration")
    return document
