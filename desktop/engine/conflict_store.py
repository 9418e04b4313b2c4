"""Where a conflict's two versions are kept: tables with the table's own columns.

A conflict (``market_sync.conflicts``) is one row of bookkeeping: dump, table, key, policy,
winner. Its versions, the laptop's row and the incoming one, are rows of a *store*: tables
``market_sync.conflict_rows_<store>_<chunk>`` created from the table itself, so every value
keeps its type, its typmod and its collation, and no value is ever re-encoded. Nothing a
table can hold is then too big for its conflict copy: a 200 MB ``bytea`` is a 200 MB
``bytea`` there too (as one ``jsonb`` it would be 400 MB of hex, past jsonb's 256 MB).

A store is made per table and column set (names and types, in the table's order); when the
table's columns change, the next conflict gets a new store and the old conflicts keep
theirs (``market_sync.conflict_stores`` lists them). A store's columns are split into
chunks of at most ``CHUNK_COLUMNS`` columns and about ``CHUNK_BYTES`` of fixed width, each
chunk a table with ``"#conflict"`` and ``"#version"`` first (with more ``#`` where the table
has a column of that name): so a 1,600-column table (the most PostgreSQL allows) still
fits, and a row that fills a heap page still fits a chunk.

Showing a conflict (``market-sync conflicts``, the Conflicts window, the samples of an
``abort``) builds a ``jsonb`` per version in which a value longer than
``SHOWN_CHARACTERS`` is shortened to its beginning, its size and an md5, so that what is
shown stays small and two versions that differ still look different; ``restore`` puts back
the stored value itself.

Conflicts saved by earlier versions keep their versions as ``jsonb`` in
``market_sync.conflicts.local_row`` / ``incoming_row`` and are shown and restored from there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from shared.tables import QualifiedName

SCHEMA = "market_sync"
CONFLICT_COL, VERSION_COL = "#conflict", "#version"
SAVED = sql.Identifier("_market_sync_saved")  # the conflicts being saved: id, key, anchor
CHUNK_COLUMNS = 800
CHUNK_BYTES = 4000  # fixed width (a varlena counts as a TOAST pointer) per chunk row
SHOWN_CHARACTERS = 4096  # longer values are shown shortened (stored whole)
SHOWN_PREFIX = 200
VERSIONS = ("local", "incoming")


@dataclass(frozen=True)
class StoreColumn:
    name: str
    type: str  # format_type()
    kind: str  # "bytea", "text" (string category) or "other": how it is shown
    chunk: int


@dataclass(frozen=True)
class Store:
    id: int
    table_name: str
    columns: tuple[StoreColumn, ...]
    chunks: tuple[str, ...]  # relation names in market_sync, in order

    @property
    def cid(self) -> sql.Identifier:
        """The conflict id's column: ``"#conflict"``, or with more ``#`` if the table has a
        column of that name."""
        return sql.Identifier(_free(CONFLICT_COL, self.names))

    @property
    def ver(self) -> sql.Identifier:
        return sql.Identifier(_free(VERSION_COL, self.names))

    def chunk_columns(self, chunk: int) -> list[StoreColumn]:
        return [c for c in self.columns if c.chunk == chunk]

    def relation(self, chunk: int) -> sql.Identifier:
        return sql.Identifier(SCHEMA, self.chunks[chunk])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _free(name: str, taken: Iterable[str]) -> str:
    used = set(taken)
    while name in used:
        name += "#"
    return name


@dataclass(frozen=True)
class Version:
    """One version of each conflict being saved: ``rows`` is a FROM clause that joins the
    saved conflicts (alias ``s``) to the version's row (alias ``v``), which has ``columns``
    of the table's (None: all of them)."""

    name: str  # "local" or "incoming"
    rows: sql.Composable
    columns: tuple[str, ...] | None

    @classmethod
    def at(cls, name: str, relation: sql.Composable,
           columns: Iterable[str] | None = None) -> Version:
        """The row of ``relation`` the anchor points at with ``<name>_tab`` (its tableoid:
        a partitioned table repeats ctids) and ``<name>_at`` (its ctid). One TID lookup
        per conflict: ``OFFSET 0`` keeps the planner from hashing the whole relation."""
        return cls(name, sql.SQL(
            "FROM {saved} s CROSS JOIN LATERAL (SELECT * FROM {relation} x "
            "WHERE x.ctid = s.{at} AND x.tableoid = s.{tab} OFFSET 0) v").format(
                saved=SAVED, relation=relation, at=sql.Identifier(f"{name}_at"),
                tab=sql.Identifier(f"{name}_tab")),
            None if columns is None else tuple(columns))


