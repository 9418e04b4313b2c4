"""How one dumped table meets the laptop's: the checks, the columns it may add, the plan.

A schema change on the instance never silently changes laptop data:

* a column the dump has and the laptop lacks is added only when asked (``--add-columns``),
  and the laptop's existing rows get the value the instance's own existing rows got
  (``Column.fill``, PostgreSQL's ``attmissingval``), not NULL;
* a laptop column the dump lacks (dropped on the instance, or the trader's own) stops
  the sync naming table and column, unless ``--keep-dropped-columns`` says to keep it:
  then the laptop keeps the column and its values, rows the sync inserts get the
  column's default (NULL without one), and rows a ``server-wins`` sync deletes (a
  ``replace-range`` row the dump lacks, a ``snapshot`` row the server dropped) are saved
  whole, that column included, in ``market_sync.conflicts`` first;
* a type that differs stops the sync naming both types.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from desktop.engine.digest import compared_as_text, digest_blocker, row_digest
from desktop.engine.references import Reference, read_references
from shared.config import Config
from shared.errors import SchemaMismatchError, TableNameError, UnsafeManifestError
from shared.manifest import Column, Manifest, Part, TableDump
from shared.sqlparts import (
    TableColumn,
    check_watermark_type,
    day_predicate,
    read_columns,
    read_primary_key,
    table_ident,
)
from shared.tables import MergeMode, TableSpec, check_identifier

logger = logging.getLogger(__name__)

# Rows the sync inserts carry the instance's values, an identity column's too: a laptop
# table made from the instance's schema (pg_dump -s) may say GENERATED ALWAYS AS IDENTITY,
# which COPY ignores and INSERT refuses without this (a no-op on any other table).
OVERRIDING = sql.SQL("OVERRIDING SYSTEM VALUE")
# A type name a table may be created with: letters, digits, spaces, a typmod, array brackets.
_SAFE_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*(\(\s*\d+(\s*,\s*\d+)?\s*\))?[A-Za-z ]*(\[\])*$")


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
class SchemaOptions:
    """What the trader allowed a sync to do about a schema that moved on the instance."""

    add_columns: bool = False
    keep_dropped_columns: bool = False


@dataclass(frozen=True)
class TablePlan:
    spec: TableSpec
    dump: TableDump
    columns: tuple[str, ...]
    types: dict[str, str]
    key: tuple[str, ...]
    watermark_type: str | None
    laptop_only: tuple[str, ...] = ()  # laptop columns the dump lacks (--keep-dropped-columns)
    # Foreign keys of the trader's own (unsynced) tables onto this one.
    references: tuple[Reference, ...] = ()
    # Dump columns the laptop computes itself (GENERATED ALWAYS AS … STORED there): they
    # travel in the part and are staged, but never written, updated or compared.
    computed: tuple[str, ...] = ()

    @property
    def ident(self) -> sql.Identifier:
        return table_ident(self.spec.name)

    @property
    def label(self) -> str:
        return str(self.spec.name)

    def copied(self) -> sql.Composed:
        """The part's columns, as its COPY stream holds them."""
        return sql.SQL(", ").join(sql.Identifier(c.name) for c in self.dump.columns)

    def cols(self, alias: str | None = None) -> sql.Composed:
        return sql.SQL(", ").join(
            sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in self.columns)

    def comparable(self, alias: str, *, named: bool = False) -> sql.Composed:
        """The row as comparable values: types without ``=`` (and jsonb) as text."""
        parts = []
        for c in self.columns:
            value: sql.Composable = sql.Identifier(alias, c)
            if compared_as_text(self.types[c]):
                value = sql.SQL("{}::text").format(value)
            if named:
                value = sql.SQL("{} AS {}").format(value, sql.Identifier(c))
            parts.append(value)
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
        """The key as a jsonb object; built by pairs of at most 50 keys (a function takes
        at most 100 arguments)."""
        pieces = [sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
            sql.SQL("{}, {}").format(sql.Literal(k), sql.Identifier(alias, k))
            for k in self.key[i:i + 50])) for i in range(0, len(self.key), 50)]
        return sql.SQL(" || ").join(pieces)

    def in_range(self, part: Part, alias: str | None = None) -> sql.Composable:
        """The laptop's rows the part stands for: its day, the NULL-watermark rows, or all."""
        if self.spec.watermark is None or self.watermark_type is None:
            return sql.SQL("true")
        if part.watermark_null:
            return sql.SQL("{} IS NULL").format(
                sql.Identifier(alias, self.spec.watermark) if alias
                else sql.Identifier(self.spec.watermark))
        if part.day is None:
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
        spec = config.table(table.name)
        if spec is None:
            raise UnsafeManifestError(
                f"dump {manifest.dump_id} is refused: it names table {table.name}, "
                "which is not configured",
                "nothing was applied; add it as [[tables]] in the config if it should sync")
        if spec.mode is not table.mode:
            raise UnsafeManifestError(
                f"dump {manifest.dump_id} is refused: it sends {table.name} as {table.mode}, "
                f"the config says {spec.mode}",
                "nothing was applied; make [[tables]] mode the same on the instance and the "
                "laptop")
        names = [c.name for c in table.columns]
        if len(names) != len(set(names)):
            raise UnsafeManifestError(f"dump {manifest.dump_id}: {table.name} lists a column twice")


