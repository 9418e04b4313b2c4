"""Merge a staged part into a keyed table: classify every incoming row new, unchanged or
diverged in one join, save the losing rows, apply the policy, insert the new rows.

The join compares a 64-bit row digest (:mod:`desktop.engine.digest`) and falls back to
comparing whole rows when a column's type has no digest, or the digest cannot be built.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from desktop.engine.conflict_store import Losers, Version
from desktop.engine.conflicts import MergeContext
from desktop.engine.dberrors import is_program_limit
from desktop.engine.tableplan import OVERRIDING, TableCounts, TablePlan
from shared.config import ConflictPolicy
from shared.manifest import Part

logger = logging.getLogger(__name__)

AT_COL, DIGEST_COL = "_market_sync_at", "_market_sync_digest"
SAME_DAY_COL = "_market_sync_same_day"


class _NoDigest(Exception):
    """This table's rows are compared whole (a column type the digest does not cover)."""


def merge_keyed(ctx: MergeContext, plan: TablePlan, part: Part, stage: sql.Identifier,
                counts: TableCounts, *, local_rows: int) -> None:
    conn = ctx.conn
    changes = sql.Identifier("_market_sync_changes")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(changes))
    blocker = plan.digest_blocker()
    with _planner_settings(conn, part.rows, local_rows):
        try:
            if blocker is not None:
                raise _NoDigest(f"column {blocker} has no row digest")
            with conn.transaction():
                _classify_by_digest(conn, plan, part, stage, changes)
        except (_NoDigest, psycopg.errors.UndefinedFunction, psycopg.OperationalError) as exc:
            # UndefinedFunction: a server without hash_record_extended (before 14); a
            # program limit (SQLSTATE class 54): a digest this server cannot build.
            if isinstance(exc, psycopg.OperationalError) and not is_program_limit(exc):
                raise
            logger.info("%s: %s; comparing whole rows instead", plan.label,
                        str(exc).splitlines()[0])
            _classify_exactly(conn, plan, part, stage, changes)
    conn.execute(sql.SQL("ANALYZE {}").format(changes))
    # Every row of `changes` is looked up by key in the whole table: the join saw only the
    # part's day, and a key that moved to another day is diverged, not new. Where the
    # laptop's row is (tableoid, ctid) goes to a table of its own, keyed by the row's place
    # in `changes`, which thus holds exactly the table's columns: a 1,600-column table
    # still fits.
    laptop = sql.Identifier("_market_sync_laptop")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(laptop))
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE {laptop} AS SELECT c.ctid AS {at}, t.tableoid AS local_tab, "
        "t.ctid AS local_at, {same_day} AS {same} FROM {changes} c JOIN {target} t ON {match}"
    ).format(laptop=laptop, at=sql.Identifier(AT_COL),
             same_day=plan.in_range(part, "t"), same=sql.Identifier(SAME_DAY_COL),
             changes=changes, target=plan.ident, match=plan.key_match("t", "c")))
    row = conn.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {}), count(*), count(*) FILTER (WHERE {}) FROM {}"
    ).format(changes, sql.Identifier(SAME_DAY_COL), laptop)).fetchone()
    assert row is not None
    changed, diverged, diverged_in_day = int(row[0]), int(row[1]), int(row[2])
    new = changed - diverged
    # The laptop rows of the part's day that no incoming key matched: the instance no
    # longer has them (counted first: on a day that only grew there are none to look for).
    local_only = local_rows - part.rows + (changed - diverged_in_day)
    diverged_rows = sql.SQL("FROM {} c JOIN {} l ON l.{} = c.ctid").format(
        changes, laptop, sql.Identifier(AT_COL))
    if diverged:
        # Both versions are saved from where they are (the laptop's row before the update,
        # the incoming one in `changes`), each into a store with the table's own columns.
        losers = Losers(
            sql.SQL("SELECT {} AS key, l.local_tab, l.local_at, c.tableoid AS incoming_tab, "
                    "c.ctid AS incoming_at {}").format(plan.key_json("c"), diverged_rows),
            (Version.at("local", plan.ident), Version.at("incoming", changes, plan.columns)))
        if ctx.policy is ConflictPolicy.ABORT:
            ctx.abort(plan, losers, diverged)
        ctx.save_conflicts(plan, losers)
        if ctx.policy is ConflictPolicy.SERVER_WINS and plan.columns != plan.key:
            assignments = sql.SQL(", ").join(
                sql.SQL("{} = c.{}").format(sql.Identifier(col), sql.Identifier(col))
                for col in plan.columns if col not in plan.key)
            ctx.refuse_referenced(plan, sql.SQL("{} JOIN {} t ON {} WHERE true").format(
                diverged_rows, plan.ident, plan.key_match("t", "c")), updated_from="c")
            ctx.wrote(plan, conn.execute(sql.SQL("UPDATE {} t SET {} {} WHERE {}").format(
                plan.ident, assignments, diverged_rows, plan.key_match("t", "c"))),
                diverged, "updating")
    local_only = _local_only(ctx, plan, part, stage) if local_only > 0 else 0
    if new:
        ctx.wrote(plan, conn.execute(sql.SQL(
            "INSERT INTO {} ({}) {} SELECT {} FROM {} c "
            "WHERE NOT EXISTS (SELECT 1 FROM {} l WHERE l.{} = c.ctid)").format(
                plan.ident, plan.cols(), OVERRIDING, plan.cols("c"), changes, laptop,
                sql.Identifier(AT_COL))), new, "inserting")
    conn.execute(sql.SQL("DROP TABLE {}, {}").format(changes, laptop))
    counts.new += new
    counts.diverged += diverged + local_only
    counts.unchanged += part.rows - new - diverged


