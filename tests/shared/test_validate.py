"""shared/validate.py: one sentence per wrong value, the same in the loader, Settings and
the wizard; the conninfo rules agree with psycopg's (libpq's) own parser."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from shared.config import parse_config
from shared.errors import ConfigError
from shared.validate import (
    CONNINFO_KEYWORDS,
    aws_regions,
    build_conninfo,
    check_bucket,
    check_conninfo,
    check_endpoint_url,
    check_instance_id,
    check_region,
    parse_conninfo,
)

CONNINFOS = [
    "", "dbname=market", "host=localhost port=5432 dbname=market user=trader",
    "dbname = market", "host= localhost", "dbname='my db' user=x", r"dbname='it\'s'",
    r"dbname=a\ b", "dbnam=market", "host=localhost dbname", "x", "dbname='open",
    "application_name=x sslmode=disable", "postgresql://trader@localhost:5432/market",
    "postgresql://trader@localhost/market?sslmode=disable",
    "postgresql://trader@localhost/market?sslmod=disable", "=x", "  ",
]


def test_libpq_knows_every_keyword_we_know_and_we_know_all_of_libpqs() -> None:
    libpq = {o.keyword.decode() for o in pq.Conninfo.get_defaults()}
    assert libpq <= CONNINFO_KEYWORDS
    assert CONNINFO_KEYWORDS - libpq <= {"gssdelegation", "sslkeylogfile", "scram_client_key",
                                         "scram_server_key", "oauth_client_id", "oauth_issuer",
                                         "oauth_client_secret", "oauth_scope",
                                         "max_protocol_version", "min_protocol_version",
                                         "sslnegotiation"}


@pytest.mark.parametrize("text", CONNINFOS)
def test_the_conninfo_check_agrees_with_psycopgs_conninfo_to_dict(text: str) -> None:
    try:
        theirs = conninfo_to_dict(text)
    except psycopg.ProgrammingError:
        theirs = None

    assert (check_conninfo(text) is None) == (theirs is not None), text
    if theirs is not None and not text.startswith("postgres"):
        assert parse_conninfo(text) == {k: str(v) for k, v in theirs.items()}


def test_a_misspelt_keyword_names_the_right_one() -> None:
    problem = check_conninfo("host=localhost dbnam=market")
    assert problem is not None
    assert problem.message == "conninfo has an unknown keyword 'dbnam'"
    assert problem.hint == "did you mean 'dbname'?"


@pytest.mark.parametrize(("host", "port", "db", "user"), [
    ("localhost", "5432", "market", "trader"), ("/var/run/postgresql", "", "my db", "o'neil"),
    ("", "", "market", ""), ("db.example.com", "6432", r"a\b", "x y")])
def test_the_wizard_fields_build_a_conninfo_libpq_reads_back(host: str, port: str, db: str,
                                                             user: str) -> None:
    built = conninfo_to_dict(build_conninfo(host, port, db, user))
    wanted = {"host": host, "port": port, "dbname": db, "user": user}
    assert built == {k: v for k, v in wanted.items() if v}


def test_regions_come_from_botocore() -> None:
    import botocore.session

    known = set(botocore.session.get_session().get_available_regions("s3"))
    assert "ap-south-1" in aws_regions() and known <= set(aws_regions())
    assert check_region("ap-south-1") is None
    problem = check_region("ap-south1")
    assert problem is not None and problem.hint == "did you mean 'ap-south-1'?"
    assert check_region("mumbai") is not None


@pytest.mark.parametrize(("name", "ok"), [
    ("market-sync-123456789012-ap-south-1", True), ("abc", True), ("a.b.c", True),
    ("b", False), ("ab", False), ("Market", False), ("my_bucket", False), ("-abc", False),
    ("abc-", False), ("a..b", False), ("a.-b", False), ("192.168.1.1", False),
    ("xn--abc", False), ("abc-s3alias", False), ("a" * 63, True), ("a" * 64, False), ("", False)])
def test_bucket_names_follow_s3s_rules(name: str, ok: bool) -> None:
    assert (check_bucket(name) is None) == ok


@pytest.mark.parametrize(("value", "ok"), [
    ("i-0123456789abcdef0", True), ("i-12345678", True), ("i-0123", False),
    ("0123456789abcdef0", False), ("i-0123456789ABCDEF0", False), ("i-0123456789abcdefg", False)])
def test_instance_ids_have_ec2s_shape(value: str, ok: bool) -> None:
    assert (check_instance_id(value) is None) == ok


@pytest.mark.parametrize(("url", "ok"), [
    ("https://s3.ap-south-1.amazonaws.com", True), ("http://127.0.0.1:5000", True),
    ("http://localhost:4566", True), ("http://example.com", False), ("ftp://x", False),
    ("https://", False), ("http://127.0.0.1:99999", False), ("not a url", False)])
def test_endpoint_urls_are_https_or_this_machine(url: str, ok: bool) -> None:
    assert (check_endpoint_url(url) is None) == ok


@pytest.mark.parametrize(("line", "words"), [
    ('region = "ap-south1"', "region 'ap-south1' is not an AWS region"),
    ('instance_id = "i-123"', "instance id 'i-123' is not an EC2 instance id"),
    ('endpoint_url = "http://10.0.0.1:9000"', "endpoint_url 'http://10.0.0.1:9000' is not https"),
])
def test_the_loader_says_the_same_sentence_with_file_and_line(tmp_path: Path, line: str,
                                                              words: str) -> None:
    path = tmp_path / "config.toml"
    text = f'[aws]\nbucket = "market-data"\n{line}\n[database]\nconninfo = "dbname=x"\n'
    with pytest.raises(ConfigError) as error:
        parse_config(text, path)
    assert f"{path}, line 3: [aws] {words}" in error.value.message


def test_the_loader_refuses_a_misspelt_conninfo_keyword(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError) as error:
        parse_config('[aws]\nbucket = "market-data"\n[database]\nconninfo = "dbnam=x"\n', path)
    assert error.value.message == \
        f"{path}, line 4: [database] conninfo has an unknown keyword 'dbnam'"
    assert error.value.hint == "did you mean 'dbname'?"
