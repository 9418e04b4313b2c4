"""The rendered cloud-init user-data: cloud-init's own schema, EC2's size limit, and the
files it writes (agent.toml, compose override, CloudWatch config, units)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from ec2.instance import layout
from ec2.instance.configs import render_compose_override
from ec2.instance.settings import InstanceSettings
from ec2.instance.units import render_units
from ec2.instance.userdata import USER_DATA_LIMIT, render_user_data
from shared.config import parse_config
from shared.errors import ConfigError
from tests.ec2.tools import cloud_init_schema_module

# cloud-init 22.4 calls jsonschema in a way newer jsonschema releases deprecate.
pytestmark = pytest.mark.filterwarnings("ignore:Passing a schema to Validator:DeprecationWarning")

TABLES = """
[[tables]]
name = "market.ticks"
key = ["instrument_token", "exchange_timestamp"]

[[tables]]
name = "market.instruments"
mode = "snapshot"
"""


def settings(distro: str = "al2023", **changes: Any) -> InstanceSettings:
    values: dict[str, Any] = dict(
        region="ap-south-1", bucket="market-data-asha", prefix="prod/",
        agent_wheel_key="artifacts/market_sync-0.1.0-py3-none-any.whl",
        app_source="s3://market-data-asha/artifacts/app.tar.gz",
        sns_topic_arn="arn:aws:sns:ap-south-1:123456789012:market-sync",
        distro=distro, tables_toml=TABLES,
    )
    values.update(changes)
    return InstanceSettings(**values)


def load(document: str) -> dict[str, Any]:
    assert document.startswith("#cloud-config\n")
    data = yaml.safe_load(document)
    assert isinstance(data, dict)
    return data


def written_files(document: str) -> dict[str, tuple[str, str]]:
    """path → (permissions, decoded text) of every write_files entry."""
    files = {}
    for item in load(document)["write_files"]:
        assert item["encoding"] == "gz+b64" and item["defer"] is True
        text = gzip.decompress(base64.b64decode(item["content"])).decode("utf-8")
        files[item["path"]] = (item["permissions"], text)
    return files


def _schema_keys(schema: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for definition in schema["$defs"].values():
        keys |= set(definition.get("properties", {}))
    return keys


@pytest.mark.parametrize("distro", ["al2023", "ubuntu2204"])
def test_user_data_passes_cloud_inits_own_schema(distro: str) -> None:
    schema_module: Any = cloud_init_schema_module()
    config = load(render_user_data(settings(distro)))
    schema = schema_module.get_schema()
    schema_module.validate_cloudconfig_schema(config, schema, strict=True)
    # cloud-init 22.4's schema allows unknown top-level keys; a typo must still fail here.
    assert set(config) <= _schema_keys(schema)


def test_the_schema_check_catches_a_bad_document() -> None:
    schema_module: Any = cloud_init_schema_module()
    config = load(render_user_data(settings()))
    config["write_files"][0]["permissions"] = 384  # an int, not the octal string
    with pytest.raises(schema_module.SchemaValidationError, match="permissions"):
        schema_module.validate_cloudconfig_schema(config, schema_module.get_schema(),
                                                  strict=True)


@pytest.mark.parametrize("distro", ["al2023", "ubuntu2204"])
def test_user_data_fits_ec2s_16_kb_limit_with_room(distro: str) -> None:
    document = render_user_data(settings(distro))
    assert len(document.encode()) <= USER_DATA_LIMIT
    assert len(document.encode()) <= USER_DATA_LIMIT - 2048, "keep 2 KB for bigger configs"


def test_user_data_too_big_is_a_clear_error() -> None:
    names = (hashlib.sha256(str(i).encode()).hexdigest()[:40] for i in range(300))
    huge = "".join(f'\n[[tables]]\nname = "s.t_{name}"\n' for name in names)
    with pytest.raises(ConfigError, match="16 KB"):
        render_user_data(settings(tables_toml=huge))


def test_rendering_twice_gives_the_same_bytes() -> None:
    assert render_user_data(settings()) == render_user_data(settings())


@pytest.mark.parametrize(("distro", "expected"), [
    ("al2023", {"docker", "postgresql15", "python3.11", "amazon-cloudwatch-agent", "awscli-2"}),
    ("ubuntu2204", {"docker.io", "postgresql-client", "python3.11-venv", "awscli"}),
])
def test_the_distros_packages(distro: str, expected: set[str]) -> None:
    config = load(render_user_data(settings(distro)))
    assert expected <= set(config["packages"])
    assert config["timezone"] == "Asia/Kolkata"
    assert config["swap"] == {"filename": "/swapfile", "size": 2 * 1024**3,
                              "maxsize": 2 * 1024**3}
    assert config["runcmd"] == [[layout.SETUP_SCRIPT]]


def test_every_unit_is_written_where_systemd_reads_it() -> None:
    files = written_files(render_user_data(settings()))
    for name, text in render_units(settings()).items():
        assert files[f"/etc/systemd/system/{name}"] == ("0644", text)
    assert files[layout.SETUP_SCRIPT][0] == "0755"


def test_agent_toml_is_private_and_parses_as_the_agents_config() -> None:
    permissions, text = written_files(render_user_data(settings()))[layout.AGENT_TOML]
    assert permissions == "0600"
    config = parse_config(text, Path(layout.AGENT_TOML))
    assert config.aws.bucket == "market-data-asha" and config.aws.prefix == "prod/"
    assert config.agent.sns_topic_arn == "arn:aws:sns:ap-south-1:123456789012:market-sync"
    assert config.agent.metric_namespace == "MarketSync"
    assert config.app.health_url == "http://127.0.0.1:8000/health"
    assert [str(t.name) for t in config.tables] == ["market.ticks", "market.instruments"]


def test_a_bad_tables_block_fails_at_render_time() -> None:
    with pytest.raises(ConfigError, match="mode"):
        render_user_data(settings(tables_toml='[[tables]]\nname = "a.b"\nmode = "merge"\n'))


def test_setup_env_is_private_and_quoted_for_the_shell() -> None:
    permissions, text = written_files(render_user_data(settings()))[layout.SETUP_ENV]
    assert permissions == "0600"
    assert "APP_SOURCE=s3://market-data-asha/artifacts/app.tar.gz\n" in text
    assert "UNITS_ENABLE='" in text and "market-sync-guard.service" in text


@pytest.mark.parametrize("field,value", [
    ("app_source", "ftp://example.com/app.tgz"),
    ("app_source", "https://x/app; rm -rf /"),
    ("postgres_service", "db; reboot"),
    ("region", "ap-south-1\nExecStart=/bin/sh"),
])
def test_values_that_would_break_a_unit_or_the_shell_are_refused(field: str, value: str) -> None:
    if field == "postgres_service":
        changes: dict[str, Any] = {"postgres_service": value, "app_services": (value, "api")}
    else:
        changes = {field: value}
    with pytest.raises(ConfigError):
        render_user_data(settings(**changes))


class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's !override/!reset tags, which replace instead of merging."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = (loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
             else loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
             else loader.construct_scalar(node))  # type: ignore[arg-type]
    return {"tag": node.tag, "value": value}


_ComposeLoader.add_constructor("!override", _tagged)
_ComposeLoader.add_constructor("!reset", _tagged)


def test_compose_override_keeps_postgres_local_and_the_data_in_a_named_volume() -> None:
    text = written_files(render_user_data(settings()))[layout.COMPOSE_OVERRIDE][1]
    assert text == render_compose_override(settings())
    data = yaml.load(text, Loader=_ComposeLoader)
    services = data["services"]
    assert set(services) == {"postgres", "collector", "api"}
    postgres = services["postgres"]
    assert postgres["ports"] == {"tag": "!override", "value": ["127.0.0.1:5432:5432"]}
    assert postgres["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    assert "pgdata" in data["volumes"]
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["stop_grace_period"] == "120s", name
        assert service["logging"] == {"driver": "json-file",
                                      "options": {"max-size": "10m", "max-file": "5"}}, name


def test_compose_override_follows_the_conninfo_port() -> None:
    text = render_compose_override(settings(
        database_conninfo="host=127.0.0.1 port=6543 dbname=market user=postgres"))
    data = yaml.load(text, Loader=_ComposeLoader)
    assert data["services"]["postgres"]["ports"]["value"] == ["127.0.0.1:6543:5432"]


def test_cloudwatch_config_ships_the_logs_and_disk_use() -> None:
    text = written_files(render_user_data(settings()))[layout.CLOUDWATCH_CONFIG][1]
    config = json.loads(text)
    metrics = config["metrics"]
    assert metrics["namespace"] == "MarketSync"
    assert metrics["append_dimensions"] == {"InstanceId": "${aws:InstanceId}"}
    assert metrics["metrics_collected"]["disk"]["measurement"] == ["used_percent"]
    assert metrics["metrics_collected"]["disk"]["resources"] == ["/"]
    files = {f["file_path"]: f for f in
             config["logs"]["logs_collected"]["files"]["collect_list"]}
    assert files[layout.JOURNAL_LOG]["log_group_name"] == "/market-sync/instance"
    assert "/var/lib/docker/containers/*/*-json.log" in files


def test_docker_rotates_every_containers_log() -> None:
    text = written_files(render_user_data(settings()))[layout.DOCKER_DAEMON_JSON][1]
    config = json.loads(text)
    assert config["log-opts"] == {"max-size": "10m", "max-file": "5"}
    assert config["shutdown-timeout"] >= 120


def test_the_timezone_file_layout_is_consistent() -> None:
    text = written_files(render_user_data(settings()))[layout.LOGROTATE][1]
    assert text.startswith(f"{layout.LOG_DIR}/*.log {{")
    assert tomllib.loads(written_files(render_user_data(settings()))[layout.AGENT_TOML][1])
