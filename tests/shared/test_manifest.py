"""shared/manifest.py: dump format v1 is written and read back exactly, and validated on read."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from shared.errors import ManifestError
from shared.manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Column,
    Manifest,
    Part,
    SchemaFile,
    Source,
    TableDump,
    dump_folder,
    manifest_sha256,
    new_dump_id,
    parse_manifest,
    part_file_name,
)
from shared.manifest_read import quote
from shared.tables import MergeMode, QualifiedName

SHA_A = "a" * 64
SHA_B = "0123456789abcdef" * 4
KEY = "dumps/2025/10/21/20251021T103000Z-0a1b2c3d/manifest.json"


def sample_manifest() -> Manifest:
    ticks = QualifiedName("my_schema", "ticks")
    book = QualifiedName("my_schema", "Order Book")
    return Manifest(
        dump_id="20251021T103000Z-0a1b2c3d",
        previous_dump_id="20251020T103000Z-ffffffff",
        created_at=dt.datetime(2025, 10, 21, 16, 0, 5, tzinfo=dt.timezone(dt.timedelta(
            hours=5, minutes=30))),
        source=Source("i-0123456789abcdef0", "market", "16.4"),
        kind="incremental",
        first_day=dt.date(2025, 10, 20),
        last_day=dt.date(2025, 10, 21),
        tables=(
            TableDump(
                name=ticks,
                columns=(Column("instrument_token", "bigint", True),
                         Column("exchange_timestamp", "timestamp with time zone", True),
                         Column("run_date", "date", True),
                         Column("last_price", "numeric(12,2)")),
                key=("instrument_token", "exchange_timestamp"),
                watermark="run_date",
                mode=MergeMode.UPSERT,
                parts=(
                    Part(part_file_name(ticks, dt.date(2025, 10, 20)), dt.date(2025, 10, 20),
                         1000, 20480, SHA_A, SHA_B),
                    Part(part_file_name(ticks, dt.date(2025, 10, 21)), dt.date(2025, 10, 21),
                         0, 13, SHA_B, SHA_A),
                ),
                watermark_min=dt.date(2025, 10, 20),
                watermark_max=dt.date(2025, 10, 21),
                covers=((dt.date(2025, 10, 20), dt.date(2025, 10, 21)),),
                covers_null=True,
                history_from=dt.date(2025, 9, 1),
            ),
            TableDump(
                name=book,
                columns=(Column("Side", "text"), Column("levels", "double precision[]")),
                key=(),
                watermark=None,
                mode=MergeMode.SNAPSHOT,
                parts=(Part(part_file_name(book, None), None, 7, 99, SHA_A, SHA_A),),
            ),
        ),
        schema=SchemaFile("schema.sql.zst", 512, SHA_B),
    )


def sample_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(sample_manifest().to_json())
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def manifest_error(doc: Any) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse_manifest(encode(doc) if not isinstance(doc, bytes) else doc, KEY)
    return info.value


# -- round trip ------------------------------------------------------------------------------

def test_to_json_then_parse_gives_the_same_manifest() -> None:
    manifest = sample_manifest()

    assert parse_manifest(manifest.to_json(), KEY) == manifest


def test_round_trip_keeps_a_full_dump_without_range_or_schema() -> None:
    manifest = Manifest(
        dump_id="20260102T000000Z-00000000", previous_dump_id=None,
        created_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        source=Source("i-1", "db", "17.0"), kind="full", first_day=None, last_day=None,
        tables=(),
    )

    assert parse_manifest(manifest.to_json()) == manifest


def test_to_json_writes_format_name_and_version() -> None:
    doc = sample_doc()

    assert (doc["format"], doc["version"]) == (FORMAT_NAME, FORMAT_VERSION)


def test_to_json_writes_table_totals_from_its_parts() -> None:
    table = sample_doc()["tables"][0]

    assert (table["rows"], table["bytes"]) == (1000, 20480 + 13)


def test_to_json_keeps_unicode_readable() -> None:
    name = QualifiedName("s", "Börse")
    manifest = Manifest(
        dump_id="20260102T000000Z-00000000", previous_dump_id=None,
        created_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC), source=Source("i", "d", "16"),
        kind="full", first_day=None, last_day=None,
        tables=(TableDump(name, (Column("x", "int"),), (), None, MergeMode.SNAPSHOT, ()),),
    )

    assert "Börse".encode() in manifest.to_json()


def test_manifest_totals_sum_over_tables_and_parts() -> None:
    manifest = sample_manifest()

    assert (manifest.rows, manifest.compressed_bytes) == (1007, 20480 + 13 + 99)


def test_covered_days_is_the_range_or_none() -> None:
    manifest = sample_manifest()

    assert manifest.covered_days() == (dt.date(2025, 10, 20), dt.date(2025, 10, 21))
    snapshots_only = {**sample_doc(), "range": None}
    snapshots_only["tables"] = snapshots_only["tables"][1:]
    assert parse_manifest(encode(snapshots_only)).covered_days() is None


def test_manifest_sha256_is_the_hex_digest_of_the_raw_bytes() -> None:
    assert manifest_sha256(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


# -- version and format ----------------------------------------------------------------------

@pytest.mark.parametrize(("version", "hint"), [(3, "update market-sync"), (0, "--full")])
def test_unknown_version_is_refused_with_advice_for_its_direction(version: int,
                                                                  hint: str) -> None:
    error = manifest_error({**sample_doc(), "version": version})

    assert f"version {version}" in error.message
    assert f"reads version {FORMAT_VERSION}" in error.message
    assert KEY in error.message
    assert hint in error.hint


def test_version_given_as_true_is_a_type_error_not_version_one() -> None:
    error = manifest_error({**sample_doc(), "version": True})

    assert "version must be int, not bool" in error.message


def test_version_given_as_text_is_refused() -> None:
    error = manifest_error({**sample_doc(), "version": "1"})

    assert "version must be int, not str" in error.message


def test_wrong_format_name_is_refused() -> None:
    error = manifest_error({**sample_doc(), "format": "pg_dump"})

    assert f"format is not '{FORMAT_NAME}'" in error.message


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000])
def test_unreadable_json_is_a_manifest_error(raw: bytes) -> None:
    error = manifest_error(raw)

    assert "is not valid JSON" in error.message


@pytest.mark.parametrize("doc", [[], "manifest", 1, None])
def test_json_that_is_not_an_object_is_refused(doc: Any) -> None:
    error = manifest_error(doc)

    assert "is not an object" in error.message


def test_error_names_the_manifest_key() -> None:
    error = manifest_error({**sample_doc(), "kind": "partial"})

    assert error.message.startswith(f"manifest {KEY} is refused: kind ")


# -- missing fields ----------------------------------------------------------------------------

def _required_paths() -> list[tuple[str, ...]]:
    doc = sample_doc()
    paths: list[tuple[str, ...]] = [(k,) for k in doc if k not in ("schema_sql",)]
    paths += [("source", k) for k in doc["source"]]
    paths += [("range", k) for k in doc["range"]]
    paths += [("tables", "0", k) for k in ("schema", "table", "columns", "key", "watermark",
                                           "mode", "parts", "watermark_min", "watermark_max")]
    paths += [("tables", "0", "columns", "1", k) for k in doc["tables"][0]["columns"][1]]
    paths += [("tables", "0", "parts", "1", k) for k in doc["tables"][0]["parts"][1]]
    paths += [("schema_sql", k) for k in doc["schema_sql"]]
    return paths


def _dotted(path: tuple[str, ...]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if step.isdigit() else (f".{step}" if text else step)
    return text


def _at(doc: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        doc = doc[int(step)] if step.isdigit() else doc[step]
    return doc


@pytest.mark.parametrize("path", _required_paths(), ids=_dotted)
def test_each_missing_required_field_is_named_by_its_path(path: tuple[str, ...]) -> None:
    doc = sample_doc()
    del _at(doc, path[:-1])[path[-1]]

    error = manifest_error(doc)

    assert f": {_dotted(path)} is missing" in error.message


def test_missing_schema_sql_is_refused_but_null_is_allowed() -> None:
    doc = sample_doc()
    assert parse_manifest(encode({**doc, "schema_sql": None})).schema is None
    del doc["schema_sql"]

    assert "schema_sql is missing" in manifest_error(doc).message


# -- wrong types -----------------------------------------------------------------------------

WrongType = tuple[str, Callable[[dict[str, Any]], None], str]

WRONG_TYPES: list[WrongType] = [
    ("dump_id number", lambda d: d.update(dump_id=20251021), "dump_id must be str, not int"),
    ("created_at number", lambda d: d.update(created_at=1), "created_at must be str, not int"),
    ("source list", lambda d: d.update(source=[]), "source must be dict, not list"),
    ("source.database null", lambda d: d["source"].update(database=None),
     "source.database must be str, not NoneType"),
    ("kind bool", lambda d: d.update(kind=True), "kind must be str, not bool"),
    ("range list", lambda d: d.update(range=["2025-10-20"]), "range must be dict, not list"),
    ("tables object", lambda d: d.update(tables={}), "tables must be list, not dict"),
    ("table entry string", lambda d: d.update(tables=["ticks"]), "tables[0] is not an object"),
    ("schema number", lambda d: d["tables"][0].update(schema=1),
     "tables[0].schema must be str, not int"),
    ("columns string", lambda d: d["tables"][0].update(columns="x"),
     "tables[0].columns must be list, not str"),
    ("not_null int", lambda d: d["tables"][0]["columns"][0].update(not_null=1),
     "tables[0].columns[0].not_null must be bool, not int"),
    ("key string", lambda d: d["tables"][0].update(key="instrument_token"),
     "tables[0].key must be list, not str"),
    ("key numbers", lambda d: d["tables"][0].update(key=[1]),
     "tables[0].key must be a list of strings"),
    ("watermark number", lambda d: d["tables"][0].update(watermark=1),
     "tables[0].watermark must be str, not int"),
    ("rows bool", lambda d: d["tables"][0]["parts"][0].update(rows=True),
     "tables[0].parts[0].rows must be int, not bool"),
    ("bytes bool", lambda d: d["tables"][0]["parts"][0].update(bytes=False),
     "tables[0].parts[0].bytes must be int, not bool"),
    ("rows float", lambda d: d["tables"][0]["parts"][0].update(rows=1.5),
     "tables[0].parts[0].rows must be int, not float"),
    ("rows text", lambda d: d["tables"][0]["parts"][0].update(rows="1000"),
     "tables[0].parts[0].rows must be int, not str"),
    ("day number", lambda d: d["tables"][0]["parts"][0].update(day=20251020),
     "tables[0].parts[0].day must be str, not int"),
    ("schema_sql bytes bool", lambda d: d["schema_sql"].update(bytes=True),
     "schema_sql.bytes must be int, not bool"),
]


@pytest.mark.parametrize(("change", "expected"), [(c, e) for _, c, e in WRONG_TYPES],
                         ids=[name for name, _, _ in WRONG_TYPES])
def test_wrong_type_is_named_by_its_field_path(change: Callable[[dict[str, Any]], None],
                                               expected: str) -> None:
    doc = sample_doc()
    change(doc)

    error = manifest_error(doc)

    assert expected in error.message


BadValue = tuple[str, Callable[[dict[str, Any]], None], str]

BAD_VALUES: list[BadValue] = [
    ("dump_id shape", lambda d: d.update(dump_id="latest"), "dump_id is not a dump id"),
    ("dump_id newline", lambda d: d.update(dump_id="20251021T103000Z-0a1b2c3d\n"),
     "dump_id is not a dump id"),
    ("previous shape", lambda d: d.update(previous_dump_id="x"),
     "previous_dump_id is not a dump id"),
    ("created_at text", lambda d: d.update(created_at="yesterday"),
     "created_at is not an ISO timestamp"),
    ("kind", lambda d: d.update(kind="partial"), "kind must be 'incremental' or 'full'"),
    ("range first", lambda d: d["range"].update(first="2025-13-01"),
     "range.first is not a date"),
    ("range backwards", lambda d: d.update(range={"first": "2025-10-21", "last": "2025-10-20"}),
     "range ends before it starts"),
    ("no columns", lambda d: d["tables"][0].update(columns=[]), "tables[0].columns is empty"),
    ("mode", lambda d: d["tables"][0].update(mode="merge"),
     "tables[0].mode is not a merge mode"),
    ("part day", lambda d: d["tables"][0]["parts"][0].update(day="2025-10-32"),
     "tables[0].parts[0].day is not a date"),
    ("negative rows", lambda d: d["tables"][0]["parts"][0].update(rows=-1),
     "tables[0].parts[0].rows is negative"),
    ("negative bytes", lambda d: d["tables"][0]["parts"][0].update(bytes=-5),
     "tables[0].parts[0].bytes is negative"),
    ("sha upper case", lambda d: d["tables"][0]["parts"][0].update(sha256=SHA_A.upper()),
     "tables[0].parts[0].sha256 is not a sha256 hex digest"),
    ("sha short", lambda d: d["tables"][0]["parts"][0].update(sha256="ab" * 31),
     "tables[0].parts[0].sha256 is not a sha256 hex digest"),
    ("sha long", lambda d: d["tables"][0]["parts"][0].update(sha256=SHA_A + "0"),
     "tables[0].parts[0].sha256 is not a sha256 hex digest"),
    ("sha newline", lambda d: d["tables"][0]["parts"][0].update(sha256=SHA_A + "\n"),
     "tables[0].parts[0].sha256 is not a sha256 hex digest"),
    ("content sha", lambda d: d["tables"][0]["parts"][1].update(content_sha256="xyz"),
     "tables[0].parts[1].content_sha256 is not a sha256 hex digest"),
    ("schema sha", lambda d: d["schema_sql"].update(sha256="0"),
     "schema_sql.sha256 is not a sha256 hex digest"),
]


@pytest.mark.parametrize(("change", "expected"), [(c, e) for _, c, e in BAD_VALUES],
                         ids=[name for name, _, _ in BAD_VALUES])
def test_bad_value_is_named_by_its_field_path(change: Callable[[dict[str, Any]], None],
                                              expected: str) -> None:
    doc = sample_doc()
    change(doc)

    error = manifest_error(doc)

    assert expected in error.message


def test_range_of_one_day_is_accepted() -> None:
    doc = {**sample_doc(), "range": {"first": "2025-10-21", "last": "2025-10-21"}}
    ticks = doc["tables"][0]
    dropped = ticks["parts"].pop(0)
    ticks.update(rows=ticks["rows"] - dropped["rows"], bytes=ticks["bytes"] - dropped["bytes"],
                 watermark_min="2025-10-21", covers=[["2025-10-21", "2025-10-21"]])

    assert parse_manifest(encode(doc)).covered_days() == (dt.date(2025, 10, 21),) * 2


# -- part file names -------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "../x", "a/b", ".hidden", "..", "x/../../etc/passwd", "a\\b", "C:x", "a b",
    "x.copy.zst\n", "", "é.copy.zst", "a..b", "x" * 901,
])
def test_unsafe_part_file_name_is_refused(name: str) -> None:
    doc = sample_doc()
    doc["tables"][0]["parts"][0]["file"] = name

    error = manifest_error(doc)

    assert "tables[0].parts[0].file is not a safe object name" in error.message


def test_unsafe_schema_file_name_is_refused() -> None:
    doc = sample_doc()
    doc["schema_sql"]["file"] = "../schema.sql"

    assert "schema_sql.file is not a safe object name" in manifest_error(doc).message


def test_same_part_file_twice_is_refused() -> None:
    doc = sample_doc()
    doc["tables"][1]["parts"][0]["file"] = doc["tables"][0]["parts"][0]["file"]

    assert "tables name the same part file twice" in manifest_error(doc).message


def test_same_table_twice_is_refused() -> None:
    doc = sample_doc()
    twin = json.loads(json.dumps(doc["tables"][0]))
    for number, part in enumerate(twin["parts"]):
        part["file"] = f"twin-{number}.copy.zst"
    doc["tables"].append(twin)

    assert "tables name the same table twice" in manifest_error(doc).message


@pytest.mark.parametrize(("name", "day", "expected"), [
    (QualifiedName("my_schema", "ticks"), dt.date(2025, 10, 21),
     "my_schema.ticks.2025-10-21.copy.zst"),
    (QualifiedName("my_schema", "Order Book"), None, "my_schema.Order%20Book.all.copy.zst"),
    (QualifiedName('a"b', "c'd"), None, "a%22b.c%27d.all.copy.zst"),
    (QualifiedName("a/b", "..\\x"), None, "a%2Fb.%2E%2E%5Cx.all.copy.zst"),
    (QualifiedName("börse", "t.1"), None, "b%C3%B6rse.t%2E1.all.copy.zst"),
])
def test_part_file_name_escapes_everything_but_plain_letters(name: QualifiedName,
                                                             day: dt.date | None,
                                                             expected: str) -> None:
    assert part_file_name(name, day) == expected


@pytest.mark.parametrize("name", [
    QualifiedName("my_schema", "Order Book"), QualifiedName("..", ".."),
    QualifiedName("/", "\\"), QualifiedName("\x00", "\n"), QualifiedName("é" * 31, "😀" * 15),
])
def test_part_file_name_is_accepted_by_the_reader(name: QualifiedName) -> None:
    doc = sample_doc()
    doc["tables"][0]["parts"][0]["file"] = part_file_name(name, dt.date(2025, 10, 20))

    parse_manifest(encode(doc))


def test_part_file_names_of_different_tables_differ() -> None:
    names = [QualifiedName("a.b", "c"), QualifiedName("a", "b.c"), QualifiedName("a", "b%2Ec")]

    files = {part_file_name(name, None) for name in names}

    assert len(files) == len(names)


# -- dump ids and folders --------------------------------------------------------------------

def test_new_dump_id_has_the_documented_shape() -> None:
    dump_id = new_dump_id(dt.datetime(2025, 10, 21, 16, 0, tzinfo=dt.timezone(
        dt.timedelta(hours=5, minutes=30))))

    assert re.fullmatch(r"20251021T103000Z-[0-9a-f]{8}", dump_id)


def test_new_dump_ids_sort_by_time() -> None:
    start = dt.datetime(2025, 12, 31, 23, 59, 58, tzinfo=dt.UTC)
    moments = [start + dt.timedelta(seconds=s) for s in (0, 1, 2, 3600, 86400 * 40)]

    ids = [new_dump_id(moment) for moment in moments]

    assert sorted(ids) == ids
    assert len(set(ids)) == len(ids)


def test_new_dump_ids_sort_by_utc_time_whatever_the_zone() -> None:
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    earlier = new_dump_id(dt.datetime(2025, 10, 21, 9, 0, tzinfo=ist))  # 03:30 UTC
    later = new_dump_id(dt.datetime(2025, 10, 21, 4, 0, tzinfo=dt.UTC))

    assert earlier < later


def test_new_dump_id_without_a_time_uses_now() -> None:
    before = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")

    dump_id = new_dump_id()

    after = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    assert before <= dump_id[:16] <= after


def test_new_dump_id_is_accepted_by_the_reader() -> None:
    doc = {**sample_doc(), "dump_id": new_dump_id()}

    parse_manifest(encode(doc))


def test_dump_folder_is_dated_by_the_dump_id_under_the_prefix() -> None:
    assert dump_folder("prod/", "20251021T103000Z-0a1b2c3d") == (
        "prod/dumps/2025/10/21/20251021T103000Z-0a1b2c3d/")


def test_part_outside_the_dump_range_is_refused() -> None:
    doc = {**sample_doc(), "range": {"first": "2025-10-22", "last": "2025-10-23"}}

    with pytest.raises(ManifestError, match=r"covers starts at 2025-10-20, before the dump's "
                       r"range 2025-10-22 … 2025-10-23"):
        parse_manifest(encode(doc))


# -- format v2: coverage -----------------------------------------------------------------------

def test_quote_cuts_a_long_value_to_200_characters() -> None:
    text = quote("9" * 1_000_000)

    assert len(text) < 240 and text.endswith("(1,000,002 characters)")


def test_a_format_1_manifest_covers_exactly_the_days_of_its_parts() -> None:
    doc = sample_doc()
    doc["version"] = 1
    for t in doc["tables"]:
        for name in ("covers", "covers_null", "history_from"):
            del t[name]
        for p in t["parts"]:
            del p["watermark_null"]

    ticks = parse_manifest(encode(doc)).tables[0]

    assert ticks.covers == ((dt.date(2025, 10, 20),) * 2, (dt.date(2025, 10, 21),) * 2)
    assert not ticks.covers_null and ticks.history_from is None


def test_empty_ranges_are_the_covered_days_no_part_stands_for() -> None:
    ticks = sample_manifest().tables[0]
    day = dt.date(2025, 10, 15)
    wider = TableDump(ticks.name, ticks.columns, ticks.key, ticks.watermark, ticks.mode,
                      ticks.parts, covers=((day, dt.date(2025, 10, 22)),))

    assert wider.empty_ranges() == [(day, dt.date(2025, 10, 19)),
                                    (dt.date(2025, 10, 22), dt.date(2025, 10, 22))]


def test_the_null_watermark_part_has_its_own_file_and_ledger_key() -> None:
    name = QualifiedName("my_schema", "ticks")
    part = Part(part_file_name(name, None, null=True), None, 2, 9, SHA_A, SHA_B,
                watermark_null=True)

    assert part.file == "my_schema.ticks.null.copy.zst" and part.day_key == "(null)"
