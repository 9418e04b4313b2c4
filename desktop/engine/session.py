"""The sync's own settings for its session on the laptop database.

* ``REPEATABLE READ``: each dump's transaction sees one snapshot. A row the trader's own
  program adds meanwhile is neither compared nor deleted unsaved (it stays, as any row the
  trader adds), and one the sync must change that the trader changed meanwhile stops the
  dump (SQLSTATE 40001) instead of being overwritten unsaved.
* ``lock_timeout``: a row or table another session holds (an uncommitted edit in a SQL
  tool) stops the dump in words after a while, instead of an "applying" that never ends.
* no ``statement_timeout`` or ``idle_in_transaction_session_timeout``: a database-wide
  limit meant for interactive sessions would cancel a big day's COPY (or the session while
  a part downloads inside the dump's transaction) on every sync, for ever.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

LOCK_WAIT = "60s"  # how long the sync waits for a row or table another session holds


def prepare(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET default_transaction_isolation = 'repeatable read'")
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(LOCK_WAIT)))
    conn.execute("SET statement_timeout = 0")
    conn.execute("SET idle_in_transaction_session_timeout = 0")
