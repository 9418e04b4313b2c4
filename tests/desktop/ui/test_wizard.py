"""The first-run wizard, offscreen: credentials, detected address, cost, database test,
provisioning against the moto server, and resuming after being closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from PySide6.QtWidgets import QWizard
from pytestqt.qtbot import QtBot

from desktop.ui.wizard import AwsChoice, SetupWizard, WizardDeps, run_provisioning
from installer.provision import ProvisionProgress, ProvisionRequest, ProvisionResult
from installer.wizard_state import WizardState, check_database
from shared.config import load_config
from shared.devtools.motoserver import MotoServer
from shared.secrets import SecretStore
from tests.fakes import MemoryKeyring
from tests.installer.conftest import build_probe_wheel

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # moto: unsupported resources


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
    assert page.region.text() == "ap-south-1"
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
    page.test.click()
    qtbot.waitUntil(lambda: page.result.text().startswith(("✓", "✗")), timeout=10000)
    assert page.result.text().startswith("✓ connected"), page.result.text()
    page.conninfo.setText("host=127.0.0.1 port=1 dbname=none connect_timeout=1")
    page.test.click()
    qtbot.waitUntil(lambda: page.result.text().startswith("✗"), timeout=10000)


def test_provisioning_runs_with_live_progress_and_writes_the_config(
        qtbot: QtBot, deps: WizardDeps, moto_server: MotoServer) -> None:
    moto_server.reset()
    WizardState(page=3, profile="", credentials="profile", public_ip="49.36.10.20",
                email="t@example.com", app_source="https://example.com/app.git",
                conninfo="host=localhost dbname=market").save(deps.state_dir)
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

    WizardState(page=3, public_ip="49.36.10.20", email="t@example.com",
                app_source="https://example.com/app.git").save(deps.state_dir)
    wizard = _make(qtbot, replace(deps, provision=refuse))
    page = wizard.provision_page
    page.start.click()
    qtbot.waitUntil(lambda: "refused" in page.status.text(), timeout=5000)
    assert page.start.isEnabled() and not page.isComplete()
    assert "admin profile" in page.status.text()


def test_memory_keyring_is_a_keyring() -> None:
    assert isinstance(MemoryKeyring(), KeyringBackend)
    assert ProvisionProgress("done", "x").phase == "done"
