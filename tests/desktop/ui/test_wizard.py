"""The first-run wizard, offscreen: credentials, detected address, cost, database test,
provisioning against the moto server, and resuming after being closed."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import psycopg
import pytest
from keyring.backend import KeyringBackend
from psycopg.conninfo import conninfo_to_dict
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QWizard
from pytestqt.qtbot import QtBot

from desktop.ui.wizard import AwsChoice, SetupWizard, WizardDeps, run_provisioning
from installer.provision import ProvisionProgress, ProvisionRequest, ProvisionResult
from installer.wizard_state import WizardState, check_database
from shared.config import load_config
from shared.devtools.motoserver import MotoServer
from shared.secrets import DATABASE_PASSWORD, SecretStore
from tests.fakes import MemoryKeyring
from tests.helpers import TICKS_DDL
from tests.installer.conftest import build_probe_wheel

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # moto: unsupported resources

TABLES = ({"name": "my_schema.ticks", "key": ["instrument_token", "exchange_timestamp"],
           "watermark": "run_date", "mode": "upsert"},
          {"name": "my_schema.instruments", "key": [], "watermark": None, "mode": "snapshot"})


@pytest.fixture
def secrets() -> SecretStore:
    return SecretStore(MemoryKeyring())


@pytest.fixture
def deps(tmp_path: Path, secrets: SecretStore, moto_server: MotoServer,
         agent_wheel: Path) -> WizardDeps:
    config_path = tmp_path / "config" / "config.toml"

    def provision(request: ProvisionRequest, choice: AwsChoice,
                  report: object) -> ProvisionResult:
        return run_provisioning(request, choice, report, config_path,  # type: ignore[arg-type]
                                secrets, endpoint_url=moto_server.endpoint_url,
                                wheel=agent_wheel)

    return WizardDeps(state_dir=tmp_path / "state", config_path=config_path, secrets=secrets,
                      profiles=lambda: ["default", "trader"],
                      detect_ip=lambda: "49.36.10.20",  # never the internet in tests
                      check_database=check_database, provision=provision)


@pytest.fixture(scope="session")
def agent_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_probe_wheel(tmp_path_factory)


def _make(qtbot: QtBot, deps: WizardDeps) -> SetupWizard:
    wizard = SetupWizard(deps)
    qtbot.addWidget(wizard)
    wizard.restart()  # what show() does first; offscreen Qt warns about showing a QWizard
    return wizard


def test_admin_key_stays_in_memory_never_in_the_keyring_or_the_saved_state(
        qtbot: QtBot, deps: WizardDeps, secrets: SecretStore) -> None:
    wizard = _make(qtbot, deps)
    page = wizard.credentials_page
    assert [page.profile.itemText(i) for i in range(page.profile.count())] == ["default",
                                                                               "trader"]
    page.use_keys.setChecked(True)
    page.key_id.setText("AKIAEXAMPLEEXAMPLE12")
    page.secret.setText("s3cr3t/key+value")
    wizard.next()
    assert wizard.currentId() == 1
    assert secrets.aws_keys() is None  # the administrator's key is never stored
    assert wizard.admin_keys is not None
    assert wizard.admin_keys.secret_access_key == "s3cr3t/key+value"
    saved = WizardState.path(deps.state_dir).read_text()
    assert "s3cr3t" not in saved and "AKIAEXAMPLE" not in saved
    assert page.secret.text() == ""


def test_public_ip_is_detected_and_cost_follows_the_instance_type(
        qtbot: QtBot, deps: WizardDeps) -> None:
    wizard = _make(qtbot, deps)
    wizard.credentials_page.profile.setCurrentText("trader")
    wizard.next()
    page = wizard.stack_page
    qtbot.waitUntil(lambda: page.ip.text() == "49.36.10.20", timeout=5000)
    assert page.region.currentText() == "ap-south-1"
    assert page.region.findText("ap-south-2") >= 0  # a list of AWS's regions
    page.instance_type.setCurrentText("t3.small")
    small = page.cost.text()
    page.instance_type.setCurrentText("t3.medium")
    assert "t3.medium" in page.cost.text() and page.cost.text() != small
    assert "estimate" in page.cost.text()
    page.ip.setText("10.1.2.3")
    page.email.setText("trader@example.com")
    page.app_source.setText("https://github.com/example/app.git")
    wizard.next()
    assert wizard.currentId() == 1 and "public" in page.message.text()


def test_database_test_button_connects(qtbot: QtBot, deps: WizardDeps, laptop_db: str) -> None:
    deps_state = WizardState(page=2, profile="trader", public_ip="49.36.10.20",
                             email="t@example.com", app_source="https://example.com/a.git",
                             conninfo=laptop_db)
    deps_state.save(deps.state_dir)
    wizard = _make(qtbot, deps)
    assert wizard.currentId() == 2
    page = wizard.database_page
    # the fields, built back into the same connection
    assert conninfo_to_dict(page.conninfo) == conninfo_to_dict(laptop_db)
    assert page.database.text() == conninfo_to_dict(laptop_db)["dbname"]
    page.test.click()
    qtbot.waitUntil(lambda: page.result.text().startswith(("✓", "✗")), timeout=10000)
    assert page.result.text().startswith("✓ connected"), page.result.text()
    page.host.setText("127.0.0.1")
    page.port.setText("1")
    page.test.click()
    qtbot.waitUntil(lambda: page.result.text().startswith("✗"), timeout=10000)
    page.port.setText("54a")
    page.test.click()
    assert page.result.text() == "✗ Port '54a' is not a port number (1–65535, usually 5432)."


def test_provisioning_runs_with_live_progress_and_writes_the_config(
        qtbot: QtBot, deps: WizardDeps, moto_server: MotoServer) -> None:
    moto_server.reset()
    WizardState(page=5, profile="", credentials="profile", public_ip="49.36.10.20",
                email="t@example.com", app_source="https://example.com/app.git",
                conninfo="host=localhost dbname=market", tables=TABLES).save(deps.state_dir)
    wizard = _make(qtbot, deps)
    page = wizard.provision_page
    assert not page.isComplete()
    with qtbot.waitSignal(page.provisioned, timeout=60000) as blocker:
        page.start.click()
    result = blocker.args[0]
    assert isinstance(result, ProvisionResult) and result.instance_id
    assert page.isComplete()
    assert "CREATE_COMPLETE" in page.log.toPlainText()
    config = load_config(deps.config_path)
    assert config.aws.instance_id == result.instance_id
    assert config.database.conninfo == "host=localhost dbname=market"
    assert WizardState.load(deps.state_dir).provisioned
    # The agent and the laptop get exactly the tables of the tables page.
    assert [str(t.name) for t in config.tables] == ["my_schema.ticks", "my_schema.instruments"]
    assert config.tables[0].key == ("instrument_token", "exchange_timestamp")
    assert config.tables[0].watermark == "run_date" and config.tables[1].watermark is None
    s3 = boto3.client("s3", region_name="ap-south-1", endpoint_url=moto_server.endpoint_url)
    settings = json.loads(s3.get_object(Bucket=result.bucket,
                                        Key="artifacts/instance-settings.json")["Body"].read())
    assert [(t["schema"], t["table"], t["mode"], t["key"], t["watermark"])
            for t in settings["tables"]] == [
        ("my_schema", "ticks", "upsert", ["instrument_token", "exchange_timestamp"], "run_date"),
        ("my_schema", "instruments", "snapshot", [], None)]


def test_provisioning_with_a_typed_admin_key_leaves_only_the_operator_key(
        qtbot: QtBot, deps: WizardDeps, moto_server: MotoServer, secrets: SecretStore) -> None:
    moto_server.reset()
    WizardState(page=0, public_ip="49.36.10.20", email="t@example.com",
                app_source="https://example.com/app.git",
                conninfo="host=localhost dbname=market").save(deps.state_dir)
    wizard = _make(qtbot, deps)
    wizard.credentials_page.use_keys.setChecked(True)
    wizard.credentials_page.key_id.setText("AKIAADMINADMINADMIN1")
    wizard.credentials_page.secret.setText("admin-secret-value")
    wizard.next()
    wizard.next()
    wizard.next()
    assert wizard.currentId() == 3
    with qtbot.waitSignal(wizard.provision_page.provisioned, timeout=60000):
        wizard.provision_page.start.click()
    stored = secrets.aws_keys()
    assert stored is not None and stored.access_key_id != "AKIAADMINADMINADMIN1"
    assert "admin-secret-value" not in deps.config_path.read_text()
    assert load_config(deps.config_path).aws.profile is None


def test_a_reopened_wizard_asks_for_the_admin_key_again(
        qtbot: QtBot, deps: WizardDeps) -> None:
    WizardState(page=3, credentials="keys", public_ip="49.36.10.20", email="t@example.com",
                app_source="https://example.com/app.git").save(deps.state_dir)
    wizard = _make(qtbot, deps)
    wizard.provision_page.start.click()
    assert "again" in wizard.provision_page.status.text()
    assert not wizard.provision_page.isComplete()


def test_closed_wizard_resumes_where_it_was(qtbot: QtBot, deps: WizardDeps) -> None:
    first = _make(qtbot, deps)
    first.credentials_page.profile.setCurrentText("trader")
    first.next()
    first.stack_page.email.setText("t@example.com")
    first.stack_page.app_source.setText("https://example.com/app.git")
    qtbot.waitUntil(lambda: first.stack_page.ip.text() != "", timeout=5000)
    first.next()
    assert first.currentId() == 2
    first.reject()

    again = _make(qtbot, deps)
    assert again.currentId() == 2
    assert again.state.profile == "trader" and again.state.email == "t@example.com"
    assert isinstance(again, QWizard)


def test_failed_provisioning_shows_the_reason_and_allows_a_retry(
        qtbot: QtBot, deps: WizardDeps) -> None:
    from dataclasses import replace

    from shared.errors import AwsError

    def refuse(request: ProvisionRequest, choice: AwsChoice,
               report: object) -> ProvisionResult:
        raise AwsError("AWS refused permission to create the stack", "use an admin profile")

    WizardState(page=5, public_ip="49.36.10.20", email="t@example.com",
                app_source="https://example.com/app.git", tables=TABLES).save(deps.state_dir)
    wizard = _make(qtbot, replace(deps, provision=refuse))
    page = wizard.provision_page
    page.start.click()
    qtbot.waitUntil(lambda: "refused" in page.status.text(), timeout=5000)
    assert page.start.isEnabled() and not page.isComplete()
    assert "admin profile" in page.status.text()


def test_memory_keyring_is_a_keyring() -> None:
    assert isinstance(MemoryKeyring(), KeyringBackend)
    assert ProvisionProgress("done", "x").phase == "done"


def test_the_tables_page_proposes_keys_and_day_columns_from_the_laptop_database(
        qtbot: QtBot, deps: WizardDeps, laptop_db: str) -> None:
    with psycopg.connect(laptop_db, autocommit=True) as conn:
        conn.execute(TICKS_DDL)
        conn.execute("CREATE TABLE my_schema.instruments (token bigint PRIMARY KEY, "
                     "symbol text)")
        conn.execute("CREATE TABLE my_schema.eod (symbol text, trade_date date, close numeric, "
                     "PRIMARY KEY (symbol, trade_date))")
    WizardState(page=2, profile="trader", public_ip="49.36.10.20", email="t@example.com",
                app_source="https://example.com/a.git", conninfo=laptop_db).save(deps.state_dir)
    wizard = _make(qtbot, deps)
    wizard.next()
    page = wizard.tables_page
    assert wizard.currentId() == 3
    qtbot.waitUntil(lambda: page.table.rowCount() == 3, timeout=10000)

    proposed = {p.qualified: (p.key, p.watermark, str(p.mode)) for p in page.proposals}
    assert proposed == {
        "my_schema.eod": (("symbol", "trade_date"), "trade_date", "upsert"),
        "my_schema.instruments": (("token",), None, "snapshot"),
        "my_schema.ticks": (("instrument_token", "exchange_timestamp"), "run_date", "upsert")}
    eod = next(r for r in range(3) if page.table.item(r, 1).text() == "my_schema.eod")
    page.table.item(eod, 0).setCheckState(Qt.CheckState.Unchecked)  # the trader's edit
    wizard.next()
    assert wizard.currentId() == 4
    assert [t["name"] for t in wizard.state.tables] == ["my_schema.instruments",
                                                        "my_schema.ticks"]
    summary = wizard.summary_page.text.text()
    assert "my_schema.ticks: by run_date, key instrument_token, exchange_timestamp" in summary
    assert "my_schema.instruments" in summary and "my_schema.eod" not in summary
    assert f"dbname={conninfo_to_dict(laptop_db)['dbname']}" in summary


def test_no_ticked_table_or_a_keyless_upsert_is_refused(qtbot: QtBot, deps: WizardDeps,
                                                        laptop_db: str) -> None:
    with psycopg.connect(laptop_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.notes (day date, body text)")
    WizardState(page=3, conninfo=laptop_db).save(deps.state_dir)
    wizard = _make(qtbot, deps)
    page = wizard.tables_page
    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=10000)
    mode = page.table.cellWidget(0, 4)
    assert isinstance(mode, QComboBox) and mode.currentData() == "snapshot"  # no key
    mode.setCurrentIndex(mode.findData("upsert"))
    assert not page.validatePage()
    assert "public.notes: table public.notes has mode upsert but no watermark column" in \
        page.message.text()
    watermark = page.table.cellWidget(0, 3)
    assert isinstance(watermark, QComboBox) and watermark.findText("day") >= 0
    watermark.setCurrentText("day")
    assert not page.validatePage()
    assert "public.notes: by day, rows by key (upsert) needs its key columns" in \
        page.message.text()
    page.table.item(0, 0).setCheckState(Qt.CheckState.Unchecked)
    assert not page.validatePage() and "Tick at least one table" in page.message.text()


def test_without_a_secure_keyring_the_password_needs_the_same_opt_in_as_settings(
        qtbot: QtBot, deps: WizardDeps, laptop_db: str) -> None:
    from dataclasses import replace

    kept = SecretStore(MemoryKeyring())
    bare = replace(deps, secrets=None, insecure_secrets=lambda: kept)
    WizardState(page=2, conninfo=laptop_db).save(deps.state_dir)
    wizard = _make(qtbot, bare)
    page = wizard.database_page
    assert not page.insecure.isHidden()
    page.password.setText("pw")
    assert not page.validatePage() and "no encrypted keyring" in page.result.text()
    page.insecure.setChecked(True)
    assert page.validatePage()
    assert kept.get(DATABASE_PASSWORD) == "pw"
    assert wizard.state.allow_insecure_keyring


def test_a_failed_address_detection_says_so(qtbot: QtBot, deps: WizardDeps) -> None:
    from dataclasses import replace

    from shared.errors import MarketSyncError

    def offline() -> str:
        raise MarketSyncError("could not detect the public address: timed out")

    wizard = _make(qtbot, replace(deps, detect_ip=offline))
    wizard.credentials_page.profile.setCurrentText("trader")
    wizard.next()
    page = wizard.stack_page
    qtbot.waitUntil(lambda: "Type it in" in page.message.text(), timeout=5000)
    assert page.message.text().startswith("Could not detect your public address (")
    assert page.ip.text() == ""
