"""Apply one dump's parts to the laptop database, inside the caller's transaction.

For each part (one table, one watermark day) the cheapest correct path is taken:

* **skip** — the laptop already applied a part with the same content hash for
  that table and day, and still holds that many rows there, every one written by
  the sync's own transactions in this very database (:mod:`desktop.engine.ledger`):
  every row is unchanged;
* **copy** — the laptop holds no rows in the part's range: binary COPY straight
  into the table (in a savepoint; a key that exists on another day falls back
  to merge);
* **merge** — otherwise: COPY into a staging table, then :mod:`desktop.engine.keyed`
  or :mod:`desktop.engine.keyless` classify, save the losing rows
  (:mod:`desktop.engine.conflicts`), apply the policy and insert the new rows.

Every identifier comes from the configuration or the live catalog and is
quoted with :mod:`psycopg.sql`; the manifest only has to agree with them
(:mod:`desktop.engine.tableplan`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from desktop.engine import ledger
from desktop.engine.conflicts import ConflictAbortWithSamples, MergeContext
from desktop.engine.digest import digest_blocker, row_digest
from desktop.engine.keyed import merge_keyed
from desktop.engine.keyless import merge_keyless
from desktop.engine.tableplan import (
    SchemaOptions,
    TableCounts,
    TablePlan,
    check_manifest_safety,
    plan_table,
)
from shared.config import Config, ConflictPolicy
from shared.errors import Cancelled, IntegrityError
from shared.manifest import Part, TableDump

__all__ = ["ConflictAbortWithSamples", "DumpApplier", "TableCounts", "check_manifest_safety",
           "digest_blocker", "row_digest"]

logger = logging.getLogger(__name__)

READ_CHUNK = 1 << 20


class _CountMismatch(IntegrityError):
    """A COPY took another number of rows than the part says it holds."""


class DumpApplier:
    """Applies the parts of one dump inside an open transaction of ``conn``."""

    def __init__(self, conn: psycopg.Connection[Any], config: Config, policy: ConflictPolicy,
                 dump_id: str, *, schema: SchemaOptions | None = None,
                 on_rows: Callable[[int], None] = lambda n: None,
                 cancelled: Callable[[], bool] = lambda: False) -> None:
        self.conn, self.config, self.policy, self.dump_id = conn, config, policy, dump_id
        self.schema = schema or SchemaOptions()
        self.ctx = MergeContext(conn, policy, dump_id)
        self.on_rows, self.cancelled = on_rows, cancelled
        self._origin: ledger.Origin | None = None

    def plan(self, table: TableDump) -> tuple[TablePlan, bool]:
        return plan_table(self.conn, self.config, table, self.schema)

    @property
    def origin(self) -> ledger.Origin:
        if self._origin is None:
            self._origin = ledger.current_origin(self.conn)
        return self._origin

    def apply_part(self, plan: TablePlan, part: Part, fetch: Callable[[], Path],
                   counts: TableCounts) -> None:
        previous = ledger.applied_part(self.conn, plan.label, part.day_key)
        if previous is not None and previous.origin != self.origin:
            # Transaction ids mean nothing in another database or cluster: the laptop
            # database was restored or moved since this day was written. Compare for real.
            logger.info("%s %s: the ledger's writer ids come from %s, this database is %s "
                        "(restored or moved?); comparing the day's rows instead of trusting "
                        "them", plan.label, part.day_key, previous.origin or "an older version",
                        self.origin)
            previous = None
        if previous is not None and previous.content_sha256 == part.content_sha256:
            # Same rows as last time: skip if the laptop's rows for the day are still exactly
            # the ones the sync wrote (count, and every xmin one of the writer transactions).
            row = self.conn.execute(sql.SQL(
                "SELECT count(*), count(*) FILTER (WHERE NOT xmin::text::bigint = ANY({})) "
                "FROM {} WHERE {}").format(sql.Literal(list(previous.writer_xids)), plan.ident,
                                           plan.in_range(part))).fetchone()
            assert row is not None
            local, edited = int(row[0]), int(row[1])
            if local == part.rows and edited == 0:
                counts.unchanged += part.rows
                counts.parts_skipped += 1
                self.on_rows(part.rows)
                return
        else:
            local = self.ctx.scalar(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                plan.ident, plan.in_range(part)))
        writers: tuple[int, ...]
        # A column the laptop computes cannot be copied into: such a table is merged.
        if local == 0 and not plan.computed and self._try_direct_copy(plan, part, fetch()):
            counts.new += part.rows
            counts.parts_copied += 1
            # A COPY in a savepoint writes with the subtransaction's xid: read it back.
            xid = self.ctx.scalar(sql.SQL("SELECT xmin::text::bigint FROM {} WHERE {} LIMIT 1")
                                  .format(plan.ident, plan.in_range(part))) if part.rows else None
            writers = (xid,) if xid is not None else ()
        else:
            self._merge(plan, part, fetch(), counts, local_rows=local)
            counts.parts_merged += 1
            current = self.ctx.scalar(sql.SQL("SELECT pg_current_xact_id()::text::bigint % {}")
                                      .format(sql.Literal(2**32)))
            earlier = previous.writer_xids if previous else ()
            writers = tuple(dict.fromkeys((*earlier, current)))
        ledger.record_part(self.conn, plan.label, part.day_key, part.content_sha256, part.rows,
                           writers, self.dump_id, self.origin)

    def advance_sequences(self, plan: TablePlan) -> None:
        """Move the sequences behind the table's serial and identity columns past the
        highest value there: the rows the sync wrote carry the instance's ids, and the
        trader's own inserts must not collide with them. Called once the dump is committed
        (a sequence is not transactional)."""
        table = plan.ident.as_string(self.conn)
        rows = self.conn.execute(
            "SELECT a.attname, pg_get_serial_sequence(%s, a.attname) FROM pg_attribute a "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            (table, table)).fetchall()
        for column, sequence in rows:
            if sequence is None:
                continue
            seq = sql.Literal(str(sequence))
            self.conn.execute(sql.SQL(
                "SELECT setval({seq}::regclass, x.m) FROM (SELECT max({col})::bigint AS m "
                "FROM {table}) x, pg_sequence p WHERE p.seqrelid = {seq}::regclass "
                "AND p.seqincrement > 0 AND x.m > COALESCE("
                "pg_sequence_last_value({seq}::regclass), p.seqstart - 1)").format(
                    seq=seq, col=sql.Identifier(str(column)), table=plan.ident))

    def _try_direct_copy(self, plan: TablePlan, part: Part, path: Path) -> bool:
        try:
            with self.conn.transaction():
                self._copy_in(plan.ident, plan, part, path)
        except psycopg.errors.UniqueViolation:
            logger.info("%s %s: keys exist on other days; merging instead", plan.label, part.day)
            return False
        except _CountMismatch:
            # A damaged part, or a trigger of the trader's that kept rows out: the merge
            # counts the part in its own staging table, and then what the table took.
            logger.info("%s %s: the table took another count of rows than the part holds; "
                        "merging instead", plan.label, part.day)
            return False
        return True

    def _copy_in(self, target: sql.Identifier, plan: TablePlan, part: Part, path: Path) -> None:
        import zstandard

        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
            target, plan.copied())
        reported = 0
        with self.conn.cursor() as cur, path.open("rb") as fh:
            reader = zstandard.ZstdDecompressor().stream_reader(fh, read_size=READ_CHUNK)
            with cur.copy(statement) as copy:
                while chunk := reader.read(READ_CHUNK):
                    if self.cancelled():
                        raise Cancelled("sync cancelled", "everything of this dump was rolled "
                                        "back; run sync again to continue")
                    copy.write(chunk)
                    if part.bytes:
                        estimate = part.rows * fh.tell() // part.bytes
                        self.on_rows(estimate - reported)
                        reported = estimate
            copied = cur.rowcount
        self.on_rows(part.rows - reported)
        if copied != part.rows:
            raise _CountMismatch(
                f"dump {self.dump_id}: {plan.label} {part.day or ''} holds {copied} rows, "
                f"the manifest says {part.rows}",
                "the dump is damaged; nothing of it was applied. Re-run the backup on the "
                "instance with --full")

    def _merge(self, plan: TablePlan, part: Part, path: Path, counts: TableCounts, *,
               local_rows: int) -> None:
        # UNLOGGED, not TEMP: PostgreSQL scans temp tables in one process only, and the
        # classifying join is the merge's biggest step. Created and dropped inside the
        # dump's transaction (and one sync at a time holds the lock), so nothing lingers.
        stage = sql.Identifier("market_sync", "_stage")
        self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
        self.conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT {} FROM {} WITH NO DATA")
                          .format(stage, plan.copied(), plan.ident))
        self._copy_in(stage, plan, part, path)
        self.conn.execute(sql.SQL("ANALYZE {}").format(stage))
        if plan.keyed:
            merge_keyed(self.ctx, plan, part, stage, counts, local_rows=local_rows)
        else:
            merge_keyless(self.ctx, plan, part, stage, counts)
        self.conn.execute(sql.SQL("DROP TABLE {}").format(stage))
