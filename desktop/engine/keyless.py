"""Merge a staged part into a keyless (``replace-range``) table: the laptop's day and the
dump's compared as multisets (``EXCEPT ALL``; types without ``=``, and jsonb, as text).

Rows only the dump has are new, rows only the laptop has are diverged. With no diverged
rows only the new rows are inserted. With diverged rows, ``server-wins`` saves the
laptop-only rows and replaces the day; ``local-wins`` keeps the laptop's day and saves the
dump-only rows.
"""

from __future__ import annotations

from psycopg import sql

from desktop.engine.conflicts import MergeContext
from desktop.engine.digest import compared_as_text
from desktop.engine.tableplan import TableCounts, TablePlan, type_sql
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
        losers = sql.SQL(
            "SELECT NULL::jsonb, to_jsonb(x.*), NULL::jsonb FROM ({}) x").format(local_only_rows)
        if ctx.policy is ConflictPolicy.ABORT:
            ctx.abort(plan, losers, diverged)
        if ctx.policy is ConflictPolicy.SERVER_WINS:
            if plan.laptop_only:
                # The day is replaced whole: its rows go to the conflicts whole, with the
                # laptop's own columns' values, not only the rows the dump lacks.
                losers = sql.SQL(
                    "SELECT NULL::jsonb, to_jsonb(t.*), NULL::jsonb FROM {} t WHERE {}").format(
                        plan.ident, plan.in_range(part, "t"))
            ctx.save_conflicts(plan, losers)
            conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(
                plan.ident, plan.in_range(part)))
            conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                plan.ident, plan.cols(), plan.cols(), stage))
        else:  # local wins: keep the laptop's day, record what the server had instead
            ctx.save_conflicts(plan, sql.SQL(
                "SELECT NULL::jsonb, NULL::jsonb, to_jsonb(c.*) FROM {} c").format(changes))
            new = 0
    elif new:
        conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} c").format(
            plan.ident, plan.cols(), restore, changes))
    conn.execute(sql.SQL("DROP TABLE {}").format(changes))
    counts.new += new
    counts.diverged += diverged
    counts.unchanged += part.rows - incoming_only
