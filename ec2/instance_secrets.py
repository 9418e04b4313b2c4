"""The instance's secrets, from SSM SecureString into root-only files at boot.

* the app database's password (``/market-sync/<stack>/agent/database-password``)
  into a 0600 pgpass that the backup unit names in ``PGPASSFILE`` (under /run:
  ``ProtectHome=yes`` hides ``~/.pgpass``, and /run never reaches the disk);
* the app's ``.env`` from ``/market-sync/<stack>/app-env/*``, before the app starts.

Nothing here logs or prints a secret's value.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from shared.aws import aws_error
from shared.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as a file only its owner can read, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(partial, 0o600)
    os.replace(partial, path)


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def render_pgpass(conninfo: str, password: str) -> str:
    """One pgpass line for the database and user of ``conninfo`` (any host and port)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(conninfo)
    user = str(params.get("user") or "*")
    dbname = str(params.get("dbname") or user)
    fields = ["*", "*", _pgpass_field(dbname) if dbname != "*" else "*",
              _pgpass_field(user) if user != "*" else "*", _pgpass_field(password)]
    return ":".join(fields) + "\n"


def render_env(values: dict[str, str]) -> str:
    """The app's ``.env``: one ``NAME='value'`` line each (compose reads quoted values as
    they are)."""
    lines = []
    for name in sorted(values):
        value = values[name]
        if not _ENV_NAME.match(name):
            raise ConfigError(f"the app secret {name!r} is not a variable name",
                              "use letters, digits and underscores")
        if "'" in value or "\n" in value or "\r" in value:
            raise ConfigError(f"the app secret {name} holds a quote or a line break",
                              "set it again without one")
        lines.append(f"{name}='{value}'\n")
    return "".join(lines)


class InstanceSecrets:
    """Reads the stack's parameters (SecureString, decrypted) under ``ssm_path``."""

    def __init__(self, ssm: SSMClient, ssm_path: str) -> None:
        self.ssm = ssm
        self.path = ssm_path.rstrip("/")

    def database_password(self) -> str | None:
        return self._parameter(f"{self.path}/agent/database-password")

    def _parameter(self, name: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.ssm.get_parameter(Name=name, WithDecryption=True)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise aws_error(exc, f"read {name}") from None
        except BotoCoreError as exc:
            raise aws_error(exc, f"read {name}") from None
        return response["Parameter"].get("Value")

    def app_source_token(self) -> str | None:
        return self._parameter(f"{self.path}/app-source-token")

    def app_env(self) -> dict[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = f"{self.path}/app-env"
        values: dict[str, str] = {}
        try:
            pages = self.ssm.get_paginator("get_parameters_by_path").paginate(
                Path=prefix, Recursive=False, WithDecryption=True)
            for page in pages:
                for parameter in page.get("Parameters", []):
                    values[parameter["Name"].rsplit("/", 1)[-1]] = parameter.get("Value", "")
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(exc, f"read the app's secrets under {prefix}") from None
        return values


def write_pgpass(secrets: InstanceSecrets, conninfo: str, target: Path) -> bool:
    """The pgpass for the backup; False (and no file) when SSM holds no password."""
    password = secrets.database_password()
    if password is None:
        target.unlink(missing_ok=True)
        logger.warning("no database password in SSM (%s/agent/database-password): the backup "
                       "connects without one", secrets.path)
        return False
    write_private(target, render_pgpass(conninfo, password))
    logger.info("wrote %s (0600)", target)
    return True


def render_git_credentials(url: str, token: str) -> str:
    """A git ``store`` credential line for the host of ``url`` (token as the password)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"the app source {url!r} is not an https git URL")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"https://x-access-token:{urllib.parse.quote(token, safe='')}@{host}\n"


def write_git_credentials(secrets: InstanceSecrets, url: str, target: Path) -> bool:
    """The deploy token of a private git app source, for ``git -c credential.helper=store``;
    False (and no file) when SSM holds none (a public repository)."""
    token = secrets.app_source_token()
    if token is None:
        target.unlink(missing_ok=True)
        return False
    write_private(target, render_git_credentials(url, token))
    return True


def write_app_env(secrets: InstanceSecrets, target: Path) -> int:
    """The app's ``.env`` from SSM; with no parameters there, the app's own file stays (an
    empty one is made where there is none)."""
    values = secrets.app_env()
    if not values:
        if not target.exists():  # a compose file with `env_file: .env` needs one
            write_private(target, "")
        logger.info("no app secrets in SSM under %s/app-env: %s left as it is", secrets.path,
                    target)
        return 0
    write_private(target, render_env(values))
    logger.info("wrote %s (0600) with %d variable(s): %s", target, len(values),
                ", ".join(sorted(values)))
    return len(values)
