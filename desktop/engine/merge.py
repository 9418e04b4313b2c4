"""Apply one dump's parts to the laptop database, inside the caller's transaction.

For each part (one table, one watermark day) the cheapest correct path is taken:

* **skip** — the laptop already applied a part with the same content hash for
  that table and day, and still holds that many rows there: every row is
  unchanged;
* **copy** — the laptop holds no rows in the part's range: binary COPY straight
  into the table (in a savepoint; a key that exists on another day falls back
  to merge);
* **merge** — otherwise: COPY into a temp staging table, classify each
  incoming row new / unchanged / diverged in one join, save every losing row
  (both versions, JSONB) in ``market_sync.conflicts``, apply the policy, insert
  the new rows. Unchanged rows are never rewritten, so no table bloat.

Every identifier comes from the configuration or the live catalog and is
quoted with :mod:`psycopg.sql`; the manifest only has to agree with them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from desktop.engine import ledger
from shared.config import Config, ConflictPolicy
from shared.errors import (
    Cancelled,
    ConflictAbort,
    IntegrityError,
    SchemaMismatchError,
    TableNameError,
    UnsafeManifestError,
)
from shared.manifest import Manifest, Part, TableDump
from shared.sqlparts import (
    check_watermark_type,
    day_predicate,
    read_columns,
    read_primary_key,
    table_ident,
)
from shared.tables import MergeMode, TableSpec, check_identifier

logger = logging.getLogger(__name__)

READ_CHUNK = 1 << 20
SAMPLE_CONFLICTS = 20
# Compared (and EXCEPT-ed) as text: types with no equality operator, and jsonb, whose `=`
# (and hash) ignores a number's sign and scale inside the document ({"q": 1} = {"q": 1.0});
# its text is canonical (key order, spacing), so only a real change differs.
_COMPARED_AS_TEXT = re.compile(r"^(json|jsonb|xml|point|line|lseg|box|path|polygon|circle)(\[\])*$")
# A type name a table may be created with: letters, digits, spaces, a typmod, array brackets.
_SAFE_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*(\(\s*\d+(\s*,\s*\d+)?\s*\))?[A-Za-z ]*(\[\])*$")
NEW_FLAG, LOCAL_COL, DIGEST_COL = "_market_sync_new", "_market_sync_local", "_market_sync_digest"
# The row digest: hash_record_extended over the non-key columns. These types (and arrays of
# them) hash every bit of their value and agree with `=`; numeric, bigint and timestamps
# need a second term (see _digest_terms). Any other type (money, bit, tsvector, interval,
# numeric[], domains, extension types …) makes the merge compare whole rows instead.
# tests/desktop/test_merge_classify.py holds the digest to IS DISTINCT FROM, type by type.
_TYPMOD = r"(\(\d+(,\d+)?\))?"
_FULL_HASH = re.compile(
    r"^(smallint|integer|real|double precision|text|character varying|character|bytea|boolean"
    rf"|date|uuid|inet|cidr|macaddr){_TYPMOD}(\[\])*$")
_NUMERIC = re.compile(rf"^numeric{_TYPMOD}$")
_TIMESTAMP = re.compile(r"^timestamp(\(\d\))? with(out)? time zone$")
# Not 0 or 1: hash functions return the seed (or seed − 1) for zero, numeric NaN and
# infinities, and a NULL hashes to 0; a seed of 0 would make NULL and 0.0 look alike.
DIGEST_SEED = 0x6D61726B65747379  # "marketsy"


@dataclass
class TableCounts:
    new: int = 0
    unchanged: int = 0
    diverged: int = 0
    parts_skipped: int = 0
    parts_copied: int = 0
    parts_merged: int = 0
    created: bool = False
    samples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"new": self.new, "unchanged": self.unchanged, "diverged": self.diverged,
                "parts_skipped": self.parts_skipped, "parts_copied": self.parts_copied,
                "parts_merged": self.parts_merged, "created": self.created}


@dataclass(frozen=True)
class TablePlan:
    spec: TableSpec
    dump: TableDump
    columns: tuple[str, ...]
    types: dict[str, str]
    key: tuple[str, ...]
    watermark_type: str | None

    @property
    def ident(self) -> sql.Identifier:
        return table_ident(self.spec.name)

    @property
    def label(self) -> str:
        return str(self.spec.name)

    def cols(self, alias: str | None = None) -> sql.Composed:
        return sql.SQL(", ").join(
            sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in self.columns)

    def comparable(self, alias: str) -> sql.Composed:
        """The row as comparable values: types without ``=`` as text."""
        parts = []
        for c in self.columns:
            ident = sql.Identifier(alias, c)
            parts.append(sql.SQL("{}::text").format(ident) if _COMPARED_AS_TEXT.match(self.types[c])
                         else ident)
        return sql.SQL(", ").join(parts)

    @property
    def compared(self) -> tuple[str, ...]:
        """The columns a digest compares: the key is equal by the join already."""
        return tuple(c for c in self.columns if c not in self.key)

    def digest_blocker(self) -> str | None:
        return digest_blocker(self.compared, self.types)

    def digest(self, alias: str) -> sql.Composed:
        return row_digest(alias, self.compared, self.types)

    def key_match(self, left: str, right: str) -> sql.Composed:
        return sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(left, k), sql.Identifier(right, k))
            for k in self.key)

    def key_json(self, alias: str) -> sql.Composed:
        return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
            sql.SQL("{}, {}").format(sql.Literal(k), sql.Identifier(alias, k)) for k in self.key))

    def in_range(self, part: Part, alias: str | None = None) -> sql.Composable:
        if part.day is None or self.spec.watermark is None or self.watermark_type is None:
            return sql.SQL("true")
        return day_predicate(self.spec.watermark, self.watermark_type, part.day, alias)

    @property
    def keyed(self) -> bool:
        return bool(self.key) and self.spec.mode is not MergeMode.REPLACE_RANGE


def check_manifest_safety(manifest: Manifest, config: Config) -> None:
    """Refuse a manifest that names an unconfigured table or carries a bad identifier."""
    for table in manifest.tables:
        try:
            check_identifier(table.name.schema, "schema name")
            check_identifier(table.name.table, "table name")
            for column in table.columns:
                check_identifier(column.name, f"column name in {table.name}")
        except TableNameError as exc:
            raise UnsafeManifestError(
                f"dump {manifest.dump_id} is refused: {exc.message}",
                "nothing was applied; the dump was not written by market-sync's agent") from None
        if config.table(table.name) is None:
            raise UnsafeManifestError(
                f"dump {manifest.dump_id} is refused: it names table {table.name}, "
                "which is not configured",
                "nothing was applied; add it as [[tables]] in the config if it should sync")
        names = [c.name for c in table.columns]
        if len(names) != len(set(names)):
            raise UnsafeManifestError(f"dump {manifest.dump_id}: {table.name} lists a column twice")


class DumpApplier:
    """Applies the parts of one dump inside an open transaction of ``conn``."""

    def __init__(self, conn: psycopg.Connection[Any], config: Config, policy: ConflictPolicy,
                 dump_id: str, *, add_columns: bool = False,
                 on_rows: Callable[[int], None] = lambda n: None,
                 cancelled: Callable[[], bool] = lambda: False) -> None:
        self.conn, self.config, self.policy, self.dump_id = conn, config, policy, dump_id
        self.add_columns = add_columns
        self.on_rows, self.cancelled = on_rows, cancelled

    # -- schema ----------------------------------------------------------------------------
    def plan(self, table: TableDump) -> tuple[TablePlan, bool]:
        spec = self.config.table(table.name)
        assert spec is not None  # check_manifest_safety ran first
        if spec.mode is not MergeMode.SNAPSHOT and table.watermark != spec.watermark:
            raise SchemaMismatchError(
                f"{spec.name}: the dump's watermark is {table.watermark!r}, "
                f"the config says {spec.watermark!r}",
                "make [[tables]] watermark the same on the instance and the laptop")
        live = read_columns(self.conn, spec.name)
        created = False
        if live is None:
            self._create_table(spec, table)
            live = read_columns(self.conn, spec.name)
            created = True
        assert live is not None
        live_types = {c.name: c.type for c in live}
        for column in table.columns:
            local_type = live_types.get(column.name)
            if local_type is None:
                if not self.add_columns:
                    raise SchemaMismatchError(
                        f"{spec.name}: column {column.name!r} ({column.type}) is in the dump "
                        "but not in the laptop table",
                        "add the column to the laptop table, or sync with --add-columns")
                self.conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    table_ident(spec.name), sql.Identifier(column.name), _type_sql(column.type)))
                live_types[column.name] = column.type
            elif local_type != column.type:
                raise SchemaMismatchError(
                    f"{spec.name}: column {column.name!r} is {local_type} on the laptop "
                    f"but {column.type} in the dump",
                    f"alter the laptop column: ALTER TABLE {spec.name} ALTER COLUMN "
                    f"{column.name} TYPE {column.type}")
        incoming = {c.name for c in table.columns}
        for col in live:
            if col.name not in incoming and col.not_null and not col.has_default:
                raise SchemaMismatchError(
                    f"{spec.name}: laptop column {col.name!r} is NOT NULL without a default "
                    "and the dump has no such column",
                    "give it a default or allow NULL on the laptop")
        key = spec.key or read_primary_key(self.conn, spec.name) or table.key
        missing = [k for k in key if k not in incoming]
        if missing:
            raise SchemaMismatchError(f"{spec.name}: key column {missing[0]!r} is not in the dump")
        nullable = [c.name for c in live if c.name in key and not c.not_null]
        if nullable and spec.mode is not MergeMode.REPLACE_RANGE:
            raise SchemaMismatchError(
                f"{spec.name}: key column {nullable[0]!r} allows NULL on the laptop",
                "make the key columns NOT NULL (or the primary key)")
        if spec.mode is MergeMode.UPSERT and not key:
            raise SchemaMismatchError(
                f"{spec.name} has no key: upsert needs one",
                "set `key` for the table in the config, or mode = \"replace-range\"")
        wm_type = None
        if spec.watermark is not None:
            wm_type = check_watermark_type(spec.name, spec.watermark,
                                           live_types.get(spec.watermark))
        plan = TablePlan(spec, table, tuple(c.name for c in table.columns),
                         {c.name: c.type for c in table.columns}, tuple(key), wm_type)
        return plan, created

    def _create_table(self, spec: TableSpec, table: TableDump) -> None:
        key = spec.key or table.key
        definitions: list[sql.Composable] = [
            sql.SQL("{} {}{}").format(sql.Identifier(c.name), _type_sql(c.type),
                                      sql.SQL(" NOT NULL") if c.not_null else sql.SQL(""))
            for c in table.columns]
        if key and spec.mode is not MergeMode.REPLACE_RANGE:
            definitions.append(sql.SQL("PRIMARY KEY ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, key))))
        self.conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(spec.name.schema)))
        self.conn.execute(sql.SQL("CREATE TABLE {} ({})").format(
            table_ident(spec.name), sql.SQL(", ").join(definitions)))
        if spec.watermark and (not key or key[0] != spec.watermark):
            self.conn.execute(sql.SQL("CREATE INDEX ON {} ({})").format(
                table_ident(spec.name), sql.Identifier(spec.watermark)))
        logger.info("created table %s from the dump's column list", spec.name)

    # -- parts -----------------------------------------------------------------------------
    def apply_part(self, plan: TablePlan, part: Part, fetch: Callable[[], Path],
                   counts: TableCounts) -> None:
        previous = ledger.applied_part(self.conn, plan.label, part.day_key)
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
            local = self._scalar(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                plan.ident, plan.in_range(part)))
        writers: tuple[int, ...]
        if local == 0 and self._try_direct_copy(plan, part, fetch()):
            counts.new += part.rows
            counts.parts_copied += 1
            # A COPY in a savepoint writes with the subtransaction's xid: read it back.
            xid = self._scalar(sql.SQL("SELECT xmin::text::bigint FROM {} WHERE {} LIMIT 1")
                               .format(plan.ident, plan.in_range(part))) if part.rows else None
            writers = (xid,) if xid is not None else ()
        else:
            self._merge(plan, part, fetch(), counts, local_rows=local)
            counts.parts_merged += 1
            current = self._scalar(sql.SQL("SELECT pg_current_xact_id()::text::bigint % {}")
                                   .format(sql.Literal(2**32)))
            earlier = previous.writer_xids if previous else ()
            writers = tuple(dict.fromkeys((*earlier, current)))
        ledger.record_part(self.conn, plan.label, part.day_key, part.content_sha256, part.rows,
                           writers, self.dump_id)

    def _try_direct_copy(self, plan: TablePlan, part: Part, path: Path) -> bool:
        try:
            with self.conn.transaction():
                self._copy_in(plan.ident, plan, part, path)
        except psycopg.errors.UniqueViolation:
            logger.info("%s %s: keys exist on other days; merging instead", plan.label, part.day)
            return False
        return True

    def _copy_in(self, target: sql.Identifier, plan: TablePlan, part: Part, path: Path) -> None:
        import zstandard

        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(target, plan.cols())
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
            raise IntegrityError(
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
                          .format(stage, plan.cols(), plan.ident))
        self._copy_in(stage, plan, part, path)
        self.conn.execute(sql.SQL("ANALYZE {}").format(stage))
        if plan.keyed:
            self._merge_keyed(plan, part, stage, counts, local_rows=local_rows)
        else:
            self._merge_keyless(plan, part, stage, counts)
        self.conn.execute(sql.SQL("DROP TABLE {}").format(stage))

    def _merge_keyed(self, plan: TablePlan, part: Part, stage: sql.Identifier,
                     counts: TableCounts, *, local_rows: int) -> None:
        changes = sql.Identifier("_market_sync_changes")
        self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(changes))
        blocker = plan.digest_blocker()
        with self._planner_settings(part.rows, local_rows):
            try:
                if blocker is not None:
                    raise _NoDigest(f"column {blocker} has no row digest")
                with self.conn.transaction():
                    self._classify_by_digest(plan, part, stage, changes)
            except (_NoDigest, psycopg.errors.UndefinedFunction) as exc:
                # UndefinedFunction: a server without hash_record_extended (before 14).
                logger.info("%s: %s; comparing whole rows instead", plan.label,
                            str(exc).splitlines()[0])
                self._classify_exactly(plan, part, stage, changes)
        self.conn.execute(sql.SQL("ANALYZE {}").format(changes))
        # Every row of `changes` without the laptop's version yet (the new ones, and with the
        # digest every diverged one) is looked up by key in the whole table: the join saw
        # only the part's day, and a key that moved to another day is diverged, not new.
        self.conn.execute(sql.SQL(
            "UPDATE {changes} c SET {new} = false, {local} = to_jsonb(t.*) "
            "FROM {target} t WHERE c.{local} IS NULL AND {match}"
        ).format(changes=changes, new=sql.Identifier(NEW_FLAG), local=sql.Identifier(LOCAL_COL),
                 target=plan.ident, match=plan.key_match("t", "c")))
        row = self.conn.execute(sql.SQL(
            "SELECT count(*) FILTER (WHERE {new}), count(*) FILTER (WHERE NOT {new}) FROM {c}"
        ).format(new=sql.Identifier(NEW_FLAG), c=changes)).fetchone()
        assert row is not None
        new, diverged = int(row[0]), int(row[1])
        incoming = sql.SQL("to_jsonb(c.*) - {} - {}").format(sql.Literal(NEW_FLAG),
                                                              sql.Literal(LOCAL_COL))
        diverged_rows = sql.SQL("FROM {} c WHERE NOT c.{}").format(changes,
                                                                    sql.Identifier(NEW_FLAG))
        if diverged:
            if self.policy is ConflictPolicy.ABORT:
                self._abort(plan, sql.SQL("SELECT {}, c.{}, {} {}").format(
                    plan.key_json("c"), sql.Identifier(LOCAL_COL), incoming, diverged_rows),
                    diverged)
            self._save_conflicts(plan, sql.SQL("SELECT {}, c.{}, {} {}").format(
                plan.key_json("c"), sql.Identifier(LOCAL_COL), incoming, diverged_rows))
            if self.policy is ConflictPolicy.SERVER_WINS:
                assignments = sql.SQL(", ").join(
                    sql.SQL("{} = c.{}").format(sql.Identifier(col), sql.Identifier(col))
                    for col in plan.columns if col not in plan.key)
                if plan.columns != plan.key:
                    self.conn.execute(sql.SQL("UPDATE {} t SET {} {} AND {}").format(
                        plan.ident, assignments, diverged_rows, plan.key_match("t", "c")))
        local_only = 0
        if plan.spec.mode is MergeMode.SNAPSHOT:
            local_only = self._snapshot_local_only(plan, part, stage)
        if new:
            self.conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} c WHERE c.{}").format(
                plan.ident, plan.cols(), plan.cols("c"), changes, sql.Identifier(NEW_FLAG)))
        self.conn.execute(sql.SQL("DROP TABLE {}").format(changes))
        counts.new += new
        counts.diverged += diverged + local_only
        counts.unchanged += part.rows - new - diverged

    def _classify_by_digest(self, plan: TablePlan, part: Part, stage: sql.Identifier,
                            changes: sql.Identifier) -> None:
        """``changes`` := the incoming rows whose key the part's day lacks, or whose row
        digest differs from the laptop's row of that key. The hash table holds only the
        laptop's keys and 8-byte digests, so a day of wide rows is never spilled to disk."""
        digest = sql.Identifier(DIGEST_COL)
        self.conn.execute(sql.SQL(
            "CREATE TEMP TABLE {changes} AS "
            "SELECT {scols}, {fk} IS NULL AS {new}, NULL::jsonb AS {local} "
            "FROM {stage} s LEFT JOIN ("
            "  SELECT {keys}, {x_digest} AS {digest} "
            "  FROM {table} x WHERE {in_range}) t ON {match} "
            "WHERE {fk} IS NULL OR {s_digest} <> t.{digest}"
        ).format(changes=changes, scols=plan.cols("s"), fk=sql.Identifier("t", plan.key[0]),
                 new=sql.Identifier(NEW_FLAG), local=sql.Identifier(LOCAL_COL), stage=stage,
                 keys=sql.SQL(", ").join(sql.Identifier("x", k) for k in plan.key),
                 x_digest=plan.digest("x"), digest=digest, table=plan.ident,
                 in_range=plan.in_range(part, "x"), match=plan.key_match("s", "t"),
                 s_digest=plan.digest("s")))

    def _classify_exactly(self, plan: TablePlan, part: Part, stage: sql.Identifier,
                          changes: sql.Identifier) -> None:
        """``changes`` by comparing whole rows: for column types PostgreSQL cannot hash."""
        first_key = sql.Identifier("t", plan.key[0])
        self.conn.execute(sql.SQL(
            "CREATE TEMP TABLE {changes} AS "
            "SELECT {scols}, {fk} IS NULL AS {new}, "
            "CASE WHEN {fk} IS NULL THEN NULL ELSE to_jsonb(t.*) END AS {local} "
            "FROM {stage} s LEFT JOIN {target} t ON {match} "
            "WHERE {fk} IS NULL OR ROW({s_cmp}) IS DISTINCT FROM ROW({t_cmp})"
        ).format(changes=changes, scols=plan.cols("s"), fk=first_key,
                 new=sql.Identifier(NEW_FLAG), local=sql.Identifier(LOCAL_COL),
                 stage=stage, target=self._day_rows(plan, part),
                 match=plan.key_match("s", "t"),
                 s_cmp=plan.comparable("s"), t_cmp=plan.comparable("t")))

    @contextmanager
    def _planner_settings(self, incoming: int, local: int) -> Iterator[None]:
        """Transaction-local planner settings for classifying one part, restored afterwards:

        * ``work_mem`` raised (never lowered) to hold the digest hash table: 96 bytes a row
          (a million tick rows took 63 MB), at most 512 MB;
        * ``parallel_tuple_cost = 0``: the planner cannot know that the digest comparison
          keeps only the few changed rows, so it would price a parallel plan as if every
          row went back to the leader, and run the join in one process.
        """
        row = self.conn.execute(
            "SELECT current_setting('work_mem'), pg_size_bytes(current_setting('work_mem')), "
            "current_setting('parallel_tuple_cost')").fetchone()
        assert row is not None
        saved = {"work_mem": str(row[0]), "parallel_tuple_cost": str(row[2])}
        wanted = min(max(incoming, local) * 96, 512 << 20)
        if wanted > int(row[1]):
            self.conn.execute("SELECT set_config('work_mem', %s, true)", (f"{wanted >> 10}kB",))
        self.conn.execute("SELECT set_config('parallel_tuple_cost', '0', true)")
        try:
            yield
        finally:  # after an error the whole transaction is rolled back, settings with it
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
                for name, value in saved.items():
                    self.conn.execute("SELECT set_config(%s, %s, true)", (name, value))

    @staticmethod
    def _day_rows(plan: TablePlan, part: Part) -> sql.Composable:
        """The laptop's rows of the part's day (the whole table for a snapshot part)."""
        if part.day is None or plan.spec.watermark is None:
            return plan.ident
        return sql.SQL("(SELECT * FROM {} WHERE {})").format(plan.ident, plan.in_range(part))

    def _snapshot_local_only(self, plan: TablePlan, part: Part, stage: sql.Identifier) -> int:
        """Snapshot tables: local rows whose key the server no longer has."""
        missing = sql.SQL("FROM {} t WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE {})").format(
            plan.ident, stage, plan.key_match("s", "t"))
        count = self._scalar(sql.SQL("SELECT count(*) {}").format(missing))
        if not count:
            return 0
        select = sql.SQL("SELECT {}, to_jsonb(t.*), NULL::jsonb {}").format(
            plan.key_json("t"), missing)
        if self.policy is ConflictPolicy.ABORT:
            self._abort(plan, select, count)
        self._save_conflicts(plan, select)
        if self.policy is ConflictPolicy.SERVER_WINS:
            self.conn.execute(sql.SQL("DELETE {}").format(missing))
        return count

    def _merge_keyless(self, plan: TablePlan, part: Part, stage: sql.Identifier,
                       counts: TableCounts) -> None:
        local_rows = sql.SQL("SELECT {} FROM {} t WHERE {}").format(
            self._aliased_comparable(plan, "t"), plan.ident, plan.in_range(part, "t"))
        incoming_rows = sql.SQL("SELECT {} FROM {} s").format(
            self._aliased_comparable(plan, "s"), stage)
        changes = sql.Identifier("_market_sync_changes")
        self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(changes))
        self.conn.execute(sql.SQL("CREATE TEMP TABLE {} AS ({}) EXCEPT ALL ({})").format(
            changes, incoming_rows, local_rows))
        new = incoming_only = self._scalar(sql.SQL("SELECT count(*) FROM {}").format(changes))
        local_only_rows = sql.SQL("({}) EXCEPT ALL ({})").format(local_rows, incoming_rows)
        diverged = self._scalar(sql.SQL("SELECT count(*) FROM ({}) x").format(local_only_rows))
        restore = sql.SQL(", ").join(
            sql.SQL("c.{}::{}").format(sql.Identifier(col), _type_sql(plan.types[col]))
            if _COMPARED_AS_TEXT.match(plan.types[col])
            else sql.SQL("c.{}").format(sql.Identifier(col))
            for col in plan.columns)
        if diverged:
            if self.policy is ConflictPolicy.ABORT:
                self._abort(plan, sql.SQL("SELECT NULL::jsonb, to_jsonb(x.*), NULL::jsonb "
                                          "FROM ({}) x").format(local_only_rows), diverged)
            if self.policy is ConflictPolicy.SERVER_WINS:
                self._save_conflicts(plan, sql.SQL(
                    "SELECT NULL::jsonb, to_jsonb(x.*), NULL::jsonb FROM ({}) x").format(
                        local_only_rows))
                self.conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(
                    plan.ident, plan.in_range(part)))
                self.conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                    plan.ident, plan.cols(), plan.cols(), stage))
            else:  # local wins: keep the laptop's day, record what the server had instead
                self._save_conflicts(plan, sql.SQL(
                    "SELECT NULL::jsonb, NULL::jsonb, to_jsonb(c.*) FROM {} c").format(changes))
                new = 0
        elif new:
            self.conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} c").format(
                plan.ident, plan.cols(), restore, changes))
        self.conn.execute(sql.SQL("DROP TABLE {}").format(changes))
        counts.new += new
        counts.diverged += diverged
        counts.unchanged += part.rows - incoming_only

    # -- helpers ---------------------------------------------------------------------------
    def _aliased_comparable(self, plan: TablePlan, alias: str) -> sql.Composed:
        return sql.SQL(", ").join(
            sql.SQL("{}::text AS {}").format(sql.Identifier(alias, c), sql.Identifier(c))
            if _COMPARED_AS_TEXT.match(plan.types[c]) else sql.Identifier(alias, c)
            for c in plan.columns)

    def _save_conflicts(self, plan: TablePlan, select: sql.Composed) -> None:
        """``select`` yields (key, local_row, incoming_row) jsonb triples."""
        winner = "incoming" if self.policy is ConflictPolicy.SERVER_WINS else "local"
        self.conn.execute(sql.SQL(
            "INSERT INTO market_sync.conflicts (dump_id, table_name, key, local_row, "
            "incoming_row, policy, winner) SELECT {dump}, {table}, x.* , {policy}, {winner} "
            "FROM ({select}) AS x"
        ).format(dump=sql.Literal(self.dump_id), table=sql.Literal(plan.label),
                 policy=sql.Literal(str(self.policy)), winner=sql.Literal(winner),
                 select=select))

    def _abort(self, plan: TablePlan, select: sql.Composed, count: int) -> None:
        rows = self.conn.execute(sql.SQL("SELECT * FROM ({}) x LIMIT {}").format(
            select, sql.Literal(SAMPLE_CONFLICTS))).fetchall()
        samples = [{"table": plan.label, "key": r[0], "local": r[1], "incoming": r[2]}
                   for r in rows]
        raise ConflictAbortWithSamples(
            f"dump {self.dump_id}: {count} row(s) of {plan.label} differ from the laptop's; "
            "policy abort applied nothing of this dump",
            "look at them with `market-sync sync --dry-run --json`, then sync with "
            "--policy server-wins or local-wins", samples)

    def _scalar(self, query: sql.Composed) -> int:
        row = self.conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


