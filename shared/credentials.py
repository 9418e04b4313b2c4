"""The one credential resolver: which AWS identity a command uses, and saying so.

Two kinds of commands, two rules (README "Set up AWS"):

* Everything the laptop does day to day — ``sync``, ``status``, ``start``, ``stop``,
  ``conflicts``, the tray's worker, ``cost`` — uses the laptop's **operator key**,
  which ``provision`` made and put into the OS keyring. Where there is none (a
  headless machine, an older install), the config's ``profile`` or the default
  credential chain, named as such.
* ``provision``, ``teardown`` and ``deploy-agent`` change the stack and need an
  **administrator**: ``--profile NAME``, ``AWS_PROFILE`` or ``AWS_ACCESS_KEY_ID`` in
  the environment, given explicitly for that run. The operator key is never used for
  them (it would only meet AccessDenied), and the administrator key is never stored.

Every client made for an identity carries it; an AccessDenied then names the identity,
the action and what to do (:func:`shared.aws.aws_error`).
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import UsageError

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.config import AwsConfig
    from shared.secrets import AwsKeys, SecretStore

logger = logging.getLogger(__name__)


class IdentityKind(enum.StrEnum):
    OPERATOR = "operator"  # the laptop's own key, from the OS keyring
    PROFILE = "profile"  # the config's [aws] profile
    DEFAULT_CHAIN = "default-chain"  # environment, ~/.aws, SSO… as boto3 finds them
    ADMINISTRATOR = "administrator"  # explicit, for provision/teardown/deploy-agent only


@dataclass(frozen=True)
class Identity:
    """Who a command acts as, in words the trader recognises."""

    kind: IdentityKind
    label: str  # "the laptop's operator key AKIA…WXYZ (OS keyring)"
    hint: str  # what to do when AWS refuses this identity a permission

    def to_json(self) -> dict[str, str]:
        return {"kind": str(self.kind), "label": self.label}


def key_label(access_key_id: str) -> str:
    """``AKIA…WXYZ``: enough to recognise a key, never the secret."""
    return f"{access_key_id[:4]}…{access_key_id[-4:]}" if len(access_key_id) > 8 else "…"


_OPERATOR_HINT = ("that key may only see, start and stop this stack's instance, set its "
                  "keep-running tag, download dumps and write the app's secrets; if the "
                  "stack was changed since, re-run `market-sync provision --profile ADMIN` "
                  "to refresh its policy")
_ADMIN_HINT = ("use credentials that may manage CloudFormation, IAM, EC2, S3, SSM and "
               "Budgets in this account (an administrator profile)")


def operator_identity(keys: AwsKeys) -> Identity:
    return Identity(IdentityKind.OPERATOR,
                    f"the laptop's operator key {key_label(keys.access_key_id)} (OS keyring)",
                    _OPERATOR_HINT)


def _stored_keys(store: SecretStore | None) -> AwsKeys | None:
    from shared.secrets import SecretStoreError

    if store is None:
        return None
    try:
        return store.aws_keys()
    except SecretStoreError as exc:
        logger.warning("%s", exc.message)
        return None


def laptop_clients(aws: AwsConfig, store: SecretStore | None) -> AwsClients:
    """The clients of every day-to-day command: the operator key first."""
    from shared.aws import AwsClients

    keys = _stored_keys(store)
    if keys is not None:
        return AwsClients.with_keys(aws, keys, operator_identity(keys))
    if aws.profile:
        identity = Identity(IdentityKind.PROFILE,
                            f"the AWS profile {aws.profile!r} from the config",
                            "that profile lacks the permission; run `market-sync provision` "
                            "to give this laptop its own operator key")
    else:
        identity = Identity(IdentityKind.DEFAULT_CHAIN,
                            "the default AWS credentials (no operator key in the keyring)",
                            "run `market-sync provision --profile ADMIN` to give this laptop "
                            "its own operator key")
    return AwsClients(aws, identity=identity)


def administrator_clients(aws: AwsConfig, profile: str | None, command: str, *,
                          keys: AwsKeys | None = None,
                          environ: Mapping[str, str] | None = None) -> AwsClients:
    """The clients of ``provision``/``teardown``/``deploy-agent``: explicit credentials only.

    ``keys`` (typed into the wizard, held in memory), else ``profile`` (``--profile``),
    else ``AWS_PROFILE`` or ``AWS_ACCESS_KEY_ID`` from the environment. Never the
    keyring's operator key, never the config's profile.
    """
    from dataclasses import replace

    from shared.aws import AwsClients

    env = os.environ if environ is None else environ
    if keys is not None:
        label = (f"the administrator key {key_label(keys.access_key_id)} (typed into the "
                 "wizard, not stored)")
        return AwsClients.with_keys(replace(aws, profile=None), keys,
                                    Identity(IdentityKind.ADMINISTRATOR, label, _ADMIN_HINT))
    if profile:
        label = f"the administrator profile {profile!r} (--profile)"
    elif env.get("AWS_ACCESS_KEY_ID"):
        label = (f"the administrator key {key_label(env['AWS_ACCESS_KEY_ID'])} "
                 "(AWS_ACCESS_KEY_ID)")
    elif env.get("AWS_PROFILE"):
        label = f"the administrator profile {env['AWS_PROFILE']!r} (AWS_PROFILE)"
    else:
        raise UsageError(
            f"`{command}` needs administrator credentials, given for this run",
            "pass --profile NAME, or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY; they are used for this run only and never stored (the "
            "laptop's operator key may not change the stack)")
    identity = Identity(IdentityKind.ADMINISTRATOR, label, _ADMIN_HINT)
    return AwsClients(replace(aws, profile=profile or None), identity=identity)


_announced: list[Identity] = []  # this command's identities, told when it has run


def announce(clients: AwsClients) -> None:
    """Remember to say which identity this command acted as: one stderr line once the
    command has run (:func:`tell_identities`), after its own output; an error message
    stays one sentence (an AccessDenied names the identity itself)."""
    if clients.identity is not None and clients.identity not in _announced:
        _announced.append(clients.identity)


def tell_identities(success: bool) -> None:
    """Print (on success) and forget the identities :func:`announce` collected."""
    import sys

    if success:
        for identity in _announced:
            print(f"market-sync: AWS as {identity.label}", file=sys.stderr)
    _announced.clear()


def secret_store(allow_insecure: bool = False) -> SecretStore | None:
    """The keyring, or None (and a log line) where no acceptable one exists."""
    from shared.secrets import SecretStore, SecretStoreError

    try:
        return SecretStore.default(allow_insecure)
    except SecretStoreError as exc:
        logger.info("no keyring: %s", exc.message)
        return None