@dataclass(frozen=True)
class Losers:
    """The conflicts of one merge step: ``anchor`` selects one row per conflict with a
    ``key`` (jsonb or NULL) and what the versions' FROM clauses join on (for
    :meth:`Version.at`: ``local_tab, local_at`` and/or ``incoming_tab, incoming_at``)."""

    anchor: sql.Composable
    versions: tuple[Version, ...]


def table_columns(conn: psycopg.Connection[Any], table: QualifiedName,
                  names: Iterable[str] | None = None) -> list[StoreColumn]:
    """The table's live, stored columns in order (those of ``names`` only, if given), with
    how each is shown and the chunk each goes to."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attlen,
               CASE WHEN b.oid = 'bytea'::regtype THEN 'bytea'
                    WHEN b.typcategory = 'S' THEN 'text' ELSE 'other' END
          FROM pg_attribute a
          JOIN pg_type t ON t.oid = a.atttypid
          JOIN pg_type b ON b.oid = COALESCE(NULLIF(t.typbasetype, 0), t.oid)
         WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attgenerated = ''
         ORDER BY a.attnum
        """, (sql.Identifier(table.schema, table.table).as_string(conn),)).fetchall()
    wanted = None if names is None else set(names)
    columns: list[StoreColumn] = []
    chunk, width, count = 0, 0, 0
    for name, kind, attlen, shown in rows:
        if wanted is not None and name not in wanted:
            continue
        size = int(attlen) if int(attlen) > 0 else 24  # a varlena: at most a TOAST pointer
        if count and (count >= CHUNK_COLUMNS or width + size > CHUNK_BYTES):
            chunk, width, count = chunk + 1, 0, 0
        columns.append(StoreColumn(str(name), str(kind), str(shown), chunk))
        width, count = width + size, count + 1
    return columns


def store_for(conn: psycopg.Connection[Any], table: QualifiedName,
              names: Iterable[str] | None) -> Store:
    """The store for ``names`` of ``table`` (None: all) as they are now: found, or made."""
    columns = table_columns(conn, table, names)
    signature = hashlib.sha256(json.dumps([(c.name, c.type) for c in columns]).encode()
                               ).hexdigest()
    label = str(table)
    row = conn.execute(
        "SELECT id, columns, chunks FROM market_sync.conflict_stores "
        "WHERE table_name = %s AND signature = %s", (label, signature)).fetchone()
    if row is not None:
        return _store(int(row[0]), label, row[1], row[2])
    found = conn.execute(
        "INSERT INTO market_sync.conflict_stores (table_name, signature, columns, chunks) "
        "VALUES (%s, %s, %s, '{}') RETURNING id",
        (label, signature, json.dumps([c.__dict__ for c in columns]))).fetchone()
    assert found is not None
    store_id = int(found[0])
    chunks = [f"conflict_rows_{store_id}_{k}"
              for k in range((columns[-1].chunk + 1) if columns else 1)]
    store = Store(store_id, label, tuple(columns), tuple(chunks))
    source = sql.Identifier(table.schema, table.table)
    cid, ver = store.cid, store.ver
    for k, relation in enumerate(chunks):
        ident = sql.Identifier(SCHEMA, relation)
        cols = [sql.SQL(", {}").format(sql.Identifier(c.name)) for c in columns if c.chunk == k]
        conn.execute(sql.SQL(
            "CREATE TABLE {ident} AS SELECT NULL::bigint AS {cid}, NULL::text AS {ver}{cols} "
            "FROM {source} WITH NO DATA").format(ident=ident, cid=cid, ver=ver,
                                                 cols=sql.Composed(cols), source=source))
        conn.execute(sql.SQL(
            "ALTER TABLE {ident} ALTER {cid} SET NOT NULL, ALTER {ver} SET NOT NULL, "
            "ADD PRIMARY KEY ({cid}, {ver}), ADD CHECK ({ver} IN ('local', 'incoming')), "
            "ADD FOREIGN KEY ({cid}) REFERENCES market_sync.conflicts (id) ON DELETE CASCADE"
        ).format(ident=ident, cid=cid, ver=ver))
    conn.execute("UPDATE market_sync.conflict_stores SET chunks = %s WHERE id = %s",
                 (chunks, store_id))
    return store


