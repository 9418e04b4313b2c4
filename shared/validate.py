"""What the trader types, checked where they type it: one sentence per problem.

The config loader, the Settings dialog and the first-run wizard all call these, so a
wrong region, bucket, instance id, conninfo or endpoint reads the same everywhere.
Light to import and to call: no boto3, botocore or psycopg is imported (the AWS
region list is read from botocore's data file; the conninfo is parsed by the rules of
libpq's ``conninfo_parse``, its keywords checked against libpq's list).
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import ipaddress
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """Why a value is refused, and what to type instead."""

    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


# -- AWS region -------------------------------------------------------------------------------
_FALLBACK_REGIONS = ("ap-south-1", "ap-south-2")


@functools.cache
def aws_regions() -> tuple[str, ...]:
    """The regions botocore knows (its ``data/partitions.json``), without importing it."""
    try:
        spec = importlib.util.find_spec("botocore")
        folder = Path(next(iter(spec.submodule_search_locations or ()))) if spec else None
        data = json.loads((folder / "data" / "partitions.json").read_text("utf-8")) \
            if folder else {}
    except (OSError, ValueError, StopIteration):
        data = {}
    regions = {name for partition in data.get("partitions", [])
               for name in partition.get("regions", {}) if not name.endswith("-global")}
    return tuple(sorted(regions)) if regions else _FALLBACK_REGIONS


def check_region(value: str) -> Problem | None:
    if value in aws_regions():
        return None
    close = difflib.get_close_matches(value.strip().lower(), aws_regions(), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "e.g. ap-south-1 (Mumbai)"
    return Problem(f"region {value!r} is not an AWS region", hint)


# -- S3 bucket ------------------------------------------------------------------------------
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket(value: str) -> Problem | None:
    """S3's general purpose bucket naming rules."""
    hint = "3–63 lowercase letters, digits, dots and hyphens, starting and ending with a " \
        "letter or digit, e.g. market-sync-123456789012-ap-south-1"
    if not value:
        return Problem("the bucket name is empty", hint)
    if not _BUCKET.match(value):
        return Problem(f"bucket name {value!r} breaks S3's naming rules", hint)
    if ".." in value or ".-" in value or "-." in value:
        return Problem(f"bucket name {value!r} has a dot next to a dot or hyphen", hint)
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        return Problem(f"bucket name {value!r} looks like an IP address", hint)
    if value.startswith(_BUCKET_PREFIXES) or value.endswith(_BUCKET_SUFFIXES):
        return Problem(f"bucket name {value!r} uses a prefix or suffix S3 reserves", hint)
    return None


# -- EC2 instance id ----------------------------------------------------------------------------
_INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


def check_instance_id(value: str) -> Problem | None:
    if _INSTANCE_ID.match(value):
        return None
    return Problem(f"instance id {value!r} is not an EC2 instance id",
                   "it looks like i-0123456789abcdef0; the EC2 console shows it")


# -- endpoint URL -------------------------------------------------------------------------------
def check_endpoint_url(value: str) -> Problem | None:
    """https anywhere; plain http only to this machine (moto, LocalStack)."""
    hint = "only https endpoints are used, except on this machine, e.g. http://127.0.0.1:5000"
    try:
        parts = urllib.parse.urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return Problem(f"endpoint_url {value!r} is not a URL", hint)
    if not host or parts.scheme not in ("http", "https"):
        return Problem(f"endpoint_url {value!r} is not an http(s) URL", hint)
    if parts.scheme == "https" or host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return Problem(f"endpoint_url {value!r} is not https", hint)


# -- libpq conninfo -----------------------------------------------------------------------------
# libpq's connection keywords (PQconndefaults, PostgreSQL 18); the tests check this list
# against the libpq psycopg is linked with.
CONNINFO_KEYWORDS = frozenset({
    "application_name", "channel_binding", "client_encoding", "connect_timeout", "dbname",
    "fallback_application_name", "gssdelegation", "gssencmode", "gsslib", "host", "hostaddr",
    "keepalives", "keepalives_count", "keepalives_idle", "keepalives_interval", "krbsrvname",
    "load_balance_hosts", "max_protocol_version", "min_protocol_version", "oauth_client_id",
    "oauth_client_secret", "oauth_issuer", "oauth_scope", "options", "passfile", "password",
    "port", "replication", "require_auth", "requirepeer", "scram_client_key",
    "scram_server_key", "service", "ssl_max_protocol_version", "ssl_min_protocol_version",
    "sslcert", "sslcertmode", "sslcompression", "sslcrl", "sslcrldir", "sslkey",
    "sslkeylogfile", "sslmode", "sslnegotiation", "sslpassword", "sslrootcert", "sslsni",
    "target_session_attrs", "tcp_user_timeout", "user",
})
_URI_PREFIXES = ("postgresql://", "postgres://")
_CONNINFO_HINT = "write it like host=localhost port=5432 dbname=market user=trader"


class ConninfoSyntaxError(ValueError):
    pass


def parse_conninfo(text: str) -> dict[str, str]:
    """``keyword=value`` pairs as libpq's ``conninfo_parse`` reads them (values may be
    single-quoted; a backslash escapes the next character). Raises ConninfoSyntaxError."""
    result: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return result
        start = i
        while i < n and text[i] != "=" and not text[i].isspace():
            i += 1
        keyword = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "=":
            raise ConninfoSyntaxError(f'missing "=" after {keyword!r}')
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ConninfoSyntaxError("a quoted value is not closed")
                if text[i] == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    value.append(text[i])
                    i += 1
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                else:
                    value.append(text[i])
                    i += 1
        result[keyword] = "".join(value)


def conninfo_keywords(text: str) -> list[str]:
    """The keywords ``text`` names (key=value form or a postgresql:// URI)."""
    if text.startswith(_URI_PREFIXES):
        query = urllib.parse.urlsplit(text).query
        return [k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)]
    return list(parse_conninfo(text))


def check_conninfo(value: str) -> Problem | None:
    try:
        keywords = conninfo_keywords(value)
    except (ConninfoSyntaxError, ValueError) as exc:
        return Problem(f"conninfo {value!r} is not a libpq connection string: {exc}",
                       _CONNINFO_HINT)
    for keyword in keywords:
        if keyword not in CONNINFO_KEYWORDS and not (keyword == "ssl" and
                                                     value.startswith(_URI_PREFIXES)):
            close = difflib.get_close_matches(keyword, sorted(CONNINFO_KEYWORDS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else _CONNINFO_HINT
            return Problem(f"conninfo has an unknown keyword {keyword!r}", hint)
    return None


def build_conninfo(host: str, port: str, dbname: str, user: str) -> str:
    """The wizard's fields as one conninfo (values quoted where libpq needs it)."""
    parts = []
    for keyword, raw in (("host", host), ("port", port), ("dbname", dbname), ("user", user)):
        value = raw.strip()
        if value:
            if not value or any(c.isspace() or c in "'\\" for c in value):
                value = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            parts.append(f"{keyword}={value}")
    return " ".join(parts)