class ConflictAbortWithSamples(ConflictAbort):
    def __init__(self, message: str, hint: str, samples: list[dict[str, Any]]) -> None:
        super().__init__(message, hint)
        self.samples = samples


def _digest_terms(ident: sql.Composable, kind: str) -> list[sql.Composable] | None:
    """What a column of type ``kind`` contributes to the row digest, or None if the digest
    cannot stand for its equality."""
    if _COMPARED_AS_TEXT.match(kind):
        return [sql.SQL("{}::text").format(ident)]
    if _FULL_HASH.match(kind):
        return [ident]
    if _NUMERIC.match(kind):
        # numeric's hash leaves out the sign, and NaN and ±Infinity all hash alike
        return [ident, sql.SQL("{} < 0").format(ident), sql.SQL("{} = 'NaN'::numeric")
                .format(ident)]
    if kind == "bigint":
        # 8-byte integers hash their two halves XOR-ed together: add the high half
        return [ident, sql.SQL("({} >> 32)::integer").format(ident)]
    if _TIMESTAMP.match(kind):
        # hashed like bigint (microseconds); epoch seconds as float8 are exact to the µs
        return [ident, sql.SQL("date_part('epoch', {})").format(ident)]
    return None


def digest_blocker(columns: tuple[str, ...], types: dict[str, str]) -> str | None:
    """The first column whose type the row digest does not cover, or None."""
    for c in columns:
        if _digest_terms(sql.Identifier(c), types[c]) is None:
            return f"{c} ({types[c]})"
    return None


def row_digest(alias: str, columns: tuple[str, ...], types: dict[str, str]) -> sql.Composed:
    """The 64-bit digest of ``columns`` of the row ``alias`` (all covered by the digest)."""
    terms: list[sql.Composable] = []
    for c in columns:
        more = _digest_terms(sql.Identifier(alias, c), types[c])
        assert more is not None, c
        terms += more
    if not terms:
        return sql.Composed([sql.SQL("0::bigint")])
    return sql.SQL("hash_record_extended(ROW({}), {})").format(
        sql.SQL(", ").join(terms), sql.Literal(DIGEST_SEED))


class _NoDigest(Exception):
    """This table's rows are compared whole (a column type the digest does not cover)."""


def _type_sql(type_text: str) -> sql.SQL:
    """A column type from a manifest, accepted only in the plain shapes format_type() writes."""
    if not _SAFE_TYPE.match(type_text) or len(type_text) > 100:
        raise UnsafeManifestError(
            f"the dump declares a column type the laptop will not create: {type_text!r}",
            "create the table on the laptop yourself, then sync again")
    return sql.SQL(type_text)