def _classify_by_digest(conn: psycopg.Connection[tuple[object, ...]], plan: TablePlan,
                        part: Part, stage: sql.Identifier, changes: sql.Identifier) -> None:
    """``changes`` := the incoming rows whose key the part's day lacks, or whose row
    digest differs from the laptop's row of that key. The hash table holds only the
    laptop's keys and 8-byte digests, so a day of wide rows is never spilled to disk."""
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE {changes} AS SELECT {scols} "
        "FROM {stage} s LEFT JOIN ("
        "  SELECT {keys}, {x_digest} AS {digest} "
        "  FROM {table} x WHERE {in_range}) t ON {match} "
        "WHERE {fk} IS NULL OR {s_digest} <> t.{digest}"
    ).format(changes=changes, scols=plan.cols("s"), fk=sql.Identifier("t", plan.key[0]),
             stage=stage,
             keys=sql.SQL(", ").join(sql.Identifier("x", k) for k in plan.key),
             x_digest=plan.digest("x"), digest=sql.Identifier(DIGEST_COL), table=plan.ident,
             in_range=plan.in_range(part, "x"), match=plan.key_match("s", "t"),
             s_digest=plan.digest("s")))


def _classify_exactly(conn: psycopg.Connection[tuple[object, ...]], plan: TablePlan,
                      part: Part, stage: sql.Identifier, changes: sql.Identifier) -> None:
    """``changes`` by comparing whole rows: for column types PostgreSQL cannot hash."""
    first_key = sql.Identifier("t", plan.key[0])
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE {changes} AS SELECT {scols} "
        "FROM {stage} s LEFT JOIN {target} t ON {match} "
        "WHERE {fk} IS NULL OR ROW({s_cmp}) IS DISTINCT FROM ROW({t_cmp})"
    ).format(changes=changes, scols=plan.cols("s"), fk=first_key,
             stage=stage, target=_day_rows(plan, part),
             match=plan.key_match("s", "t"),
             s_cmp=plan.comparable("s"), t_cmp=plan.comparable("t")))


@contextmanager
def _planner_settings(conn: psycopg.Connection[tuple[object, ...]], incoming: int,
                      local: int) -> Iterator[None]:
    """Transaction-local planner settings for classifying one part, restored afterwards:

    * ``work_mem`` raised (never lowered) to hold the digest hash table: 96 bytes a row
      (a million tick rows took 63 MB), at most 512 MB;
    * ``parallel_tuple_cost = 0``: the planner cannot know that the digest comparison
      keeps only the few changed rows, so it would price a parallel plan as if every
      row went back to the leader, and run the join in one process.
    """
    row = conn.execute(
        "SELECT current_setting('work_mem'), pg_size_bytes(current_setting('work_mem')), "
        "current_setting('parallel_tuple_cost')").fetchone()
    assert row is not None
    saved = {"work_mem": str(row[0]), "parallel_tuple_cost": str(row[2])}
    wanted = min(max(incoming, local) * 96, 512 << 20)
    if wanted > int(str(row[1])):
        conn.execute("SELECT set_config('work_mem', %s, true)", (f"{wanted >> 10}kB",))
    conn.execute("SELECT set_config('parallel_tuple_cost', '0', true)")
    try:
        yield
    finally:  # after an error the whole transaction is rolled back, settings with it
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            for name, value in saved.items():
                conn.execute("SELECT set_config(%s, %s, true)", (name, value))


def _day_rows(plan: TablePlan, part: Part) -> sql.Composable:
    """The laptop's rows of the part's day (the whole table for a snapshot part)."""
    if (part.day is None and not part.watermark_null) or plan.spec.watermark is None:
        return plan.ident
    return sql.SQL("(SELECT * FROM {} WHERE {})").format(plan.ident, plan.in_range(part))


def _local_only(ctx: MergeContext, plan: TablePlan, part: Part, stage: sql.Identifier) -> int:
    """Laptop rows of the part's day (a snapshot: of the table) whose key the server no
    longer has: the dump covers the day, so they are diverged (deleted under
    server-wins, saved first)."""
    missing = sql.SQL("FROM {} t WHERE {} AND NOT EXISTS (SELECT 1 FROM {} s WHERE {})"
                      ).format(plan.ident, plan.in_range(part, "t"), stage,
                               plan.key_match("s", "t"))
    count = ctx.scalar(sql.SQL("SELECT count(*) {}").format(missing))
    if not count:
        return 0
    losers = Losers(sql.SQL("SELECT {} AS key, t.tableoid AS local_tab, t.ctid AS local_at {}"
                            ).format(plan.key_json("t"), missing),
                    (Version.at("local", plan.ident),))
    if ctx.policy is ConflictPolicy.ABORT:
        ctx.abort(plan, losers, count)
    ctx.save_conflicts(plan, losers)
    if ctx.policy is ConflictPolicy.SERVER_WINS:
        ctx.refuse_referenced(plan, missing)
        ctx.wrote(plan, ctx.conn.execute(sql.SQL("DELETE {}").format(missing)), count,
                  "deleting")
    return count
