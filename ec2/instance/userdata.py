"""The cloud-init user-data of the instance, and the settings bundle its bootstrap fetches.

The user-data is a small ``#cloud-config`` that never changes between
market-sync versions or table sets (:class:`BootSettings` only): it sets the
timezone and swap, writes the bootstrap script, its inputs and the first-boot
unit, and starts that unit. The bootstrap installs the distro's missing
packages, fetches the *settings bundle* from S3 (every other instance file,
rendered here from :class:`InstanceSettings`) and runs ``market-sync-setup``.
``deploy-agent`` replaces the bundle and re-runs the bootstrap; the user-data,
and so the running instance, stay untouched by a re-provision.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import shlex
import tarfile
from dataclasses import dataclass
from importlib import resources

from ec2.instance import layout
from ec2.instance.configs import (
    OverrideSpec,
    render_agent_toml,
    render_cloudwatch_config,
    render_docker_daemon_json,
    render_logrotate,
    render_setup_env,
)
from ec2.instance.schedule import TIMEZONE
from ec2.instance.settings import DISTROS, BootSettings, InstanceSettings
from ec2.instance.units import render_units
from shared.errors import ConfigError

USER_DATA_LIMIT = 16 * 1024  # EC2's limit on user-data, before base64

# What the instance needs from its distribution. The bootstrap installs only what is
# missing, so an image that has them all needs no package repository.
PACKAGES: dict[str, list[str]] = {
    "al2023": ["docker", "python3.11", "python3.11-pip", "git", "tar", "awscli-2",
               "amazon-cloudwatch-agent", "logrotate"],
    "ubuntu2204": ["docker.io", "python3.11", "python3.11-venv", "git", "curl", "awscli",
                   "logrotate", "ca-certificates"],
    "debian12": ["docker.io", "python3.11", "python3.11-venv", "git", "curl", "awscli",
                 "logrotate", "ca-certificates"],
}


@dataclass(frozen=True)
class InstanceFile:
    path: str
    content: str
    permissions: str = "0644"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REGION = (r"^[a-z]{2}(-[a-z]+)+-\d$", "an AWS region like ap-south-1")
_BUCKET = (r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "an S3 bucket name")
_CHECKS: list[tuple[str, str, str]] = [
    ("region", *_REGION),
    ("bucket", *_BUCKET),
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
_BOOT_CHECKS: list[tuple[str, str, str]] = [
    ("region", *_REGION),
    ("bucket", *_BUCKET),
    ("stack_name", r"^[A-Za-z][A-Za-z0-9-]{0,63}$", "a stack name"),
    ("endpoint_url", r"^(https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?)?$",
     "an http(s) endpoint URL"),
    ("sns_topic_arn", r"^(arn:[a-z-]+:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+)?$",
     "an SNS topic ARN"),
]


def _check(record: object, checks: list[tuple[str, str, str]]) -> None:
    for name, pattern, what in checks:
        value = getattr(record, name) or ""
        if not re.match(pattern, value):
            raise ConfigError(f"instance setting {name}={value!r} is not {what}")


def validate_boot(boot: BootSettings) -> None:
    """Refuse values that would break the shell or YAML, before rendering."""
    _check(boot, _BOOT_CHECKS)
    if boot.distro not in DISTROS:
        raise ConfigError(f"distro {boot.distro!r} is not supported",
                          f"choose one of {', '.join(DISTROS)}")
    if not 1 <= boot.swap_gb <= 16:
        raise ConfigError(f"swap_gb={boot.swap_gb} is outside 1..16")


def validate(settings: InstanceSettings) -> None:
    """Refuse values that would break a unit file, the shell or YAML, before rendering."""
    validate_boot(settings.boot())
    _check(settings, _CHECKS)
    if settings.postgres_service is not None and not _NAME.match(settings.postgres_service):
        raise ConfigError(f"compose service name {settings.postgres_service!r} is not a "
                          "plain name")
    for wheel in settings.wheels:
        if not re.match(r"^[A-Za-z0-9_.+!-]+\.whl$", wheel):
            raise ConfigError(f"{wheel!r} is not a wheel file name")
    if not 1 <= settings.app_port <= 65535:
        raise ConfigError(f"app_port={settings.app_port} is not a TCP port")
    if settings.stop_grace_seconds < 10:
        raise ConfigError("stop_grace_seconds below 10 leaves the collector no time to flush")


# -- the settings bundle (S3: artifacts/instance-settings.tar.gz) --------------------------------
def instance_files(settings: InstanceSettings) -> list[InstanceFile]:
    """Every file of the settings bundle, in order."""
    validate(settings)
    files = [InstanceFile(f"{layout.UNIT_DIR}/{name}", text)
             for name, text in render_units(settings).items()]
    setup = resources.files("ec2.instance").joinpath("files/scripts/market-sync-setup")
    files += [
        InstanceFile(layout.AGENT_TOML, render_agent_toml(settings), "0600"),
        InstanceFile(layout.SETUP_ENV, render_setup_env(settings), "0600"),
        InstanceFile(layout.OVERRIDE_SPEC, OverrideSpec.of(settings).to_json()),
        InstanceFile(layout.CLOUDWATCH_CONFIG, render_cloudwatch_config(settings)),
        InstanceFile(layout.DOCKER_DAEMON_JSON, render_docker_daemon_json(settings)),
        InstanceFile(layout.LOGROTATE, render_logrotate()),
        InstanceFile(layout.SETUP_SCRIPT, setup.read_text("utf-8"), "0755"),
    ]
    return files


def render_bundle(settings: InstanceSettings) -> bytes:
    """The settings bundle: a tar.gz of :func:`instance_files`, paths relative to ``/``.
    The same settings give the same bytes (fixed times and owners)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in instance_files(settings):
            data = item.content.encode("utf-8")
            info = tarfile.TarInfo(item.path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), int(item.permissions, 8), 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


