"""Passwords and keys in the OS keyring, and nowhere else.

:func:`choose_backend` picks the best keyring that works here (Keychain,
Windows Credential Locker, Secret Service, KWallet…) and refuses the ones
that are not secret at all — the plaintext file keyring, the ``fail`` and
``null`` backends — unless the trader opts in with ``allow_insecure``.
Secrets are never logged: only their names are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import MarketSyncError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

logger = logging.getLogger(__name__)

SERVICE = "market-sync"
AWS_ACCESS_KEY_ID = "aws-access-key-id"
AWS_SECRET_ACCESS_KEY = "aws-secret-access-key"
DATABASE_PASSWORD = "database-password"

# Backends that keep nothing secret (or nothing at all), by "module.Class".
INSECURE_BACKENDS = frozenset({
    "keyring.backends.fail.Keyring",
    "keyring.backends.null.Keyring",
    "keyrings.alt.file.PlaintextKeyring",
    "keyrings.alt.Windows.RegistryKeyring",
})


class SecretStoreError(MarketSyncError):
    """No usable keyring, or the keyring refused to read or store a secret."""


def backend_name(backend: KeyringBackend) -> str:
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def is_insecure(backend: KeyringBackend) -> bool:
    from keyring.backends.chainer import ChainerBackend

    if isinstance(backend, ChainerBackend):
        return all(is_insecure(b) for b in backend.backends) if backend.backends else True
    return backend_name(backend) in INSECURE_BACKENDS


def choose_backend(allow_insecure: bool = False) -> KeyringBackend:
    """The keyring to use: the configured one if it is secure, else the best secure one."""
    import keyring
    import keyring.backend

    configured = keyring.get_keyring()
    if not is_insecure(configured):
        return configured
    candidates = sorted(
        (b for b in keyring.backend.get_all_keyring() if not is_insecure(b)),
        key=lambda b: b.priority, reverse=True)
    if candidates:
        logger.info("using the keyring %s", backend_name(candidates[0]))
        return candidates[0]
    if allow_insecure:
        logger.warning("no secure keyring here; using %s because you allowed it",
                       backend_name(configured))
        return configured
    raise SecretStoreError(
        f"no secure keyring on this machine (only {backend_name(configured)})",
        "install or unlock one (e.g. GNOME Keyring or KWallet on Linux), or opt in to an "
        "insecure one knowingly",
    )


@dataclass(frozen=True)
class AwsKeys:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"AwsKeys(access_key_id={self.access_key_id[:4]}…)"


class SecretStore:
    """Named secrets of market-sync in one keyring backend."""

    def __init__(self, backend: KeyringBackend, service: str = SERVICE) -> None:
        self.backend = backend
        self.service = service

    @classmethod
    def default(cls, allow_insecure: bool = False) -> SecretStore:
        return cls(choose_backend(allow_insecure))

    def get(self, name: str) -> str | None:
        from keyring.errors import KeyringError

        try:
            return self.backend.get_password(self.service, name)
        except KeyringError as exc:
            raise SecretStoreError(f"the keyring refused to read {name!r}: {exc}",
                                   "unlock the keyring and try again") from None

    def set(self, name: str, value: str) -> None:
        from keyring.errors import KeyringError

        if not value:
            raise SecretStoreError(f"refusing to store an empty {name!r}")
        try:
            self.backend.set_password(self.service, name, value)
        except KeyringError as exc:
            raise SecretStoreError(f"the keyring refused to store {name!r}: {exc}",
                                   "unlock the keyring and try again") from None
        logger.info("stored %s in the keyring", name)

    def delete(self, name: str) -> None:
        from keyring.errors import KeyringError, PasswordDeleteError

        try:
            self.backend.delete_password(self.service, name)
        except PasswordDeleteError:
            return
        except KeyringError as exc:
            raise SecretStoreError(f"the keyring refused to delete {name!r}: {exc}") from None

    # -- AWS keys ---------------------------------------------------------------------------
    def aws_keys(self) -> AwsKeys | None:
        key_id = self.get(AWS_ACCESS_KEY_ID)
        secret = self.get(AWS_SECRET_ACCESS_KEY)
        return AwsKeys(key_id, secret) if key_id and secret else None

    def set_aws_keys(self, keys: AwsKeys) -> None:
        self.set(AWS_ACCESS_KEY_ID, keys.access_key_id)
        self.set(AWS_SECRET_ACCESS_KEY, keys.secret_access_key)

    def delete_aws_keys(self) -> None:
        self.delete(AWS_ACCESS_KEY_ID)
        self.delete(AWS_SECRET_ACCESS_KEY)
