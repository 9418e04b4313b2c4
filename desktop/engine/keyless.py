"""Merge a staged part into a keyless (``replace-range``) table: the laptop's day and the
dump's compared as multisets (``EXCEPT ALL``; types without ``=``, and jsonb, as text).

Rows only the dump has are new, rows only the laptop has are diverged. With no diverged
rows only the new rows are inserted. With diverged rows, ``server-wins`` saves the
laptop-only rows and replaces the day; ``local-wins`` keeps the laptop's day and saves the
dump-only rows.
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
    if diverged:
        if ctx.policy is ConflictPolicy.SERVER_WINS and plan.laptop_only:
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
            ctx.refuse_referenced(plan, sql.SQL("FROM {} t WHERE {}").format(
                plan.ident, plan.in_range(part, "t")))
            conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(
                plan.ident, plan.in_range(part)))
            conn.execute(sql.SQL("INSERT INTO {} ({}) {} SELECT {} FROM {}").format(
                plan.ident, plan.cols(), OVERRIDING, plan.cols(), stage))
        else:  # local wins: the laptop's day is kept; what the server had instead is saved
            new = 0
    elif new:
        conn.execute(sql.SQL("INSERT INTO {} ({}) {} SELECT {} FROM {} c").format(
            plan.ident, plan.cols(), OVERRIDING, restore, changes))
    conn.execute(sql.SQL("DROP TABLE {}").format(changes))
    counts.new += new
    counts.diverged += diverged
    counts.unchanged += part.rows - incoming_only
