"""Fixtures of the installer tests: a real (tiny) wheel built by pip, the in-memory keyring
of tests/fakes.py, and an AwsClients pointed at the moto server."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.agent import build_wheel
from installer.provision import ProvisionRequest
from shared.aws import AwsClients
from shared.config import AwsConfig
from shared.devtools.motoserver import MotoServer
from shared.secrets import SecretStore
from tests.fakes import MemoryKeyring

_BACKEND = '''
"""A PEP 517 backend in the tree: pip builds this project without fetching anything."""
import base64, hashlib, zipfile

NAME, VERSION = "market_sync", "0.1.0"
FILES = {"market_sync_probe/__init__.py": b"VERSION = '0.1.0'\\n"}

def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    dist = f"{NAME}-{VERSION}.dist-info"
    files = dict(FILES)
    metadata = f"Metadata-Version: 2.1\\nName: market-sync\\nVersion: {VERSION}\\n"
    files[f"{dist}/METADATA"] = metadata.encode()
    files[f"{dist}/WHEEL"] = (b"Wheel-Version: 1.0\\nGenerator: test\\n"
                              b"Root-Is-Purelib: true\\nTag: py3-none-any\\n")
    record = [_record_line(p, d) for p, d in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(f"{wheel_directory}/{name}", "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return name
'''


def build_probe_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel made by ``pip wheel`` (installer.agent.build_wheel) from a tiny project."""
    project = tmp_path_factory.mktemp("probe-project")
    (project / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = []
        build-backend = "backend"
        backend-path = ["."]
    '''))
    (project / "backend.py").write_text(_BACKEND)
    return build_wheel(project, tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="session")
def agent_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_probe_wheel(tmp_path_factory)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """The in-memory keyring (tests/fakes.py) as the process's keyring."""
    from tests.fakes import keyring_backend

    backend = MemoryKeyring()
    with keyring_backend(backend):
        yield backend


@pytest.fixture
def secrets(memory_keyring: MemoryKeyring) -> SecretStore:
    return SecretStore(memory_keyring)


@pytest.fixture
def clients(moto_server: MotoServer) -> Iterator[AwsClients]:
    moto_server.reset()
    yield AwsClients(AwsConfig(region="ap-south-1", bucket="",
                               endpoint_url=moto_server.endpoint_url))


@pytest.fixture
def request_() -> ProvisionRequest:
    return ProvisionRequest(alert_email="trader@example.com", trader_ip="49.36.10.20",
                            app_source="https://github.com/example/market-app.git")
