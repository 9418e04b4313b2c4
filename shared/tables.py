"""Table specs: which tables travel, how each is keyed and merged.

Table names follow PostgreSQL's rules: ``my_schema.ticks`` folds to lower case,
``my_schema."Order Book"`` keeps its case and spaces, ``""`` inside quotes is a
quote. A name without a schema is in ``public``. Column names in ``key`` and
``watermark`` are taken literally (exactly as the column is spelled in the
database).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from shared.errors import TableNameError

MAX_IDENTIFIER_BYTES = 63
_UNQUOTED = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*")
# PostgreSQL (UTF-8) folds only ASCII letters of an unquoted name, and its scanner's
# whitespace is ASCII only (str.isspace() would also skip e.g. U+00A0).
_FOLD_ASCII = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SPACE = frozenset(" \t\n\r\f\v")


class MergeMode(enum.StrEnum):
    UPSERT = "upsert"
    REPLACE_RANGE = "replace-range"
    SNAPSHOT = "snapshot"


@dataclass(frozen=True, order=True)
class QualifiedName:
    """A schema-qualified table name, as PostgreSQL stores it (case and all)."""

    schema: str
    table: str

    def __str__(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.table)}"

    @property
    def parts(self) -> tuple[str, str]:
        return (self.schema, self.table)


def check_identifier(name: str, what: str = "identifier") -> str:
    """An identifier PostgreSQL would store: non-empty, no NUL, at most 63 bytes."""
    if not name:
        raise TableNameError(f"empty {what}")
    if "\x00" in name:
        raise TableNameError(f"{what} {name!r} contains a NUL character")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise TableNameError(
            f"{what} {name!r} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes"
        )
    return name


def quote_ident(name: str) -> str:
    """Display form: bare when PostgreSQL would read it back unchanged, else quoted."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def parse_qualified_name(text: str) -> QualifiedName:
    """Parse ``schema.table`` with PostgreSQL's identifier rules."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise TableNameError(f"table name {text!r} is incomplete")
        if text[i] == '"':
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise TableNameError(f"table name {text!r} has an unterminated quote")
                if text[i] == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            parts.append(check_identifier("".join(buf), "table name part"))
        else:
            m = _UNQUOTED.match(text, i)
            if not m:
                raise TableNameError(
                    f"table name {text!r} has an unexpected character at position {i + 1}",
                    'quote names with spaces or capitals: my_schema."Order Book"',
                )
            parts.append(check_identifier(m.group(0).translate(_FOLD_ASCII), "table name part"))
            i = m.end()
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            break
        if text[i] != ".":
            raise TableNameError(
                f"table name {text!r} has an unexpected character at position {i + 1}",
                'quote names with spaces or capitals: my_schema."Order Book"',
            )
        i += 1
    if len(parts) == 1:
        return QualifiedName("public", parts[0])
    if len(parts) == 2:
        return QualifiedName(parts[0], parts[1])
    raise TableNameError(
        f"table name {text!r} has {len(parts)} parts", "write it as schema.table"
    )


@dataclass(frozen=True)
class TableSpec:
    """One configured table.

    ``key`` empty means "the table's primary key" (read from the database or
    the manifest). ``watermark`` is the day column; ``None`` for snapshot tables.
    """

    name: QualifiedName
    mode: MergeMode = MergeMode.UPSERT
    key: tuple[str, ...] = ()
    watermark: str | None = "run_date"

    def __post_init__(self) -> None:
        for column in self.key:
            check_identifier(column, f"key column of {self.name}")
        if self.watermark is not None:
            check_identifier(self.watermark, f"watermark column of {self.name}")
        if self.mode is not MergeMode.SNAPSHOT and self.watermark is None:
            raise TableNameError(
                f"table {self.name} has mode {self.mode} but no watermark column",
                'give it watermark = "run_date" (or its day column), or mode = "snapshot"',
            )
        if self.mode is MergeMode.SNAPSHOT and self.watermark is not None:
            object.__setattr__(self, "watermark", None)
