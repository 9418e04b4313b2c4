"""shared/config.py: the TOML contract of DESIGN.md, and its errors in the trader's words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config import ConflictPolicy, load_config, parse_config
from shared.errors import ConfigError
from shared.tables import MergeMode, QualifiedName

PATH = Path("/home/asha/.config/market-sync/config.toml")

# The example of DESIGN.md, verbatim.
DESIGN_EXAMPLE = """\
[aws]
region = "ap-south-1"
profile = "market-sync"                  # optional; default credential chain otherwise
endpoint_url = "http://127.0.0.1:5000"   # optional
bucket = "market-data-backups-asha"
prefix = ""                              # optional, e.g. "prod/"
instance_id = "i-0123456789abcdef0"

[database]
conninfo = "host=localhost port=5432 dbname=mydb user=postgres"   # libpq; password from keyring, PGPASSWORD or .pgpass

[[tables]]
name = "my_schema.ticks"
key = ["instrument_token", "exchange_timestamp"]   # optional: the primary key
watermark = "run_date"                             # optional: default run_date
mode = "upsert"                                    # upsert | replace-range | snapshot

[sync]
policy = "server-wins"                   # server-wins | local-wins | abort
"""  # noqa: E501 (verbatim from DESIGN.md)

MINIMAL = """\
[aws]
bucket = "market-data-b"
{aws}
[database]
conninfo = "{conninfo}"
{rest}
"""


def minimal(aws: str = "", conninfo: str = "host=localhost dbname=mydb", rest: str = "") -> str:
    return MINIMAL.format(aws=aws, conninfo=conninfo, rest=rest)


def config_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, PATH)
    return info.value


def line_of(error: ConfigError) -> int | None:
    found = re.search(r", line (\d+)", error.message)
    return int(found.group(1)) if found else None


# -- the good file ---------------------------------------------------------------------------

def test_design_example_parses_into_every_field() -> None:
    config = parse_config(DESIGN_EXAMPLE, PATH)

    assert config.path == PATH
    assert config.aws.region == "ap-south-1"
    assert config.aws.profile == "market-sync"
    assert config.aws.endpoint_url == "http://127.0.0.1:5000"
    assert config.aws.bucket == "market-data-backups-asha"
    assert config.aws.prefix == ""
    assert config.aws.instance_id == "i-0123456789abcdef0"
    assert config.database.conninfo == "host=localhost port=5432 dbname=mydb user=postgres"
    (table,) = config.tables
    assert table.name == QualifiedName("my_schema", "ticks")
    assert table.key == ("instrument_token", "exchange_timestamp")
    assert table.watermark == "run_date"
    assert table.mode is MergeMode.UPSERT
    assert config.sync.policy is ConflictPolicy.SERVER_WINS


def test_optional_keys_take_their_documented_defaults() -> None:
    config = parse_config(minimal(rest='[[tables]]\nname = "ticks"\n'), PATH)

    assert config.aws.region == "ap-south-1"
    assert config.aws.profile is None
    assert config.aws.endpoint_url is None
    assert config.aws.prefix == ""
    assert config.tables[0].name == QualifiedName("public", "ticks")
    assert config.tables[0].key == ()
    assert config.tables[0].watermark == "run_date"
    assert config.tables[0].mode is MergeMode.UPSERT
    assert config.sync.policy is ConflictPolicy.SERVER_WINS
    assert config.sync.add_missing_columns is False


def test_load_config_reads_the_design_example_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")

    assert load_config(path).aws.bucket == "market-data-backups-asha"


def test_config_table_lookup_finds_a_configured_table_by_qualified_name() -> None:
    config = parse_config(DESIGN_EXAMPLE, PATH)

    assert config.table(QualifiedName("my_schema", "ticks")) is config.tables[0]
    assert config.table(QualifiedName("public", "ticks")) is None


@pytest.mark.parametrize("policy", ["server-wins", "local-wins", "abort"])
def test_each_documented_policy_is_accepted(policy: str) -> None:
    config = parse_config(minimal(rest=f'[sync]\npolicy = "{policy}"\n'), PATH)

    assert config.sync.policy == ConflictPolicy(policy)


@pytest.mark.parametrize("mode", ["upsert", "replace-range", "snapshot"])
def test_each_documented_mode_is_accepted(mode: str) -> None:
    config = parse_config(minimal(rest=f'[[tables]]\nname = "t"\nmode = "{mode}"\n'), PATH)

    assert config.tables[0].mode == MergeMode(mode)


def test_snapshot_table_has_no_watermark() -> None:
    config = parse_config(minimal(rest='[[tables]]\nname = "t"\nmode = "snapshot"\n'), PATH)

    assert config.tables[0].watermark is None


def test_quoted_table_name_keeps_case_and_spaces() -> None:
    config = parse_config(minimal(rest="[[tables]]\nname = 'my_schema.\"Order Book\"'\n"), PATH)

    assert config.tables[0].name == QualifiedName("my_schema", "Order Book")


@pytest.mark.parametrize(("given", "stored"), [("prod", "prod/"), ("prod/", "prod/"),
                                                ("a/b", "a/b/"), ("", "")])
def test_prefix_gets_a_trailing_slash(given: str, stored: str) -> None:
    config = parse_config(minimal(aws=f'prefix = "{given}"'), PATH)

    assert config.aws.prefix == stored


# -- endpoint_url ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://s3.ap-south-1.amazonaws.com",
    "https://minio.example.net:9000",
    "http://127.0.0.1:5000",
    "http://127.0.0.2:4566",
    "http://localhost:4566",
    "http://localhost",
    "http://[::1]:5000",
])
def test_https_or_this_machine_endpoint_is_accepted(url: str) -> None:
    config = parse_config(minimal(aws=f'endpoint_url = "{url}"'), PATH)

    assert config.aws.endpoint_url == url


@pytest.mark.parametrize("url", [
    "http://s3.ap-south-1.amazonaws.com",
    "http://192.168.1.10:9000",
    "http://localhost.evil.example:5000",   # starts like localhost, is not
    "http://127.evil.example:5000",         # starts like 127., is not
    "ftp://127.0.0.1:5000",
    "127.0.0.1:5000",
    "https://",
])
def test_plain_http_endpoint_elsewhere_is_refused(url: str) -> None:
    error = config_error(minimal(aws=f'endpoint_url = "{url}"'))

    assert str(PATH) in error.message
    assert "endpoint_url" in error.message
    assert line_of(error) == 3


# -- conninfo --------------------------------------------------------------------------------

@pytest.mark.parametrize("conninfo", [
    "host=localhost dbname=mydb user=postgres password=secret",
    "password=secret host=localhost",
    "host=localhost password = 'two words'",
    "host=localhost PASSWORD=secret",
    "postgresql://postgres:secret@localhost:5432/mydb",
    "postgres://postgres:@localhost/mydb",
    "postgresql://postgres@localhost/mydb?password=secret",
    "postgresql://localhost/mydb?sslmode=require&password=secret",
])
def test_password_in_conninfo_is_refused(conninfo: str) -> None:
    error = config_error(minimal(conninfo=conninfo))

    assert "conninfo contains a password" in error.message
    assert "secret" not in str(error)
    assert line_of(error) == 5
    assert "keyring" in error.hint


@pytest.mark.parametrize("conninfo", [
    "host=localhost port=5432 dbname=mydb user=postgres",
    "host=localhost passfile=/home/asha/.pgpass",
    "postgresql://postgres@localhost:5432/mydb",
    "postgresql://localhost/mydb?user=postgres&sslmode=require",
    "postgresql://postgres@[::1]:5432/mydb",
])
def test_conninfo_without_password_is_accepted(conninfo: str) -> None:
    config = parse_config(minimal(conninfo=conninfo), PATH)

    assert config.database.conninfo == conninfo


# -- errors: file, key, line, no traceback ---------------------------------------------------

def test_bad_toml_names_the_file_and_the_line() -> None:
    error = config_error('[aws]\nbucket = "market-data-b"\nregion = ap-south-1\n')

    assert str(PATH) in error.message
    assert "not valid TOML" in error.message
    assert "line 3" in error.message
    assert error.__cause__ is None and error.__suppress_context__


def test_missing_file_is_a_config_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")

    assert str(tmp_path / "nope.toml") in info.value.message
    assert "--config" in info.value.hint


def test_undecodable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"[aws]\nbucket = \"\xff\xfe\"\n")

    with pytest.raises(ConfigError) as info:
        load_config(path)

    assert str(path) in info.value.message


def test_missing_section_names_the_file_and_the_section() -> None:
    error = config_error('[aws]\nbucket = "market-data-b"\n')

    assert str(PATH) in error.message
    assert "missing key 'database'" in error.message


def test_missing_key_names_the_file_section_and_key() -> None:
    error = config_error('[aws]\nregion = "ap-south-1"\n[database]\nconninfo = "host=x"\n')

    assert error.message == f"{PATH}: [aws] missing key 'bucket'"


def test_missing_table_name_names_the_table_entry() -> None:
    error = config_error(minimal(rest='[[tables]]\nname = "a"\n[[tables]]\nmode = "upsert"\n'))

    assert "[tables[1]] missing key 'name'" in error.message


@pytest.mark.parametrize(("aws", "key", "expected"), [
    ("region = 5", "region", "a string, not a number"),
    ("prefix = true", "prefix", "a string, not true/false"),
    ('instance_id = ["i-1"]', "instance_id", "a string, not a list"),
])
def test_wrong_type_names_the_key_the_line_and_both_types(aws: str, key: str,
                                                          expected: str) -> None:
    error = config_error(minimal(aws=aws))

    assert str(PATH) in error.message
    assert f"'{key}' must be {expected}" in error.message
    assert line_of(error) == 3


def test_bool_where_a_whole_number_is_expected_is_refused() -> None:
    error = config_error(minimal(rest="[app]\nport = true\n"))

    assert "'port' must be a whole number, not true/false" in error.message
    assert line_of(error) == 7


def test_string_where_a_bool_is_expected_is_refused() -> None:
    error = config_error(minimal(rest='[sync]\nadd_missing_columns = "yes"\n'))

    assert "'add_missing_columns' must be true or false" in error.message
    assert line_of(error) == 7


def test_key_list_with_a_number_is_refused() -> None:
    error = config_error(minimal(rest='[[tables]]\nname = "t"\nkey = ["a", 1]\n'))

    assert "'key' must be a list of strings" in error.message
    assert line_of(error) == 8


def test_section_of_the_wrong_type_is_refused() -> None:
    error = config_error('aws = "b"\n[database]\nconninfo = "host=x"\n')

    assert "'aws' must be a table [aws], not a string" in error.message
    assert line_of(error) == 1


def test_tables_written_as_a_single_table_is_refused() -> None:
    error = config_error(minimal(rest='[tables]\nname = "t"\n'))

    assert "'tables' must be an array of [[tables]]" in error.message
    assert line_of(error) == 6


def test_unknown_key_names_the_key_its_line_and_the_known_keys() -> None:
    error = config_error(minimal(aws='bukket = "b2"'))

    assert error.message == f"{PATH}, line 3: [aws] unknown key 'bukket'"
    assert "bucket" in error.hint and "endpoint_url" in error.hint


def test_unknown_key_in_a_later_tables_entry_points_at_that_entry() -> None:
    text = minimal(rest='[[tables]]\nname = "a"\nmode = "upsert"\n'
                        '[[tables]]\nname = "b"\nmoed = "upsert"\n')

    error = config_error(text)

    assert "[tables[1]] unknown key 'moed'" in error.message
    assert line_of(error) == 11


def test_unknown_section_names_its_header_line() -> None:
    error = config_error(minimal(rest='[sink]\npolicy = "abort"\n'))

    assert "unknown key 'sink'" in error.message
    assert line_of(error) == 6


def test_line_is_found_under_a_header_with_a_comment() -> None:
    text = '[aws]   # where the dumps go\nregion = 5\n[database]\nconninfo = "host=x"\n'

    error = config_error(text)

    assert line_of(error) == 2


def test_unknown_policy_lists_the_allowed_ones() -> None:
    error = config_error(minimal(rest='[sync]\npolicy = "newest-wins"\n'))

    assert "'policy' is 'newest-wins'" in error.message
    assert "server-wins | local-wins | abort" in error.message
    assert line_of(error) == 7


def test_unknown_mode_lists_the_allowed_ones() -> None:
    error = config_error(minimal(rest='[[tables]]\nname = "t"\nmode = "merge"\n'))

    assert "[tables[0]] 'mode' is 'merge'" in error.message
    assert "upsert | replace-range | snapshot" in error.message
    assert line_of(error) == 8


def test_snapshot_with_a_watermark_is_refused() -> None:
    text = minimal(rest='[[tables]]\nname = "t"\nmode = "snapshot"\nwatermark = "run_date"\n')

    error = config_error(text)

    assert "snapshot tables have no watermark" in error.message
    assert line_of(error) == 9


def test_duplicate_table_is_refused_even_when_spelled_differently() -> None:
    text = minimal(rest='[[tables]]\nname = "my_schema.ticks"\n'
                        '[[tables]]\nname = "MY_SCHEMA.Ticks"\n')

    error = config_error(text)

    assert "my_schema.ticks is listed twice" in error.message
    assert "[tables[1]]" in error.message
    assert line_of(error) == 9


def test_bad_table_name_names_the_entry_and_its_line() -> None:
    error = config_error(minimal(rest='[[tables]]\nname = "a.b.c"\n'))

    assert str(PATH) in error.message
    assert "[tables[0]]" in error.message
    assert "has 3 parts" in error.message
    assert line_of(error) == 7


def test_bad_key_column_is_a_config_error() -> None:
    error = config_error(minimal(rest='[[tables]]\nname = "t"\nkey = [""]\n'))

    assert "empty key column" in error.message


@pytest.mark.parametrize("text", [
    "",
    "[aws]\n",
    "[aws]\nbucket = 'b'\n[database]\n",
    "[[aws]]\nbucket = 'b'\n",
    "tables = 5\n",
    "[aws]\nbucket = 'b'\n[database]\nconninfo = 'x'\ntables = [1]\n",
    "\x00",
    "[aws]\nbucket = 'b'\n[database]\nconninfo = 'x'\n[[tables]]\nname = 5\n",
    "[aws]\nbucket = 'b'\n[database]\nconninfo = 'x'\n[[tables]]\nname = 't'\nkey = 'k'\n",
    "[aws]\nbucket = 'b'\n[database]\nconninfo = 'x'\n[[tables]]\nname = 't'\nwatermark = ''\n",
])
def test_malformed_files_are_config_errors_never_other_exceptions(text: str) -> None:
    error = config_error(text)

    assert str(PATH) in error.message


@pytest.mark.parametrize("url", ["http://127.evil.example", "http://localhost.evil.example",
                                 "https://169.254.169.254"])
def test_agent_imds_url_must_be_ec2s_or_loopback(tmp_path: Path, url: str) -> None:
    text = ('[aws]\nbucket = "market-data-b"\n[database]\nconninfo = "dbname=x"\n'
            f'[agent]\nimds_url = "{url}"\n')
    with pytest.raises(ConfigError, match="imds_url"):
        parse_config(text, tmp_path / "agent.toml")


@pytest.mark.parametrize("prefix", ["/prod/", "prod//x/"])
def test_prefix_with_empty_path_segments_is_refused(tmp_path: Path, prefix: str) -> None:
    text = f'[aws]\nbucket = "data-b"\nprefix = "{prefix}"\n[database]\nconninfo = "dbname=x"\n'
    with pytest.raises(ConfigError, match="prefix"):
        parse_config(text, tmp_path / "config.toml")
