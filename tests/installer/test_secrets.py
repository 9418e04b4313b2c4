"""shared.secrets: the keyring only, insecure backends refused unless opted in."""

from __future__ import annotations

import logging

import pytest
from keyring.backends import fail, null

from shared.secrets import AwsKeys, SecretStore, SecretStoreError, choose_backend, is_insecure
from tests.fakes import MemoryKeyring


def test_secrets_round_trip_and_delete(secrets: SecretStore) -> None:
    secrets.set_aws_keys(AwsKeys("AKIAEXAMPLE", "very-secret"))
    assert secrets.aws_keys() == AwsKeys("AKIAEXAMPLE", "very-secret")
    secrets.delete_aws_keys()
    assert secrets.aws_keys() is None
    secrets.delete_aws_keys()  # deleting what is gone is fine


def test_a_secret_is_never_logged_or_printed(secrets: SecretStore,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    keys = AwsKeys("AKIAEXAMPLE", "very-secret")
    secrets.set_aws_keys(keys)
    assert "very-secret" not in caplog.text and "very-secret" not in repr(keys)


def test_fail_and_null_backends_are_insecure() -> None:
    assert is_insecure(fail.Keyring()) and is_insecure(null.Keyring())
    assert not is_insecure(MemoryKeyring())


def test_insecure_default_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    import keyring.backend

    keyring.set_keyring(fail.Keyring())
    monkeypatch.setattr(keyring.backend, "get_all_keyring", lambda: [fail.Keyring()])
    try:
        with pytest.raises(SecretStoreError, match="no secure keyring"):
            choose_backend()
        assert isinstance(choose_backend(allow_insecure=True), fail.Keyring)
    finally:
        keyring.set_keyring(MemoryKeyring())


def test_the_best_secure_backend_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    import keyring.backend

    good = MemoryKeyring()
    keyring.set_keyring(null.Keyring())
    monkeypatch.setattr(keyring.backend, "get_all_keyring", lambda: [fail.Keyring(), good])
    try:
        assert choose_backend() is good
    finally:
        keyring.set_keyring(MemoryKeyring())


def test_empty_secret_is_refused(secrets: SecretStore) -> None:
    with pytest.raises(SecretStoreError):
        secrets.set("database-password", "")
