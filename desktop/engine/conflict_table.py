"""Conflicts as a table a spreadsheet can use (``market-sync conflicts --csv`` and the
Conflicts window's Export CSV): one row per conflict, one column per key part, then each
field twice, the laptop's version and the incoming one. Times in IST, labelled.
No Qt, no psycopg.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from desktop.engine.records import ConflictRecord
from shared.calendar import IST


def cell(value: Any) -> str:
    """One value as a spreadsheet cell: empty for NULL, JSON for structures, a moment with
    its time zone in IST (labelled)."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    return in_ist(str(value))


_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)$")


def in_ist(text: str) -> str:
    """A timestamptz as the ledger keeps it (ISO, any offset) shown in IST; else as is."""
    if not _MOMENT.match(text):
        return text
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    shown = moment.astimezone(IST)
    return f"{shown:%Y-%m-%d %H:%M:%S}" + (f".{shown:%f}".rstrip("0").rstrip(".")
                                           if shown.microsecond else "") + " IST"


def ist(moment: dt.datetime | None) -> str:
    return f"{moment.astimezone(IST):%Y-%m-%d %H:%M:%S}" if moment else ""


def key_columns(records: Iterable[ConflictRecord]) -> list[str]:
    """The key parts of every record, in the order they first appear."""
    return list(dict.fromkeys(k for r in records for k in (r.key or {})))


def field_columns(records: Iterable[ConflictRecord]) -> list[str]:
    return list(dict.fromkeys(c for r in records
                              for row in (r.local_row, r.incoming_row) if row for c in row))


def conflict_table(records: Sequence[ConflictRecord]) -> tuple[list[str], list[list[str]]]:
    """The header and the rows."""
    keys, fields = key_columns(records), field_columns(records)
    header = ["conflict_id", "dump_id", "table", *keys, "winner", "policy",
              "detected_at_ist", "restored_at_ist"]
    for name in fields:
        header += [f"laptop:{name}", f"incoming:{name}"]
    rows = []
    for r in records:
        key = r.key or {}
        row = [str(r.id), r.dump_id, r.table_name, *(cell(key.get(k)) for k in keys),
               r.winner, r.policy, ist(r.detected_at), ist(r.restored_at)]
        for name in fields:
            row += [cell((r.local_row or {}).get(name)) if r.local_row else "",
                    cell((r.incoming_row or {}).get(name)) if r.incoming_row else ""]
        rows.append(row)
    return header, rows
