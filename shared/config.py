"""The TOML configuration of DESIGN.md, loaded once into frozen dataclasses.

A bad file is a :class:`ConfigError` naming the file, the key and, where it can
be found, the line: never a traceback.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import ConfigError, TableNameError
from shared.tables import MergeMode, QualifiedName, TableSpec, parse_qualified_name
from shared.validate import (
    Problem,
    check_bucket,
    check_conninfo,
    check_endpoint_url,
    check_instance_id,
    check_region,
)


class ConflictPolicy(enum.StrEnum):
    SERVER_WINS = "server-wins"
    LOCAL_WINS = "local-wins"
    ABORT = "abort"


@dataclass(frozen=True)
class AwsConfig:
    region: str
    bucket: str
    profile: str | None = None
    endpoint_url: str | None = None
    prefix: str = ""
    instance_id: str | None = None
    stack: str | None = None  # the CloudFormation stack (written by provision)


@dataclass(frozen=True)
class DatabaseConfig:
    """libpq conninfo without a password (keyring, PGPASSWORD or .pgpass supply it)."""

    conninfo: str


@dataclass(frozen=True)
class SyncConfig:
    policy: ConflictPolicy = ConflictPolicy.SERVER_WINS
    add_missing_columns: bool = False
    keep_dropped_columns: bool = False


@dataclass(frozen=True)
class AppConfig:
    """The market app on the instance, as the laptop sees it."""

    health_url: str | None = None
    port: int = 8000
    login_path: str | None = None  # the app's own login page, e.g. "/login" (KiteConnect)


class NotificationLevel(enum.StrEnum):
    ALL = "all"
    ERRORS_ONLY = "errors-only"
    OFF = "off"


@dataclass(frozen=True)
class UiConfig:
    """Preferences of the tray app (``[ui]``)."""

    notifications: NotificationLevel = NotificationLevel.ALL
    allow_insecure_keyring: bool = False


IMDS_URL = "http://169.254.169.254"


@dataclass(frozen=True)
class AgentConfig:
    """What the agent on the instance needs beyond the backup (``[agent]`` in agent.toml).

    ``imds_url`` is EC2's instance metadata service (plain HTTP on a link-local
    address, by AWS's design); tests point it at 127.0.0.1.
    """

    sns_topic_arn: str | None = None
    imds_url: str = IMDS_URL
    metric_namespace: str = "MarketSync"
    power_off_after_backup: bool = True
    ssm_path: str | None = None  # /market-sync/<stack>: the instance's secrets in SSM


@dataclass(frozen=True)
class Config:
    path: Path
    aws: AwsConfig
    database: DatabaseConfig
    tables: tuple[TableSpec, ...]
    sync: SyncConfig = field(default_factory=SyncConfig)
    app: AppConfig = field(default_factory=AppConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    ui: UiConfig = field(default_factory=UiConfig)

    def table(self, name: QualifiedName) -> TableSpec | None:
        for spec in self.tables:
            if spec.name == name:
                return spec
        return None


_PASSWORD_IN_CONNINFO = re.compile(
    r"(^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@|[?&]password=", re.IGNORECASE
)


def has_password(conninfo: str) -> bool:
    """Whether a libpq conninfo (key=value or URI) carries a password."""
    return _PASSWORD_IN_CONNINFO.search(conninfo) is not None


# A TOML table header: [name], [[name]], [ "name" ], with an optional comment after it.
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]#]*?)\s*\]\]?\s*(?:#.*)?$")


def _endpoint_allowed(url: str) -> bool:
    """https anywhere; plain http only to this machine (moto, LocalStack)."""
    return check_endpoint_url(url) is None


class _Section:
    """Typed access to one TOML table, reporting problems with file, key and line."""

    def __init__(self, loader: _Loader, name: str, data: Mapping[str, Any], known: set[str]):
        self.loader, self.name, self.data = loader, name, data
        for key in data:
            if key not in known:
                raise loader.error(
                    name, key, f"unknown key {key!r}", f"known keys: {', '.join(sorted(known))}"
                )

    def get(self, key: str, kind: type, default: Any = ..., what: str = "") -> Any:
        if key not in self.data:
            if default is ...:
                raise self.loader.error(self.name, key, f"missing key {key!r}", "")
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            expected = what or {str: "a string", int: "a whole number", bool: "true or false",
                                list: "a list"}.get(kind, kind.__name__)
            raise self.loader.error(
                self.name, key, f"{key!r} must be {expected}, not {_describe(value)}", ""
            )
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list, [])
        if not all(isinstance(v, str) for v in values):
            raise self.loader.error(self.name, key, f"{key!r} must be a list of strings", "")
        return tuple(values)

    def checked(self, key: str, check: Callable[[str], Problem | None],
                default: Any = ...) -> Any:
        """A string key that must pass ``check`` (shared/validate.py)."""
        value = self.get(key, str, default)
        if key in self.data:
            problem = check(value)
            if problem is not None:
                raise self.loader.error(self.name, key, problem.message, problem.hint)
        return value

    def choice(self, key: str, enum_type: type[enum.StrEnum], default: enum.StrEnum) -> Any:
        raw = self.get(key, str, str(default))
        try:
            return enum_type(raw)
        except ValueError:
            allowed = " | ".join(str(m) for m in enum_type)
            raise self.loader.error(
                self.name, key, f"{key!r} is {raw!r}; it must be one of {allowed}", ""
            ) from None


def _describe(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


class _Loader:
    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def line_of(self, section: str, key: str) -> int | None:
        """Best effort: the line where ``key =`` stands inside ``[section]`` (a top-level
        key may also be the header ``[key]`` or ``[[key]]``)."""
        header, _, index = section.partition("[")
        wanted = int(index.rstrip("]")) if index else 0
        seen = -1
        in_section = header == ""
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for number, line in enumerate(self.lines, start=1):
            found = _HEADER.match(line)
            if found:
                name = re.sub(r"\s*\.\s*", ".", found.group(2)).replace('"', "")
                if header == "" and name == key:
                    return number
                in_section = name == header
                if in_section and found.group(1) == "[[":
                    seen += 1
                    in_section = seen == wanted
                continue
            if in_section and pattern.match(line):
                return number
        return None

    def error(self, section: str, key: str, message: str, hint: str) -> ConfigError:
        line = self.line_of(section, key)
        where = f"{self.path}" + (f", line {line}" if line else "")
        place = f"[{section}] " if section else ""
        return ConfigError(f"{where}: {place}{message}", hint)


def load_config(path: Path) -> Config:
    """Read and validate the config file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no configuration file at {path}",
            "run `market-sync provision` to create one, or pass --config PATH",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries "(at line N, column M)".
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    loader = _Loader(path, text)
    root = _Section(loader, "", data, {"aws", "database", "tables", "sync", "app", "agent", "ui"})

    aws = _Section(loader, "aws", root.get("aws", dict, what="a table [aws]"),
                   {"region", "profile", "endpoint_url", "bucket", "prefix", "instance_id",
                    "stack"})
    prefix = aws.get("prefix", str, "")
    if prefix.startswith("/") or "//" in prefix:
        raise loader.error("aws", "prefix", f"prefix {prefix!r} would make S3 keys with "
                           "empty path segments", 'write it like "prod/" (no leading slash)')
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    aws_config = AwsConfig(
        region=aws.checked("region", check_region, "ap-south-1"),
        # Empty until `provision` has made the bucket; a name must follow S3's rules.
        bucket=aws.checked("bucket", lambda name: check_bucket(name) if name else None),
        profile=aws.get("profile", str, None),
        endpoint_url=aws.checked("endpoint_url", check_endpoint_url, None),
        prefix=prefix,
        instance_id=aws.checked("instance_id", check_instance_id, None),
        stack=aws.get("stack", str, None),
    )

    db = _Section(loader, "database", root.get("database", dict, what="a table [database]"),
                  {"conninfo"})
    conninfo = db.get("conninfo", str)
    if has_password(conninfo):
        raise loader.error(
            "database", "conninfo", "conninfo contains a password",
            "remove it; market-sync reads the password from the OS keyring, PGPASSWORD or .pgpass",
        )
    conninfo = db.checked("conninfo", check_conninfo)

    tables: list[TableSpec] = []
    raw_tables = root.get("tables", list, [], what="an array of [[tables]]")
    for index, raw in enumerate(raw_tables):
        name = f"tables[{index}]"
        if not isinstance(raw, dict):
            raise loader.error("", "tables", f"{name} must be a table ([[tables]])", "")
        section = _Section(loader, name, raw, {"name", "key", "watermark", "mode"})
        mode = section.choice("mode", MergeMode, MergeMode.UPSERT)
        if mode is MergeMode.SNAPSHOT and "watermark" in raw:
            raise loader.error(name, "watermark", "snapshot tables have no watermark",
                               "remove the watermark key, or choose another mode")
        try:
            qualified = parse_qualified_name(section.get("name", str))
            spec = TableSpec(
                name=qualified, mode=mode, key=section.str_list("key"),
                watermark=None if mode is MergeMode.SNAPSHOT
                else section.get("watermark", str, "run_date"),
            )
        except TableNameError as exc:
            raise loader.error(name, "name", exc.message, exc.hint) from None
        if any(t.name == spec.name for t in tables):
            raise loader.error(name, "name", f"table {spec.name} is listed twice", "")
        tables.append(spec)

    sync = _Section(loader, "sync", root.get("sync", dict, {}), {"policy", "add_missing_columns",
                                                                  "keep_dropped_columns"})
    app = _Section(loader, "app", root.get("app", dict, {}), {"health_url", "port", "login_path"})
    login_path = app.get("login_path", str, None)
    if login_path is not None and not re.match(r"^/[A-Za-z0-9._~/?=&%-]*$", login_path):
        raise loader.error("app", "login_path", f"login_path {login_path!r} is not a path",
                           'write it like "/login"')
    agent = _parse_agent(loader, root)
    ui = _Section(loader, "ui", root.get("ui", dict, {}),
                  {"notifications", "allow_insecure_keyring"})
    return Config(
        path=path,
        aws=aws_config,
        database=DatabaseConfig(conninfo=conninfo),
        tables=tuple(tables),
        sync=SyncConfig(
            policy=sync.choice("policy", ConflictPolicy, ConflictPolicy.SERVER_WINS),
            add_missing_columns=sync.get("add_missing_columns", bool, False),
            keep_dropped_columns=sync.get("keep_dropped_columns", bool, False),
        ),
        app=AppConfig(health_url=app.get("health_url", str, None), port=app.get("port", int, 8000),
                      login_path=login_path),
        agent=agent,
        ui=UiConfig(
            notifications=ui.choice("notifications", NotificationLevel, NotificationLevel.ALL),
            allow_insecure_keyring=ui.get("allow_insecure_keyring", bool, False),
        ),
    )