def plan_table(conn: psycopg.Connection[Any], config: Config, table: TableDump,
               options: SchemaOptions) -> tuple[TablePlan, bool]:
    """Check ``table`` against the laptop's (creating or widening it when allowed)."""
    spec = config.table(table.name)
    assert spec is not None  # check_manifest_safety ran first
    if spec.mode is not MergeMode.SNAPSHOT and table.watermark != spec.watermark:
        raise SchemaMismatchError(
            f"{spec.name}: the dump's watermark is {table.watermark!r}, "
            f"the config says {spec.watermark!r}",
            "make [[tables]] watermark the same on the instance and the laptop")
    live = read_columns(conn, spec.name)
    created = False
    if live is None:
        create_table(conn, spec, table)
        live = read_columns(conn, spec.name)
        created = True
    assert live is not None
    live_types = {c.name: c.type for c in live}
    for column in table.columns:
        local_type = live_types.get(column.name)
        if local_type is None:
            _add_column(conn, spec, column, options)
            live_types[column.name] = column.type
        elif local_type != column.type:
            raise SchemaMismatchError(
                f"{spec.name}: column {column.name!r} is {local_type} on the laptop "
                f"but {column.type} in the dump",
                f"alter the laptop column: ALTER TABLE {spec.name} ALTER COLUMN "
                f"{column.name} TYPE {column.type}")
    _check_laptop_only_columns(spec, table, live, options)
    incoming = {c.name for c in table.columns}
    key = spec.key or read_primary_key(conn, spec.name) or table.key
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
        wm_type = check_watermark_type(spec.name, spec.watermark, live_types.get(spec.watermark))
    computed = tuple(c.name for c in live if c.generated and c.name not in key)
    plan = TablePlan(spec, table, tuple(c.name for c in table.columns if c.name not in computed),
                     {c.name: c.type for c in table.columns}, tuple(key), wm_type,
                     tuple(c.name for c in live if c.name not in incoming and not c.generated),
                     read_references(conn, config, spec.name),
                     tuple(c for c in computed if c in incoming))
    return plan, created


def _add_column(conn: psycopg.Connection[Any], spec: TableSpec, column: Column,
                options: SchemaOptions) -> None:
    if not options.add_columns:
        raise SchemaMismatchError(
            f"{spec.name}: column {column.name!r} ({column.type}) is in the dump "
            "but not in the laptop table",
            "add the column to the laptop table, or sync with --add-columns (in the tray: "
            "Settings → Add columns the instance added)")
    target, name = table_ident(spec.name), sql.Identifier(column.name)
    if column.fill is None:
        conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
            target, name, type_sql(column.type)))
        logger.info("%s: added column %s (%s); existing rows hold NULL, as on the instance",
                    spec.name, column.name, column.type)
        return
    # The value the instance's rows that predate the column hold: the laptop's existing
    # rows get it too (PostgreSQL stores it once, no rewrite). No default is kept: rows the
    # sync writes carry their own value, as every other column's.
    conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} {} DEFAULT {}::{}").format(
        target, name, type_sql(column.type), sql.Literal(column.fill), type_sql(column.type)))
    conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(target, name))
    logger.info("%s: added column %s (%s); existing rows hold %.60r, as on the instance",
                spec.name, column.name, column.type, column.fill)


def _check_laptop_only_columns(spec: TableSpec, table: TableDump, live: list[TableColumn],
                               options: SchemaOptions) -> None:
    incoming = {c.name for c in table.columns}
    for col in live:
        if col.name in incoming or col.generated:  # computed: nothing of the trader's in it
            continue
        if col.not_null and not col.has_default:
            raise SchemaMismatchError(
                f"{spec.name}: laptop column {col.name!r} is NOT NULL without a default "
                "and the dump has no such column",
                "give it a default or allow NULL on the laptop")
        if not options.keep_dropped_columns:
            raise SchemaMismatchError(
                f"{spec.name}: laptop column {col.name!r} is not in the dump (dropped on "
                "the instance?); nothing was applied and the laptop keeps its values",
                f"to follow the instance, drop it on the laptop (ALTER TABLE {spec.name} "
                f"DROP COLUMN {col.name}); to keep it, sync with --keep-dropped-columns "
                "(or [sync] keep_dropped_columns = true; in the tray: Settings → Keep laptop "
                "columns the instance dropped): the laptop keeps the column and its "
                "values, rows the sync adds get its default (NULL without one)")
        logger.info("%s: keeping laptop column %s, which the dump does not have",
                    spec.name, col.name)


def create_table(conn: psycopg.Connection[Any], spec: TableSpec, table: TableDump) -> None:
    key = spec.key or table.key
    definitions: list[sql.Composable] = [
        sql.SQL("{} {}{}").format(sql.Identifier(c.name), type_sql(c.type),
                                  sql.SQL(" NOT NULL") if c.not_null else sql.SQL(""))
        for c in table.columns]
    if key and spec.mode is not MergeMode.REPLACE_RANGE:
        definitions.append(sql.SQL("PRIMARY KEY ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, key))))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
        sql.Identifier(spec.name.schema)))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(
        table_ident(spec.name), sql.SQL(", ").join(definitions)))
    if spec.watermark and (not key or key[0] != spec.watermark):
        conn.execute(sql.SQL("CREATE INDEX ON {} ({})").format(
            table_ident(spec.name), sql.Identifier(spec.watermark)))
    logger.info("created table %s from the dump's column list", spec.name)


def type_sql(type_text: str) -> sql.SQL:
    """A column type from a manifest, accepted only in the plain shapes format_type() writes."""
    if not _SAFE_TYPE.match(type_text) or len(type_text) > 100:
        raise UnsafeManifestError(
            f"the dump declares a column type the laptop will not create: {type_text!r}",
            "create the table on the laptop yourself, then sync again")
    return sql.SQL(type_text)
