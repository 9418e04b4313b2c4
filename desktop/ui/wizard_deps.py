"""What the first-run wizard reaches outside itself (injected: tests pass their own), and
what its pages may use of the wizard."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtWidgets import (
    QFormLayout,
    QWizardPage,
)

from desktop.engine.discover import TableProposal, find_tables
from desktop.ui.runner import Runner
from installer.provision import ProvisionProgress, ProvisionRequest, ProvisionResult
from installer.wizard_state import DatabaseCheck, WizardState
from shared.secrets import AwsKeys, SecretStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AwsChoice:
    """How the wizard reaches AWS as the administrator, for this run only: a profile, or
    an access key typed into the wizard (held in memory, never stored)."""

    region: str
    profile: str | None
    admin_keys: AwsKeys | None = None


ProvisionWork = Callable[[ProvisionRequest, AwsChoice, Callable[[ProvisionProgress], None]],
                         ProvisionResult]


@dataclass(frozen=True)
class WizardDeps:
    """Everything the wizard reaches outside itself; tests pass their own."""

    state_dir: Path
    config_path: Path
    secrets: SecretStore | None
    profiles: Callable[[], list[str]]
    detect_ip: Callable[[], str]
    check_database: Callable[[str, str | None], DatabaseCheck]
    provision: ProvisionWork
    find_tables: Callable[[str, str | None], list[TableProposal]] = find_tables
    insecure_secrets: Callable[[], SecretStore | None] = lambda: _insecure_store()


def _insecure_store() -> SecretStore | None:
    """The keyring the trader opted into although it is not encrypted (like Settings)."""
    from shared.secrets import SecretStoreError

    try:
        return SecretStore.default(allow_insecure=True)
    except SecretStoreError as exc:
        logger.warning("%s", exc.message)
        return None


def default_deps(config_path: Path | None = None) -> WizardDeps:
    from installer import wizard_state
    from shared.paths import AppPaths, resolve_config_path
    from shared.secrets import SecretStoreError

    try:
        secrets: SecretStore | None = SecretStore.default()
    except SecretStoreError as exc:
        logger.warning("%s", exc.message)
        secrets = None
    config_path = config_path or resolve_config_path(None)
    return WizardDeps(
        state_dir=AppPaths.default().state_dir, config_path=config_path, secrets=secrets,
        profiles=wizard_state.aws_profiles, detect_ip=wizard_state.detect_public_ip,
        check_database=wizard_state.check_database,
        provision=lambda request, choice, report: run_provisioning(
            request, choice, report, config_path, secrets))


def run_provisioning(request: ProvisionRequest, choice: AwsChoice,
                     report: Callable[[ProvisionProgress], None], config_path: Path,
                     secrets: SecretStore | None, endpoint_url: str | None = None,
                     wheel: Path | None = None) -> ProvisionResult:
    """The engine call the provisioning page runs (on a worker thread)."""
    from installer.provision import Provisioner
    from shared.config import AwsConfig
    from shared.credentials import administrator_clients

    aws = AwsConfig(region=choice.region, bucket="", endpoint_url=endpoint_url)
    clients = administrator_clients(aws, choice.profile, "provision", keys=choice.admin_keys)
    return Provisioner(clients, request, config_path, secrets=secrets,
                       wheel=wheel).run(report)


class WizardHost(Protocol):
    """What the pages use of the wizard (:class:`desktop.ui.wizard.SetupWizard`)."""

    deps: WizardDeps
    state: WizardState
    runner: Runner
    password: str | None
    admin_keys: AwsKeys | None  # typed on the first page; never stored

    def update_state(self, **changes: Any) -> None: ...


def form(page: QWizardPage) -> QFormLayout:
    return QFormLayout(page)
