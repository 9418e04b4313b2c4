"""The two places that rewrite part of a config file keep what the trader wrote by hand:
comments, layout, other sections; and refuse a file they cannot read, leaving it as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.ui.configfile import SettingsValues, save_settings
from installer.laptop_config import LaptopAws, write_laptop_config
from shared.config import ConflictPolicy, NotificationLevel, load_config
from shared.errors import ConfigError

HAND_WRITTEN = """\
# My market-sync setup. Asha, Nov 2026.
[aws]
region = "ap-south-1"   # Mumbai
bucket = "market-data-backups-asha"
instance_id = "i-0123456789abcdef0"

[database]
# the laptop's own PostgreSQL, password in the keyring
conninfo = "host=localhost port=5432 dbname=mydb user=postgres"

[[tables]]
name = "my_schema.ticks"      # the collector's table
key = ["instrument_token", "exchange_timestamp"]

[[tables]]
name = "my_schema.instruments"
mode = "snapshot"

[sync]
policy = "server-wins"   # the collector is the source of truth
"""

SETTINGS = SettingsValues(profile="market-sync", region="ap-south-1",
                          bucket="market-data-backups-asha", instance_id="i-0fedcba987654321f",
                          conninfo="host=localhost port=5433 dbname=mydb user=asha",
                          policy=ConflictPolicy.LOCAL_WINS,
                          notifications=NotificationLevel.ERRORS_ONLY,
                          allow_insecure_keyring=False)


def test_settings_change_their_keys_and_keep_every_comment(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")

    config = save_settings(path, SETTINGS)

    text = path.read_text(encoding="utf-8")
    for line in HAND_WRITTEN.splitlines():
        if "#" in line and "policy" not in line and "conninfo" not in line:
            assert line in text  # comments, and the lines they sit on
    assert 'name = "my_schema.ticks"      # the collector\'s table' in text
    assert 'policy = "local-wins"   # the collector is the source of truth' in text
    assert config == load_config(path)
    assert config.aws.instance_id == "i-0fedcba987654321f" and config.aws.profile == "market-sync"
    assert config.sync.policy is ConflictPolicy.LOCAL_WINS
    assert [str(t.name) for t in config.tables] == ["my_schema.ticks", "my_schema.instruments"]
    assert text.index("[[tables]]") < text.index("[ui]")  # new sections go at the end


def test_provision_rewrites_aws_and_keeps_the_rest_as_written(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")

    write_laptop_config(path, LaptopAws(region="ap-south-1", bucket="market-sync-1234-ap-south-1",
                                        instance_id="i-0aaaabbbbccccdddd", stack="market-sync"))

    text = path.read_text(encoding="utf-8")
    unchanged = [line for line in HAND_WRITTEN.splitlines()
                 if not line.startswith(("bucket", "instance_id"))]
    for line in unchanged:
        assert line in text
    config = load_config(path)
    assert config.aws.bucket == "market-sync-1234-ap-south-1"
    assert config.aws.instance_id == "i-0aaaabbbbccccdddd"
    assert config.aws.stack == "market-sync"
    assert config.database.conninfo == "host=localhost port=5432 dbname=mydb user=postgres"


def test_a_new_file_gets_a_header_and_every_section(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    write_laptop_config(path, LaptopAws(region="ap-south-1", bucket="b-1", instance_id=None,
                                        stack="ms-two"))
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# market-sync on this laptop.")
    assert load_config(path).aws.stack == "ms-two"
    assert load_config(path).aws.profile is None  # the laptop acts as its operator key


@pytest.mark.parametrize("broken", ["[aws\nregion = 1\n", 'aws = "not a table"\n'])
def test_a_file_that_cannot_be_edited_is_refused_and_left_alone(tmp_path: Path,
                                                                broken: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as settings_error:
        save_settings(path, SETTINGS)
    with pytest.raises(ConfigError) as provision_error:
        write_laptop_config(path, LaptopAws(region="ap-south-1", bucket="data-b", instance_id=None,
                                            stack="market-sync"))
    for error in (settings_error.value, provision_error.value):
        assert str(path) in str(error)
    assert path.read_text(encoding="utf-8") == broken
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.partial"))


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HAND_WRITTEN, encoding="utf-8")

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("shared.paths.os.replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_settings(path, SETTINGS)
    assert path.read_text(encoding="utf-8") == HAND_WRITTEN
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]