# -- the user-data -------------------------------------------------------------------------------
def render_bootstrap_env(boot: BootSettings) -> str:
    """The bootstrap's inputs, as shell assignments."""
    values = {
        "REGION": boot.region,
        "BUCKET": boot.bucket,
        "STACK": boot.stack_name,
        "DISTRO": boot.distro,
        "ENDPOINT_URL": boot.endpoint_url or "",
        "TOPIC_ARN": boot.sns_topic_arn or "",
        "PACKAGES": " ".join(PACKAGES[boot.distro]),
        "SETTINGS_KEY": layout.SETTINGS_KEY,
    }
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def boot_files(boot: BootSettings) -> list[InstanceFile]:
    """The files the user-data itself writes."""
    validate_boot(boot)
    folder = resources.files("ec2.instance").joinpath("files/boot")
    return [
        InstanceFile(layout.BOOTSTRAP_ENV, render_bootstrap_env(boot), "0600"),
        InstanceFile(layout.BOOTSTRAP_SCRIPT,
                     folder.joinpath("market-sync-bootstrap").read_text("utf-8"), "0755"),
        InstanceFile(f"{layout.UNIT_DIR}/{layout.FIRSTBOOT_UNIT}",
                     folder.joinpath(layout.FIRSTBOOT_UNIT).read_text("utf-8")),
    ]


def _packed(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode("utf-8"), mtime=0)).decode("ascii")


def cloud_config(boot: BootSettings) -> dict[str, object]:
    """The cloud-config as data (what :func:`render_user_data` serialises)."""
    return {
        "timezone": TIMEZONE,
        "swap": {"filename": layout.SWAP_FILE, "size": boot.swap_gb * 1024**3,
                 "maxsize": boot.swap_gb * 1024**3},
        # owner defaults to root:root
        "write_files": [
            {"path": item.path, "permissions": item.permissions, "encoding": "gz+b64",
             "content": _packed(item.content)}
            for item in boot_files(boot)
        ],
        # The first-boot unit runs now and, until it has succeeded once, at every boot.
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", layout.FIRSTBOOT_UNIT],
            ["systemctl", "start", layout.FIRSTBOOT_UNIT],
        ],
    }


def render_user_data(boot: BootSettings) -> str:
    """The complete ``#cloud-config`` document: the same bytes for the same stack, whatever
    the market-sync version or the trader's tables."""
    config = cloud_config(boot)
    files = config.pop("write_files")
    assert isinstance(files, list)
    body = json.dumps(config, separators=(",", ":"))[:-1]
    body += ',\n"write_files":[\n' + ",\n".join(json.dumps(f, separators=(",", ":"))
                                                for f in files) + "]}\n"
    document = (f"#cloud-config\n# market-sync instance ({boot.distro}): "
                f"rendered by market-sync, not edited by hand.\n{body}")
    size = len(document.encode("utf-8"))
    if size > USER_DATA_LIMIT:
        raise ConfigError(f"the rendered user-data is {size} bytes, over EC2's 16 KB")
    return document
