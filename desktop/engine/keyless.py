"""Merge a staged part into a keyless (``replace-range``) table: the laptop's day and the
dump's compared as multisets (``EXCEPT ALL``; types without ``=``, and jsonb, as text).

Rows only the dump has are new, rows only the laptop has are diverged. With no diverged
rows only the new rows are inserted. With diverged rows, ``server-wins`` saves the
laptop-only rows whole, deletes them and inserts the new ones (rows both sides have stay
as they are: a laptop-only column's value, and a foreign key onto them, with them);
``local-wins`` keeps the laptop's day and saves the dump-only rows.
"""

from __future__ import annotations

from psycopg import sql

from desktop.engine.conflict_store import Losers, Version
from desktop.engine.conflicts import MergeContext
from desktop.engine.digest import compared_as_text
from desktop.engine.tableplan import OVERRIDING, TableCounts, TablePlan, type_sql
from shared.config import ConflictPolicy
from shared.manifest import Part

DOOMED = sql.Identifier("_market_sync_doomed")  # where the laptop-only rows of a day are


def merge_keyless(ctx: MergeContext, plan: TablePlan, part: Part, stage: sql.Identifier,
                  counts: TableCounts) -> None:
    conn = ctx.conn
    local_rows = sql.SQL("SELECT {} FROM {} t WHERE {}").format(
        plan.comparable("t", named=True), plan.ident, plan.in_range(part, "t"))
    incoming_rows = sql.SQL("SELECT {} FROM {} s").format(plan.comparable("s", named=True), stage)
    changes = sql.Identifier("_market_sync_changes")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(changes))
    conn.execute(sql.SQL("CREATE TEMP TABLE {} AS ({}) EXCEPT ALL ({})").format(
        changes, incoming_rows, local_rows))
    new = incoming_only = ctx.scalar(sql.SQL("SELECT count(*) FROM {}").format(changes))
    # Counted the cheap way (a hashed EXCEPT ALL); only a day that has laptop-only rows
    # and will save them is numbered row by row to find which rows those are.
    diverged = ctx.scalar(sql.SQL("SELECT count(*) FROM (({}) EXCEPT ALL ({})) x").format(
        local_rows, incoming_rows))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(DOOMED))
    doomed = _laptop_only(ctx, plan, part, stage) \
        if diverged and ctx.policy is not ConflictPolicy.LOCAL_WINS else None
    restore = sql.SQL(", ").join(
        sql.SQL("c.{}::{}").format(sql.Identifier(col), type_sql(plan.types[col]))
        if compared_as_text(plan.types[col])
        else sql.SQL("c.{}").format(sql.Identifier(col))
        for col in plan.columns)
    if diverged:
        if ctx.policy is ConflictPolicy.LOCAL_WINS:
            # The dump's rows the laptop lacks, with their own types again, in a table of
            # their own.
            kept = sql.Identifier("_market_sync_losers")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(kept))
            conn.execute(sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {} c").format(
                kept, restore, changes))
            losers = Losers(sql.SQL(
                "SELECT NULL::jsonb AS key, x.tableoid AS incoming_tab, x.ctid AS incoming_at "
                "FROM {} x").format(kept), (Version.at("incoming", kept, plan.columns),))
        else:
            # The laptop's rows the dump lacks, whole (a laptop-only column's value too).
            assert doomed is not None
            losers = Losers(sql.SQL(
                "SELECT NULL::jsonb AS key, t.tableoid AS local_tab, t.ctid AS local_at {}"
            ).format(doomed), (Version.at("local", plan.ident),))
        if ctx.policy is ConflictPolicy.ABORT:
            ctx.abort(plan, losers, diverged)
        ctx.save_conflicts(plan, losers)
        if ctx.policy is ConflictPolicy.SERVER_WINS:
            # Only the rows the dump lacks go, only the rows the laptop lacks come: a row
            # on both sides stays as it is (a laptop-only column's value, and a foreign key
            # of the trader's onto it, with it).
            assert doomed is not None
            ctx.refuse_referenced(plan, doomed)
            ctx.wrote(plan, conn.execute(sql.SQL("DELETE {}").format(doomed)), diverged,
                      "deleting")
        else:  # local wins: the laptop's day is kept; what the server had instead is saved
            new = 0
    if new:
        inserted = conn.execute(sql.SQL("INSERT INTO {} ({}) {} SELECT {} FROM {} c").format(
            plan.ident, plan.cols(), OVERRIDING, restore, changes))
        ctx.wrote(plan, inserted, new, "inserting")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}").format(changes, DOOMED))
    counts.new += new
    counts.diverged += diverged
    counts.unchanged += part.rows - incoming_only


def _laptop_only(ctx: MergeContext, plan: TablePlan, part: Part,
                 stage: sql.Identifier) -> sql.Composed:
    """``FROM <table> t WHERE …``: the laptop's rows of the day the dump lacks, as
    ``EXCEPT ALL`` counts them (of n alike rows where the dump has m < n, n − m go), noted
    by place once so that the rows saved are the rows deleted. One pass over both sides:
    each group of alike rows numbers the laptop's and counts the dump's."""
    tab, at, dump, n, m = (sql.Identifier(f"_market_sync_{x}")
                           for x in ("tab", "at", "dump", "n", "m"))
    alike = sql.SQL(", ").join(sql.Identifier(c) for c in plan.columns)
    both = sql.SQL(
        "SELECT false AS {dump}, t.tableoid AS {tab}, t.ctid AS {at}, {local} "
        "FROM {table} t WHERE {in_range} "
        "UNION ALL SELECT true, NULL::oid, NULL::tid, {incoming} FROM {stage} s").format(
            dump=dump, tab=tab, at=at, local=plan.comparable("t", named=True),
            table=plan.ident, in_range=plan.in_range(part, "t"),
            incoming=plan.comparable("s", named=True), stage=stage)
    places = DOOMED
    ctx.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(places))
    ctx.conn.execute(sql.SQL(
        "CREATE TEMP TABLE {places} AS SELECT {tab}, {at} FROM ("
        "SELECT {dump}, {tab}, {at}, row_number() OVER (PARTITION BY {alike}, {dump}) AS {n}, "
        "count(*) FILTER (WHERE {dump}) OVER (PARTITION BY {alike}) AS {m} FROM ({both}) u) v "
        "WHERE NOT {dump} AND {n} > {m}").format(
            places=places, tab=tab, at=at, dump=dump, alike=alike, n=n, m=m, both=both))
    return sql.SQL("FROM {table} t WHERE (t.tableoid, t.ctid) IN (SELECT {tab}, {at} FROM {places})"
                   ).format(table=plan.ident, tab=tab, at=at, places=places)
