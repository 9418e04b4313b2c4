"""Merge a staged part into a keyless (``replace-range``) table: the laptop's day and the
dump's compared as multisets (``EXCEPT ALL``; types without ``=``, and jsonb, as text).

Rows only the dump has are new, rows only the laptop has are diverged. With no diverged
rows only the new rows are inserted. With diverged rows, ``server-wins`` saves the
laptop-only rows, deletes them and inserts the new ones (rows both sides have stay as they
are, and so does a foreign key onto them; with a laptop-only column the day is saved and
replaced whole); ``local-wins`` keeps the laptop's day and saves the dump-only rows.
"""

from __future__ import annotations

from psycopg import sql

from desktop.engine.conflict_store import Losers, Version
from desktop.engine.conflicts import MergeContext
from desktop.engine.digest import compared_as_text
from desktop.engine.tableplan import OVERRIDING, TableCounts, TablePlan, type_sql
from shared.config import ConflictPolicy
from shared.manifest import Part


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
    local_only_rows = sql.SQL("({}) EXCEPT ALL ({})").format(local_rows, incoming_rows)
    diverged = ctx.scalar(sql.SQL("SELECT count(*) FROM ({}) x").format(local_only_rows))
    restore = sql.SQL(", ").join(
        sql.SQL("c.{}::{}").format(sql.Identifier(col), type_sql(plan.types[col]))
        if compared_as_text(plan.types[col])
        else sql.SQL("c.{}").format(sql.Identifier(col))
        for col in plan.columns)
    whole_day = ctx.policy is ConflictPolicy.SERVER_WINS and bool(plan.laptop_only)
    if diverged:
        if whole_day:
            # The day is replaced whole: its rows go to the conflicts whole, with the
            # laptop's own columns' values, not only the rows the dump lacks.
            losers = Losers(sql.SQL(
                "SELECT NULL::jsonb AS key, t.tableoid AS local_tab, t.ctid AS local_at "
                "FROM {} t WHERE {}").format(plan.ident, plan.in_range(part, "t")),
                (Version.at("local", plan.ident),))
        else:
            # The rows only one side has, with their own types again, in a table of their
            # own: the laptop's under server-wins (and abort), the dump's under local-wins.
            local = ctx.policy is not ConflictPolicy.LOCAL_WINS
            kept = sql.Identifier("_market_sync_losers")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(kept))
            conn.execute(sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM ({}) c").format(
                kept, restore, local_only_rows if local else sql.SQL("TABLE {}").format(changes)))
            name = "local" if local else "incoming"
            losers = Losers(sql.SQL(
                "SELECT NULL::jsonb AS key, x.tableoid AS {}, x.ctid AS {} FROM {} x").format(
                    sql.Identifier(f"{name}_tab"), sql.Identifier(f"{name}_at"), kept),
                (Version.at(name, kept, plan.columns),))
        if ctx.policy is ConflictPolicy.ABORT:
            ctx.abort(plan, losers, diverged)
        ctx.save_conflicts(plan, losers)
        if ctx.policy is ConflictPolicy.SERVER_WINS:
            # Replacing the day whole, or else only the rows the dump lacks go (and only the
            # rows the laptop lacks come): a row on both sides stays where it is, and so
            # does a foreign key of the trader's onto it.
            doomed = sql.SQL("FROM {} t WHERE {}").format(
                plan.ident, plan.in_range(part, "t")) if whole_day else _laptop_only(
                    plan, part, stage)
            ctx.refuse_referenced(plan, doomed)
            conn.execute(sql.SQL("DELETE {}").format(doomed))
        else:  # local wins: the laptop's day is kept; what the server had instead is saved
            new = 0
    if whole_day and diverged:
        conn.execute(sql.SQL("INSERT INTO {} ({}) {} SELECT {} FROM {}").format(
            plan.ident, plan.cols(), OVERRIDING, plan.cols(), stage))
    elif new:
        conn.execute(sql.SQL("INSERT INTO {} ({}) {} SELECT {} FROM {} c").format(
            plan.ident, plan.cols(), OVERRIDING, restore, changes))
    conn.execute(sql.SQL("DROP TABLE {}").format(changes))
    counts.new += new
    counts.diverged += diverged
    counts.unchanged += part.rows - incoming_only


def _laptop_only(plan: TablePlan, part: Part, stage: sql.Identifier) -> sql.Composed:
    """``FROM <table> t WHERE …``: the laptop's rows of the day the dump lacks, as
    ``EXCEPT ALL`` counts them (of n alike rows where the dump has m < n, n − m go). One
    pass over both sides: each group of alike rows numbers the laptop's and counts the
    dump's."""
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
    return sql.SQL(
        "FROM {table} t WHERE (t.tableoid, t.ctid) IN (SELECT {tab}, {at} FROM ("
        "SELECT {dump}, {tab}, {at}, row_number() OVER (PARTITION BY {alike}, {dump}) AS {n}, "
        "count(*) FILTER (WHERE {dump}) OVER (PARTITION BY {alike}) AS {m} FROM ({both}) u) v "
        "WHERE NOT {dump} AND {n} > {m})").format(
            table=plan.ident, tab=tab, at=at, dump=dump, alike=alike, n=n, m=m, both=both)