def load_store(conn: psycopg.Connection[Any], store_id: int) -> Store:
    row = conn.execute("SELECT table_name, columns, chunks FROM market_sync.conflict_stores "
                       "WHERE id = %s", (store_id,)).fetchone()
    assert row is not None, f"no conflict store {store_id}"
    return _store(store_id, str(row[0]), row[1], row[2])


def _store(store_id: int, label: str, columns: list[dict[str, Any]],
           chunks: Sequence[str]) -> Store:
    return Store(store_id, label, tuple(StoreColumn(**c) for c in columns), tuple(chunks))


# -- saving -----------------------------------------------------------------------------


def save(conn: psycopg.Connection[Any], table: QualifiedName, losers: Losers, *,
         dump_id: str, policy: str, winner: str) -> int:
    """Save one merge step's conflicts: a bookkeeping row each, and each version's row in
    its store. Returns how many were saved."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(SAVED))
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE {saved} AS SELECT nextval(pg_get_serial_sequence("
        "'market_sync.conflicts', 'id')) AS {cid}, x.* FROM ({anchor}) x").format(
            saved=SAVED, cid=sql.Identifier(CONFLICT_COL), anchor=losers.anchor))
    stores = {v.name: store_for(conn, table, v.columns) for v in losers.versions}
    local, incoming = (stores[name].id if name in stores else None for name in VERSIONS)
    cursor = conn.execute(sql.SQL(
        "INSERT INTO market_sync.conflicts (id, dump_id, table_name, key, local_store, "
        "incoming_store, policy, winner) SELECT {cid}, %s, %s, key, %s, %s, %s, %s FROM {saved}"
    ).format(cid=sql.Identifier(CONFLICT_COL), saved=SAVED),
        (dump_id, str(table), local, incoming, policy, winner))
    saved = cursor.rowcount
    for version in losers.versions:
        store = stores[version.name]
        for k in range(len(store.chunks)):
            names = [sql.Identifier(c.name) for c in store.chunk_columns(k)]
            conn.execute(sql.SQL(
                "INSERT INTO {chunk} ({cid}, {ver}{cols}) "
                "SELECT s.{sid}, {name}{vcols} {rows}").format(
                    chunk=store.relation(k), cid=store.cid, sid=sql.Identifier(CONFLICT_COL),
                    ver=store.ver,
                    cols=sql.Composed([sql.SQL(", {}").format(n) for n in names]),
                    name=sql.Literal(version.name),
                    vcols=sql.Composed([sql.SQL(", v.{}").format(n) for n in names]),
                    rows=version.rows))
    conn.execute(sql.SQL("DROP TABLE {}").format(SAVED))
    return saved


def samples(conn: psycopg.Connection[Any], table: QualifiedName, losers: Losers,
            limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` of the conflicts as they would be shown, without saving them."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(SAVED))
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE {saved} AS SELECT row_number() OVER () AS {cid}, x.* "
        "FROM ({anchor}) x LIMIT {limit}").format(
            saved=SAVED, cid=sql.Identifier(CONFLICT_COL), anchor=losers.anchor,
            limit=sql.Literal(limit)))
    keys = dict(conn.execute(sql.SQL("SELECT {}, key FROM {} ORDER BY 1").format(
        sql.Identifier(CONFLICT_COL), SAVED)).fetchall())
    shown: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in VERSIONS}
    for version in losers.versions:
        columns = table_columns(conn, table, version.columns)
        for start in range(0, len(columns), CHUNK_COLUMNS):
            rows = conn.execute(sql.SQL("SELECT s.{}, {} {}").format(
                sql.Identifier(CONFLICT_COL), shown_json("v", columns[start:start + CHUNK_COLUMNS]),
                version.rows)).fetchall()
            for cid, values in rows:
                shown[version.name].setdefault(int(cid), {}).update(values)
    conn.execute(sql.SQL("DROP TABLE {}").format(SAVED))
    return [{"key": key, "local": shown["local"].get(int(cid)),
             "incoming": shown["incoming"].get(int(cid))} for cid, key in keys.items()]


# -- showing ----------------------------------------------------------------------------


def shown_value(alias: str, column: StoreColumn) -> sql.Composable:
    """A value as jsonb, shortened past ``SHOWN_CHARACTERS`` to its beginning, its size and
    an md5 (a bytea is measured and cut as bytes: its text is twice as long and can pass
    the 1 GB a value may have)."""
    value = sql.Identifier(alias, column.name)
    if column.kind == "bytea":
        size = sql.SQL("octet_length({})").format(value)
        long = sql.SQL("{} * 2 + 2 > {}").format(size, sql.Literal(SHOWN_CHARACTERS))
        head = sql.SQL("'\\x' || encode(substring({} FROM 1 FOR {}), 'hex')").format(
            value, sql.Literal(SHOWN_PREFIX // 2))
        md5 = sql.SQL("md5({})").format(value)
    else:
        text = sql.SQL("{}::text").format(value)
        size = sql.SQL("octet_length({})").format(text)
        long = sql.SQL("{} > {}").format(size, sql.Literal(SHOWN_CHARACTERS))
        head = sql.SQL("left({}, {})").format(text, sql.Literal(SHOWN_PREFIX))
        md5 = sql.SQL("md5({})").format(text)
    return sql.SQL(
        "CASE WHEN {long} THEN to_jsonb({head} || '… (' || pg_size_pretty({size}::bigint) "
        "|| ' in all, md5 ' || left({md5}, 12) || ')') ELSE to_jsonb({value}) END").format(
            long=long, head=head, size=size, md5=md5, value=value)


def shown_json(alias: str, columns: Sequence[StoreColumn]) -> sql.Composable:
    """The columns as one jsonb object, 50 pairs per call (a function takes at most 100
    arguments)."""
    if not columns:
        return sql.SQL("'{}'::jsonb")
    return sql.SQL(" || ").join(
        sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
            sql.SQL("{}, {}").format(sql.Literal(c.name), shown_value(alias, c))
            for c in columns[i:i + 50])) for i in range(0, len(columns), 50))


def shown_versions(conn: psycopg.Connection[Any], wanted: Iterable[tuple[int, str, int]],
                   ) -> dict[tuple[int, str], dict[str, Any]]:
    """(conflict id, version, store id) triples → the version as shown."""
    by_store: dict[int, list[int]] = {}
    for cid, _version, store_id in wanted:
        by_store.setdefault(store_id, []).append(cid)
    shown: dict[tuple[int, str], dict[str, Any]] = {}
    for store_id, ids in by_store.items():
        store = load_store(conn, store_id)
        for k in range(len(store.chunks)):
            # No query parameters where the table's names are: psycopg would read a "%" in
            # a quoted name as a placeholder.
            rows = conn.execute(sql.SQL(
                "SELECT v.{cid}, v.{ver}, {json} FROM {chunk} v "
                "WHERE v.{cid} = ANY({ids}::bigint[])").format(
                    cid=store.cid, ver=store.ver, json=shown_json("v", store.chunk_columns(k)),
                    chunk=store.relation(k), ids=sql.Literal(sorted(set(ids))))).fetchall()
            for cid, version, values in rows:
                shown.setdefault((int(cid), str(version)), {}).update(values)
    return shown


# -- restoring --------------------------------------------------------------------------


def version_rows(store: Store, conflict_id: int, version: str,
                 names: Sequence[str]) -> sql.Composable:
    """``SELECT`` the stored version's ``names`` (its chunks joined) as alias ``v``'s."""
    chunks_used = sorted({c.chunk for c in store.columns if c.name in set(names)} or {0})
    first = chunks_used[0]
    aliases = {k: f"v{k}" for k in chunks_used}
    by_name = {c.name: c for c in store.columns}
    joins = sql.Composed([sql.SQL(" JOIN {} {} USING ({}, {})").format(
        store.relation(k), sql.Identifier(aliases[k]), store.cid, store.ver)
        for k in chunks_used[1:]])
    select: sql.Composable = sql.SQL("1")
    if names:
        select = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.Identifier(aliases[by_name[n].chunk], n),
                                       sql.Identifier(n)) for n in names)
    return sql.SQL("SELECT {select} FROM {first} {alias}{joins} "
                   "WHERE {alias}.{cid} = {id} AND {alias}.{ver} = {version}").format(
        select=select, first=store.relation(first), alias=sql.Identifier(aliases[first]),
        joins=joins, cid=store.cid, ver=store.ver,
        id=sql.Literal(conflict_id), version=sql.Literal(version))
