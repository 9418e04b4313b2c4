"""The settings bundle (S3 artifacts/instance-settings.tar.gz): every instance file the
bootstrap unpacks. agent.toml is checked property-style: whatever [[tables]] a laptop
config validates with, the agent's own loader reads the same tables back."""

from __future__ import annotations

import io
import json
import random
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml

from ec2.instance import layout
from ec2.instance.configs import (
    ComposeService,
    OverrideSpec,
    app_services,
    postgres_service_of,
    render_agent_toml,
    render_compose_override,
)
from ec2.instance.settings import InstanceSettings, settings_from_json, settings_to_json
from ec2.instance.units import render_units
from ec2.instance.userdata import render_bundle
from shared.config import parse_config
from shared.errors import ConfigError
from shared.tables import MergeMode, QualifiedName, TableSpec

SETTINGS = InstanceSettings(
    region="ap-south-1", bucket="market-data-asha", prefix="prod/",
    agent_wheel_key="artifacts/market_sync-0.1.0-py3-none-any.whl",
    app_source="s3://market-data-asha/artifacts/app.tar.gz",
    sns_topic_arn="arn:aws:sns:ap-south-1:123456789012:market-sync",
    tables=(TableSpec(QualifiedName("market", "ticks"), key=("instrument_token", "ts")),
            TableSpec(QualifiedName("market", "instruments"), MergeMode.SNAPSHOT, (), None)),
    endpoint_url="http://127.0.0.1:5000", stack_name="asha",
)


def bundle_files(data: bytes) -> dict[str, tuple[int, str]]:
    """/path → (mode, text) of every member."""
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            assert member.isfile() and member.uid == 0 and not member.name.startswith("/")
            handle = tar.extractfile(member)
            assert handle is not None
            files["/" + member.name] = (member.mode, handle.read().decode())
    return files


# -- agent.toml --------------------------------------------------------------------------------
_NAME_CHARS = "abcxyz_09AZ $.\"#[]'=é"


def _random_name(rng: random.Random) -> str:
    return "".join(rng.choice(_NAME_CHARS) for _ in range(rng.randint(1, 8)))


def _random_table(rng: random.Random) -> dict[str, Any]:
    schema, table = _random_name(rng), _random_name(rng)
    quote = rng.random() < 0.7
    name = (f'"{schema.replace(chr(34), chr(34) * 2)}"."{table.replace(chr(34), chr(34) * 2)}"'
            if quote else f"{schema}.{table}")
    entry: dict[str, Any] = {"name": name}
    if rng.random() < 0.8:
        entry["mode"] = rng.choice(["upsert", "replace-range", "snapshot", "merge"])
    if rng.random() < 0.6:
        entry["key"] = [_random_name(rng) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.5:
        entry["watermark"] = _random_name(rng)
    return entry


def _laptop_config(tables: list[dict[str, Any]]) -> str:
    return tomli_w.dumps({"aws": {"region": "ap-south-1", "bucket": "data-b"},
                          "database": {"conninfo": "dbname=market"}, "tables": tables})


def test_agent_toml_carries_every_table_config_the_laptop_accepts() -> None:
    rng = random.Random(20261128)
    accepted = 0
    for _ in range(400):
        text = _laptop_config([_random_table(rng) for _ in range(rng.randint(1, 4))])
        try:
            laptop = parse_config(text, Path("config.toml"))
        except ConfigError:
            continue
        accepted += 1
        settings = InstanceSettings(**{**SETTINGS.__dict__, "tables": laptop.tables})
        agent = parse_config(render_agent_toml(settings), Path(layout.AGENT_TOML))
        assert agent.tables == laptop.tables, text
        # and the record deploy-agent reads back from S3 keeps them too
        assert settings_from_json(json.loads(json.dumps(settings_to_json(settings)))) \
            == settings
    assert accepted >= 50, "the generator must produce mostly valid configs"


def test_the_generator_also_produces_configs_the_laptop_refuses() -> None:
    rng = random.Random(20261128)
    refused = 0
    for _ in range(400):
        try:
            parse_config(_laptop_config([_random_table(rng)]), Path("config.toml"))
        except ConfigError:
            refused += 1
    assert refused > 20


def test_agent_toml_in_the_bundle_is_private_and_complete() -> None:
    mode, text = bundle_files(render_bundle(SETTINGS))[layout.AGENT_TOML]
    assert mode == 0o600
    config = parse_config(text, Path(layout.AGENT_TOML))
    assert config.aws.bucket == "market-data-asha" and config.aws.prefix == "prod/"
    assert config.aws.endpoint_url == "http://127.0.0.1:5000"
    assert config.agent.ssm_path == "/market-sync/asha"
    assert config.agent.sns_topic_arn == "arn:aws:sns:ap-south-1:123456789012:market-sync"
    assert config.app.health_url == "http://127.0.0.1:8000/health"
    assert [str(t.name) for t in config.tables] == ["market.ticks", "market.instruments"]
    assert "password" not in text


# -- the rest of the bundle ----------------------------------------------------------------------
def test_the_bundle_holds_every_unit_the_setup_script_and_its_inputs() -> None:
    files = bundle_files(render_bundle(SETTINGS))
    for name, text in render_units(SETTINGS).items():
        assert files[f"{layout.UNIT_DIR}/{name}"] == (0o644, text)
    assert files[layout.SETUP_SCRIPT][0] == 0o755
    mode, env = files[layout.SETUP_ENV]
    assert mode == 0o600
    assert "ENDPOINT_URL=http://127.0.0.1:5000\n" in env
    assert f"WHEELHOUSE_PREFIX={layout.WHEELHOUSE_PREFIX}\n" in env
    assert "market-sync-guard-periodic.timer" in env
    spec = OverrideSpec.from_json(files[layout.OVERRIDE_SPEC][1])
    assert spec == OverrideSpec(None, 5432, "/var/lib/postgresql/data", 120)
    assert json.loads(files[layout.DOCKER_DAEMON_JSON][1])["log-opts"] == {
        "max-size": "10m", "max-file": "5"}
    metrics = json.loads(files[layout.CLOUDWATCH_CONFIG][1])["metrics"]
    assert metrics["namespace"] == "MarketSync"
    assert files[layout.LOGROTATE][1].startswith(f"{layout.LOG_DIR}/*.log {{")
    assert tomllib.loads(files[layout.AGENT_TOML][1])


@pytest.mark.parametrize(("field", "value"), [
    ("app_source", "ftp://example.com/app.tgz"),
    ("app_source", "https://x/app; rm -rf /"),
    ("postgres_service", "db; reboot"),
    ("region", "ap-south-1\nExecStart=/bin/sh"),
])
def test_values_that_would_break_a_unit_or_the_shell_are_refused(field: str, value: str) -> None:
    with pytest.raises(ConfigError):
        render_bundle(InstanceSettings(**{**SETTINGS.__dict__, field: value}))


# -- the compose override (rendered on the instance from the app's real services) -----------------
class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's !override/!reset tags, which replace instead of merging."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = (loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
             else loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
             else loader.construct_scalar(node))  # type: ignore[arg-type]
    return {"tag": node.tag, "value": value}


