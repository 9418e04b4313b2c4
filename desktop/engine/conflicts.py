"""The losing rows of a merge: saved (both versions, JSONB) in ``market_sync.conflicts``,
or, under the ``abort`` policy, a sample of them raised with the error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg
from psycopg import sql

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

    def save_conflicts(self, plan: TablePlan, select: sql.Composed) -> None:
        """``select`` yields (key, local_row, incoming_row) jsonb triples."""
        winner = "incoming" if self.policy is ConflictPolicy.SERVER_WINS else "local"
        self.conn.execute(sql.SQL(
            "INSERT INTO market_sync.conflicts (dump_id, table_name, key, local_row, "
            "incoming_row, policy, winner) SELECT {dump}, {table}, x.* , {policy}, {winner} "
            "FROM ({select}) AS x"
        ).format(dump=sql.Literal(self.dump_id), table=sql.Literal(plan.label),
                 policy=sql.Literal(str(self.policy)), winner=sql.Literal(winner),
                 select=select))

    def abort(self, plan: TablePlan, select: sql.Composed, count: int) -> NoReturn:
        rows = self.conn.execute(sql.SQL("SELECT * FROM ({}) x LIMIT {}").format(
            select, sql.Literal(SAMPLE_CONFLICTS))).fetchall()
        samples = [{"table": plan.label, "key": r[0], "local": r[1], "incoming": r[2]}
                   for r in rows]
        raise ConflictAbortWithSamples(
            f"dump {self.dump_id}: {count} row(s) of {plan.label} differ from the laptop's; "
            "policy abort applied nothing of this dump",
            "look at them with `market-sync sync --dry-run --json`, then sync with "
            "--policy server-wins or local-wins", samples)
