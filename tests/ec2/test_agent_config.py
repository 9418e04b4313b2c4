"""The [agent] section of agent.toml (shared/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import IMDS_URL, parse_config
from shared.errors import ConfigError

BASE = '[aws]\nbucket = "market-data-b"\n[database]\nconninfo = "host=127.0.0.1"\n'


def test_defaults_when_the_section_is_absent() -> None:
    agent = parse_config(BASE, Path("agent.toml")).agent
    assert agent.imds_url == IMDS_URL and agent.sns_topic_arn is None
    assert agent.metric_namespace == "MarketSync" and agent.power_off_after_backup is True


def test_values_are_read() -> None:
    text = BASE + ('[agent]\nsns_topic_arn = "arn:aws:sns:ap-south-1:1:t"\n'
                   'imds_url = "http://127.0.0.1:8111/"\npower_off_after_backup = false\n')
    agent = parse_config(text, Path("agent.toml")).agent
    assert agent.sns_topic_arn == "arn:aws:sns:ap-south-1:1:t"
    assert agent.imds_url == "http://127.0.0.1:8111"
    assert agent.power_off_after_backup is False


@pytest.mark.parametrize(("line", "message"), [
    ('imds_url = "http://169.254.169.254.example.com"', "not EC2's metadata service"),
    ('imds_url = "http://10.0.0.1"', "not EC2's metadata service"),
    ('sns_topic_arn = "market-sync"', "not an ARN"),
    ('power_off_after_backup = "yes"', "true or false"),
    ("poweroff = true", "unknown key"),
])
def test_bad_values_name_the_key_and_line(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        parse_config(BASE + "[agent]\n" + line + "\n", Path("agent.toml"))
    assert "agent.toml, line 6: [agent]" in error.value.message