_ComposeLoader.add_constructor("!override", _tagged)
_ComposeLoader.add_constructor("!reset", _tagged)

COMPOSE_JSON = json.dumps({"name": "market-app", "services": {
    "db": {"image": "docker.io/library/postgres:16", "ports": [{"target": 5432}]},
    "ticker": {"build": {"context": "."}, "image": "market-app-ticker"},
    "web": {"build": {"context": "web"}},
}})


def test_the_override_names_exactly_the_apps_services() -> None:
    spec = OverrideSpec.of(SETTINGS)
    data = yaml.load(render_compose_override(spec, app_services(COMPOSE_JSON)),
                     Loader=_ComposeLoader)
    services = data["services"]
    assert set(services) == {"db", "ticker", "web"}  # no service the app lacks
    assert services["db"]["ports"] == {"tag": "!override", "value": ["127.0.0.1:5432:5432"]}
    assert services["db"]["volumes"] == ["pgdata:/var/lib/postgresql/data"]
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["stop_grace_period"] == "120s", name
        assert "image" not in service and "build" not in service, name


def test_the_postgres_service_is_the_traders_choice_or_detected() -> None:
    services = app_services(COMPOSE_JSON)
    assert postgres_service_of(OverrideSpec(None, 5432, "/d", 30), services) == "db"
    assert postgres_service_of(OverrideSpec("ticker", 5432, "/d", 30), services) == "ticker"
    with pytest.raises(ConfigError, match="not one of the app's services"):
        postgres_service_of(OverrideSpec("postgres", 5432, "/d", 30), services)
    by_name = (ComposeService("postgres", "local/pg-debian"), ComposeService("collector"))
    assert postgres_service_of(OverrideSpec(None, 5432, "/d", 30), by_name) == "postgres"
    with pytest.raises(ConfigError, match="--app-postgres-service"):
        postgres_service_of(OverrideSpec(None, 5432, "/d", 30),
                            (ComposeService("a"), ComposeService("b")))


def test_the_override_follows_the_conninfo_port() -> None:
    settings = InstanceSettings(**{**SETTINGS.__dict__, "database_conninfo":
                                   "host=127.0.0.1 port=6543 dbname=market user=postgres"})
    data = yaml.load(render_compose_override(OverrideSpec.of(settings),
                                             app_services(COMPOSE_JSON)), Loader=_ComposeLoader)
    assert data["services"]["db"]["ports"]["value"] == ["127.0.0.1:6543:5432"]


@pytest.mark.parametrize("text", ["", "{}", '{"services": {}}', '{"services": {"a; b": {}}}'])
def test_a_bad_compose_listing_is_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError):
        app_services(text)
