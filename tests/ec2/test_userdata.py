"""The rendered cloud-init user-data (the bootstrap): cloud-init's own schema, EC2's size
limit, the files it writes, and that it never changes with the market-sync version or the
trader's tables."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ec2.instance import layout
from ec2.instance.settings import BootSettings, InstanceSettings
from ec2.instance.userdata import PACKAGES, USER_DATA_LIMIT, render_bundle, render_user_data
from shared.errors import ConfigError
from shared.tables import MergeMode, QualifiedName, TableSpec
from tests.ec2.tools import REPO, cloud_init_schema_module, require_tool

# cloud-init 22.4 calls jsonschema in a way newer jsonschema releases deprecate.
pytestmark = pytest.mark.filterwarnings("ignore:Passing a schema to Validator:DeprecationWarning")

DISTROS = ["al2023", "ubuntu2204", "debian12"]
BOOTSTRAP = REPO / "ec2" / "instance" / "files" / "boot" / "market-sync-bootstrap"


def boot(distro: str = "al2023", **changes: Any) -> BootSettings:
    values: dict[str, Any] = dict(
        region="ap-south-1", bucket="market-data-asha", stack_name="market-sync",
        distro=distro, sns_topic_arn="arn:aws:sns:ap-south-1:123456789012:market-sync-alerts")
    values.update(changes)
    return BootSettings(**values)


def load(document: str) -> dict[str, Any]:
    assert document.startswith("#cloud-config\n")
    data = yaml.safe_load(document)
    assert isinstance(data, dict)
    return data


def written_files(document: str) -> dict[str, tuple[str, str]]:
    """path → (permissions, decoded text) of every write_files entry."""
    files = {}
    for item in load(document)["write_files"]:
        assert item["encoding"] == "gz+b64"
        text = gzip.decompress(base64.b64decode(item["content"])).decode("utf-8")
        files[item["path"]] = (item["permissions"], text)
    return files


def _schema_keys(schema: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for definition in schema["$defs"].values():
        keys |= set(definition.get("properties", {}))
    return keys


@pytest.mark.parametrize("distro", DISTROS)
def test_user_data_passes_cloud_inits_own_schema(distro: str) -> None:
    schema_module: Any = cloud_init_schema_module()
    config = load(render_user_data(boot(distro)))
    schema = schema_module.get_schema()
    schema_module.validate_cloudconfig_schema(config, schema, strict=True)
    # cloud-init 22.4's schema allows unknown top-level keys; a typo must still fail here.
    assert set(config) <= _schema_keys(schema)


def test_the_schema_check_catches_a_bad_document() -> None:
    schema_module: Any = cloud_init_schema_module()
    config = load(render_user_data(boot()))
    config["write_files"][0]["permissions"] = 384  # an int, not the octal string
    with pytest.raises(schema_module.SchemaValidationError, match="permissions"):
        schema_module.validate_cloudconfig_schema(config, schema_module.get_schema(),
                                                  strict=True)


@pytest.mark.parametrize("distro", DISTROS)
def test_user_data_is_small(distro: str) -> None:
    assert len(render_user_data(boot(distro)).encode()) <= USER_DATA_LIMIT // 2


def _settings(version: str, tables: tuple[TableSpec, ...], **changes: Any) -> InstanceSettings:
    return InstanceSettings(
        region="ap-south-1", bucket="market-data-asha", prefix="",
        agent_wheel_key=f"artifacts/market_sync-{version}-py3-none-any.whl",
        app_source="s3://market-data-asha/artifacts/app.tar.gz",
        sns_topic_arn="arn:aws:sns:ap-south-1:123456789012:market-sync-alerts",
        distro="debian12", tables=tables, **changes)


TICKS = TableSpec(QualifiedName("market", "ticks"), MergeMode.UPSERT,
                  ("instrument_token", "exchange_timestamp"))
INSTRUMENTS = TableSpec(QualifiedName("market", "instruments"), MergeMode.SNAPSHOT, (), None)


def test_user_data_is_the_same_bytes_across_versions_and_table_sets() -> None:
    """A re-provision with a new market-sync or new tables must not touch the user-data
    (CloudFormation stops and starts an instance whose user-data changes)."""
    old = _settings("0.1.0", (TICKS,))
    new = _settings("0.2.0", (TICKS, INSTRUMENTS), database_conninfo="host=db user=u",
                    postgres_service="db", power_off_after_backup=False)
    assert render_user_data(old.boot()) == render_user_data(new.boot())
    assert render_bundle(old) != render_bundle(new)  # what changes goes to S3 instead
    assert render_bundle(new) == render_bundle(new)  # and is deterministic


def test_the_stack_and_endpoint_do_change_it() -> None:
    assert render_user_data(boot()) != render_user_data(boot(stack_name="other"))
    assert render_user_data(boot()) != render_user_data(
        boot(endpoint_url="http://127.0.0.1:5000"))


@pytest.mark.parametrize("distro", DISTROS)
def test_the_bootstrap_is_written_and_run_by_its_first_boot_unit(distro: str) -> None:
    document = render_user_data(boot(distro))
    config = load(document)
    files = written_files(document)
    assert files[layout.BOOTSTRAP_SCRIPT] == ("0755", BOOTSTRAP.read_text())
    unit = files[f"{layout.UNIT_DIR}/{layout.FIRSTBOOT_UNIT}"][1]
    assert f"ConditionPathExists=!{layout.SETUP_DONE}" in unit
    assert f"ExecStart={layout.BOOTSTRAP_SCRIPT}" in unit
    assert "WantedBy=multi-user.target" in unit  # every boot until it has succeeded once
    assert config["runcmd"] == [["systemctl", "daemon-reload"],
                                ["systemctl", "enable", layout.FIRSTBOOT_UNIT],
                                ["systemctl", "start", layout.FIRSTBOOT_UNIT]]
    assert config["timezone"] == "Asia/Kolkata"
    assert config["swap"]["filename"] == "/swapfile"
    assert "packages" not in config and "package_update" not in config  # no internet needed


def test_the_bootstrap_env_names_the_stack_the_endpoint_and_the_packages() -> None:
    document = render_user_data(boot("debian12", endpoint_url="http://127.0.0.1:5000"))
    permissions, text = written_files(document)[layout.BOOTSTRAP_ENV]
    assert permissions == "0600"
    env = dict(line.split("=", 1) for line in text.splitlines())
    assert env["ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env["STACK"] == "market-sync" and env["BUCKET"] == "market-data-asha"
    assert env["SETTINGS_KEY"] == layout.SETTINGS_KEY
    assert env["PACKAGES"] == "'" + " ".join(PACKAGES["debian12"]) + "'"
    assert {"docker.io", "python3.11-venv", "awscli"} <= set(PACKAGES["debian12"])


def test_the_first_boot_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path
    for path, (permissions, text) in written_files(render_user_data(boot())).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(int(permissions, 8))
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    done = subprocess.run([require_tool("systemd-analyze"), "verify", "--man=no",
                           f"--root={root}", layout.FIRSTBOOT_UNIT],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


@pytest.mark.parametrize(("field", "value"), [
    ("region", "ap-south-1\nExecStart=/bin/sh"),
    ("stack_name", "market sync"),
    ("endpoint_url", "http://127.0.0.1:5000; reboot"),
    ("bucket", "Bad_Bucket"),
])
def test_values_that_would_break_the_shell_are_refused(field: str, value: str) -> None:
    with pytest.raises(ConfigError):
        render_user_data(dataclasses.replace(boot(), **{field: value}))
