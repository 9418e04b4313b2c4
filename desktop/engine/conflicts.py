"""The losing rows of a merge: saved (both versions, each in its store:
:mod:`desktop.engine.conflict_store`), or, under the ``abort`` policy, a sample of them
raised with the error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg
from psycopg import sql

from desktop.engine import conflict_store
from desktop.engine.conflict_store import Losers
from desktop.engine.dberrors import rows_kept_out
from desktop.engine.references import refuse_referenced
from desktop.engine.tableplan import TablePlan
from shared.config import ConflictPolicy
from shared.errors import ConflictAbort

SAMPLE_CONFLICTS = 20


class ConflictAbortWithSamples(ConflictAbort):
    def __init__(self, message: str, hint: str, samples: list[dict[str, Any]]) -> None:
        super().__init__(message, hint)
        self.samples = samples


@dataclass(frozen=True)
class MergeContext:
    """What every merge step needs: the open transaction, the policy, the dump."""

    conn: psycopg.Connection[Any]
    policy: ConflictPolicy
    dump_id: str

    def scalar(self, query: sql.Composed) -> int:
        row = self.conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])

    def save_conflicts(self, plan: TablePlan, losers: Losers) -> None:
        winner = "incoming" if self.policy is ConflictPolicy.SERVER_WINS else "local"
        conflict_store.save(self.conn, plan.spec.name, losers, dump_id=self.dump_id,
                            policy=str(self.policy), winner=winner)

    def refuse_referenced(self, plan: TablePlan, doomed: sql.Composable, *,
                          updated_from: str | None = None) -> None:
        """Stop before deleting rows (``FROM <table> t WHERE …``) the trader's tables
        reference, or updating what they reference (:mod:`desktop.engine.references`)."""
        references = plan.references if updated_from is None else tuple(
            r for r in plan.references  # what an update can change: non-key dump columns
            if not r.follows_updates and not set(r.referenced) <= set(plan.key)
            and set(r.referenced) <= set(plan.columns))
        refuse_referenced(self.conn, references, plan.label, self.dump_id, doomed,
                          updated_from=updated_from)

    def wrote(self, plan: TablePlan, cursor: psycopg.Cursor[Any], expected: int,
              doing: str) -> None:
        """Stop when the laptop's table took fewer rows than the merge wrote: a trigger or
        rule of the trader's skipped them, and the laptop would no longer hold what the
        ledger and the conflicts say."""
        if cursor.rowcount < expected:
            raise rows_kept_out(self.conn, plan.spec.name, self.dump_id, doing, expected,
                                cursor.rowcount)

    def abort(self, plan: TablePlan, losers: Losers, count: int) -> NoReturn:
        samples = [{"table": plan.label, **sample} for sample in
                   conflict_store.samples(self.conn, plan.spec.name, losers, SAMPLE_CONFLICTS)]
        raise ConflictAbortWithSamples(
            f"dump {self.dump_id}: {count} row(s) of {plan.label} differ from the laptop's; "
            "policy abort applied nothing of this dump",
            "look at them with `market-sync sync --dry-run --json`, then sync with "
            "--policy server-wins or local-wins", samples)