_IMDS_URLS = (IMDS_URL, "http://[fd00:ec2::254]")


def _parse_agent(loader: _Loader, root: _Section) -> AgentConfig:
    agent = _Section(loader, "agent", root.get("agent", dict, {}),
                     {"sns_topic_arn", "imds_url", "metric_namespace", "power_off_after_backup",
                      "ssm_path"})
    imds_url = agent.get("imds_url", str, IMDS_URL).rstrip("/")
    loopback = _endpoint_allowed(imds_url) and not imds_url.startswith("https://")
    if imds_url not in _IMDS_URLS and not loopback:
        raise loader.error("agent", "imds_url", f"imds_url {imds_url!r} is not EC2's metadata "
                           "service", f"leave it out (default {IMDS_URL}); tests use 127.0.0.1")
    topic = agent.get("sns_topic_arn", str, None)
    if topic is not None and not topic.startswith("arn:"):
        raise loader.error("agent", "sns_topic_arn", f"sns_topic_arn {topic!r} is not an ARN",
                           "it looks like arn:aws:sns:ap-south-1:123456789012:market-sync")
    path = agent.get("ssm_path", str, None)
    if path is not None and not re.match(r"^/market-sync/[A-Za-z][A-Za-z0-9-]*$", path):
        raise loader.error("agent", "ssm_path", f"ssm_path {path!r} is not /market-sync/<stack>",
                           "leave it as market-sync rendered it")
    return AgentConfig(
        ssm_path=path,
        sns_topic_arn=topic,
        imds_url=imds_url,
        metric_namespace=agent.get("metric_namespace", str, "MarketSync"),
        power_off_after_backup=agent.get("power_off_after_backup", bool, True),
    )
