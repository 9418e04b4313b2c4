"""What a failing laptop database is told as: one sentence that says what happened.

psycopg files every SQLSTATE of classes 08 (connection), 53 (insufficient resources),
54 (program limit) and 57 (operator intervention) under ``OperationalError``; only the
first and the last mean the connection is gone.
"""

from __future__ import annotations

from typing import Any

import psycopg

from shared.errors import DatabaseError
from shared.tables import QualifiedName, quote_ident


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_program_limit(exc: psycopg.Error) -> bool:
    """A PostgreSQL program limit (SQLSTATE class 54): too many columns or arguments, a
    statement too complex, a value too large."""
    return (exc.sqlstate or "").startswith("54")


def database_error(exc: psycopg.Error, doing: str, *, table: str = "", user: str = "",
                   hint: str = "nothing of this dump was kept; ") -> DatabaseError:
    """``exc`` as the trader reads it; ``doing`` is e.g. "applying dump X"; ``user`` the
    role the sync connected as."""
    state = exc.sqlstate or ""
    where = f" at table {table}" if table else ""
    if state == "57014":  # query canceled, not by the trader's Cancel
        return DatabaseError(
            f"the laptop database cancelled the sync's statement while {doing}{where} "
            f"({first_line(exc)})",
            hint + "something outside the sync stopped it (pg_cancel_backend, a "
            "timeout); sync again")
    if state == "55P03":  # lock not available: lock_timeout
        return DatabaseError(
            f"another session holds rows or tables of the laptop database{where} that the "
            f"sync must change while {doing}, and did not let go ({first_line(exc)})",
            hint.replace("kept", "applied") + "commit or roll back what your SQL tool or "
            "program has open in the laptop database, then sync again")
    if state in ("40001", "40P01"):  # serialization failure, deadlock
        return DatabaseError(
            f"another session changed rows of the laptop database{where} while {doing} "
            f"({first_line(exc)})",
            hint.replace("kept", "applied") + "sync again (when your own programs are not "
            "writing those rows)")
    if state == "42501":  # insufficient privilege
        who = f"user {quote_ident(user)}" if user else "user"
        return DatabaseError(
            f"the laptop database {who} lacks a privilege the sync needs while "
            f"{doing}{where}: {first_line(exc)}",
            hint.replace("kept", "applied") + "grant it as the owner (GRANT … TO "
            f"{quote_ident(user) if user else 'the user'}), or run the sync as the owner "
            "where it must alter or create a table, then sync again")
    if is_program_limit(exc):
        return DatabaseError(
            f"the laptop database hit a PostgreSQL limit while {doing}{where}: "
            f"{first_line(exc)}",
            hint + "this table's shape is beyond what PostgreSQL allows there; "
            "report it with the message above")
    if state == "53100":
        return DatabaseError(
            f"the laptop database's disk is full (while {doing}{where}): {first_line(exc)}",
            hint + "free space on the disk holding PostgreSQL's data, then sync again")
    if state.startswith("53"):
        return DatabaseError(
            f"the laptop database ran out of resources while {doing}{where}: "
            f"{first_line(exc)}",
            hint + "free memory or disk space, or raise PostgreSQL's limits, then sync again")
    if isinstance(exc, psycopg.OperationalError) and (
            not state or state.startswith(("08", "57"))):
        return DatabaseError(
            f"lost the connection to the laptop database while {doing} ({first_line(exc)})",
            hint + "check PostgreSQL and run sync again")
    return DatabaseError(
        f"the laptop database refused {doing.removeprefix('applying ')}{where}: "
        f"{first_line(exc)}",
        hint.replace("kept", "applied") + "fix the table and run sync again")


def rows_kept_out(conn: psycopg.Connection[Any], table: QualifiedName, dump_id: str,
                  doing: str, expected: int, written: int) -> DatabaseError:
    """The sync was ``doing`` ("inserting", "updating", "deleting") ``expected`` rows of
    ``table`` and the table took ``written``: what of the trader's did that, named."""
    row = conn.execute(
        "SELECT array(SELECT tgname::text FROM pg_trigger WHERE tgrelid = c.oid "
        "AND NOT tgisinternal AND tgenabled <> 'D' AND tgtype & 3 = 3 ORDER BY 1), "
        "array(SELECT rulename::text FROM pg_rewrite WHERE ev_class = c.oid "
        "AND rulename <> '_RETURN' ORDER BY 1) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s", table.parts).fetchone()
    triggers, rules = (list(row[0]), list(row[1])) if row else ([], [])
    names = [f"trigger {quote_ident(t)}" for t in triggers] + [
        f"rule {quote_ident(r)}" for r in rules]
    what = ", ".join(names) if names else "a trigger or rule"
    return DatabaseError(
        f"dump {dump_id}: {table} took {written} of the {expected} row(s) the sync was "
        f"{doing} ({what} on the laptop's table?); the sync applies a day whole or not at "
        "all, so nothing of this dump was applied",
        "make it let the sync's rows through (its session's application_name is "
        "market-sync) or disable it, then sync again")
