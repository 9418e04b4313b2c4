"""The laptop database password comes from the OS keyring, never from the config."""

from __future__ import annotations

import pytest
from keyring.backends import fail

from desktop.commands.sync import database_password
from shared.secrets import DATABASE_PASSWORD, SERVICE
from tests.fakes import MemoryKeyring, keyring_backend


def test_password_stored_in_the_keyring_is_used() -> None:
    store = MemoryKeyring()
    store.set_password(SERVICE, DATABASE_PASSWORD, "s3cret")
    with keyring_backend(store):
        assert database_password() == "s3cret"


def test_without_a_secure_keyring_libpq_sources_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring.backend

    monkeypatch.setattr(keyring.backend, "get_all_keyring", lambda: [])
    with keyring_backend(fail.Keyring()):
        assert database_password() is None
