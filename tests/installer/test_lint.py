"""cfn-lint (no errors, no warnings) and checkov (no failed checks but documented skips)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ec2.instance.settings import InstanceSettings
from ec2.instance.userdata import render_user_data
from installer import template as tpl

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = InstanceSettings(
    region="ap-south-1", bucket="market-sync-123456789012-ap-south-1", prefix="",
    agent_wheel_key="artifacts/market_sync-0.1.0-py3-none-any.whl",
    app_source="https://github.com/example/market-app.git",
    sns_topic_arn="arn:aws:sns:ap-south-1:123456789012:market-sync-alerts")


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("templates")
    paths = {}
    for name, user_data in (("full", render_user_data(SETTINGS)), ("first-pass", None)):
        path = folder / f"{name}.json"
        path.write_text(tpl.template_body(tpl.build_template(user_data)))
        paths[name] = path
    return paths


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.mark.parametrize("name", ["full", "first-pass"])
def test_cfn_lint_reports_nothing(templates: dict[str, Path], name: str) -> None:
    done = subprocess.run([_bin("cfn-lint"), "--format", "parseable", str(templates[name])],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout.strip() == "" and done.returncode == 0, done.stdout + done.stderr


def test_cfn_lint_would_catch_a_broken_template(tmp_path: Path) -> None:
    broken = tpl.build_template(None)
    broken["Resources"]["DataBucket"]["Properties"]["VersioningConfiguration"] = {"On": True}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    done = subprocess.run([_bin("cfn-lint"), str(path)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode != 0


@pytest.fixture(scope="module")
def checkov_report(templates: dict[str, Path]) -> dict[str, Any]:
    # --skip-download: no call to the vendor's platform; this scans the real user-data too,
    # which takes checkov a while.
    done = subprocess.run(
        [_bin("checkov"), "--skip-download", "--framework",
         "cloudformation", "-o", "json", "-f", str(templates["full"])],
        capture_output=True, text=True, timeout=900, check=False)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_checkov_has_no_failed_checks(checkov_report: dict[str, Any]) -> None:
    failed = [(c["check_id"], c["resource"]) for c in checkov_report["results"]["failed_checks"]]
    assert failed == []
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["passed"] > 20


def test_checkov_skips_are_exactly_the_documented_ones(checkov_report: dict[str, Any]) -> None:
    skipped = {(c["check_id"], c["resource"].split(".")[-1])
               for c in checkov_report["results"].get("skipped_checks", [])}
    declared = {(check, logical) for logical, skips in tpl.CHECKOV_SKIPS.items()
                for check, _ in skips}
    assert skipped == declared
    doc = (ROOT / "docs" / "checkov-skips.md").read_text()
    for check, logical in declared:
        assert re.search(rf"{check}.*{logical}|{logical}.*{check}", doc), (check, logical)
