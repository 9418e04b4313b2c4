"""Edit a TOML file the trader may have written by hand, keeping its comments and layout.

Reading for use goes through :mod:`shared.config` (tomllib); this module is only for the
two places that rewrite part of a config file: the Settings dialog and ``provision``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.toml_document import TOMLDocument

from shared.errors import ConfigError


def load_document(path: Path, header: str, hint: str) -> TOMLDocument:
    """``path`` as an editable document; a new one with ``header`` as its first comment
    when the file does not exist or is empty. A file that is not TOML is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        document = tomlkit.parse(text)
    except (OSError, TOMLKitError) as exc:
        raise ConfigError(f"cannot update {path}: {exc}", hint) from None
    if not text.strip():
        document.add(tomlkit.comment(header))
    return document


def table(document: MutableMapping[str, Any], name: str, path: Path,
          hint: str) -> MutableMapping[str, Any]:
    """The ``[name]`` table of ``document``, added at the end when missing."""
    if name not in document:
        document[name] = tomlkit.table()
    found = document[name]
    if not isinstance(found, MutableMapping):
        raise ConfigError(f"cannot update {path}: [{name}] is not a table", hint)
    return found


def dumps(document: TOMLDocument) -> str:
    return tomlkit.dumps(document)
