"""shared/tables.py: schema-qualified names with PostgreSQL's quoting rules, and table specs."""

from __future__ import annotations

import pytest

from shared.errors import ConfigError, TableNameError
from shared.tables import (
    MergeMode,
    QualifiedName,
    TableSpec,
    check_identifier,
    parse_qualified_name,
    quote_ident,
)


def test_quoted_table_keeps_its_case_and_space() -> None:
    assert parse_qualified_name('my_schema."Order Book"') == QualifiedName("my_schema",
                                                                           "Order Book")


def test_doubled_quote_inside_quotes_is_one_quote() -> None:
    assert parse_qualified_name('"a""b".c') == QualifiedName('a"b', "c")


def test_unquoted_names_fold_to_lower_case() -> None:
    assert parse_qualified_name("My_Schema.TICKS") == QualifiedName("my_schema", "ticks")


def test_unquoted_names_fold_only_ascii_letters_like_postgresql_in_utf8() -> None:
    # PostgreSQL's downcase_identifier folds A-Z only in a multi-byte encoding.
    assert parse_qualified_name("Ärger.Öl") == QualifiedName("Ärger", "Öl")


def test_unquoted_name_may_hold_digits_dollar_and_non_ascii() -> None:
    assert parse_qualified_name("s1.t$2_é") == QualifiedName("s1", "t$2_é")


def test_quoted_name_keeps_dots_and_upper_case() -> None:
    assert parse_qualified_name('"My.Schema"."A.B"') == QualifiedName("My.Schema", "A.B")


def test_name_without_schema_is_in_public() -> None:
    assert parse_qualified_name("ticks") == QualifiedName("public", "ticks")


def test_quoted_name_without_schema_is_in_public() -> None:
    assert parse_qualified_name('"Order Book"') == QualifiedName("public", "Order Book")


def test_whitespace_around_the_dot_is_ignored() -> None:
    assert parse_qualified_name('  my_schema . "Order Book"  ') == QualifiedName(
        "my_schema", "Order Book")


def test_non_ascii_space_is_not_whitespace_to_postgresql() -> None:
    # U+00A0 is an identifier character to PostgreSQL's scanner, not a separator.
    assert parse_qualified_name("\u00a0a.b") == QualifiedName("\u00a0a", "b")


def test_three_parts_are_refused() -> None:
    with pytest.raises(TableNameError, match="has 3 parts") as info:
        parse_qualified_name("db.my_schema.ticks")

    assert "schema.table" in info.value.hint


def test_table_name_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_qualified_name("a.b.c")


@pytest.mark.parametrize("text", ['my_schema."Order Book', '"', 'a."b""', '"a""'])
def test_unterminated_quote_is_refused(text: str) -> None:
    with pytest.raises(TableNameError, match="unterminated quote"):
        parse_qualified_name(text)


@pytest.mark.parametrize("text", ['"".t', 'my_schema.""'])
def test_empty_quoted_identifier_is_refused(text: str) -> None:
    with pytest.raises(TableNameError, match="empty table name part"):
        parse_qualified_name(text)


@pytest.mark.parametrize("text", ["", "   ", "my_schema.", "my_schema. "])
def test_missing_part_is_refused(text: str) -> None:
    with pytest.raises(TableNameError, match="incomplete"):
        parse_qualified_name(text)


@pytest.mark.parametrize(("text", "position"), [
    (".ticks", 1), ("my schema.ticks", 4), ("1abc.t", 1), ("a;drop table x", 2),
    ('a"b".c', 2), ("a..b", 3), ("Order Book", 7),
])
def test_unexpected_character_is_refused_with_its_position(text: str, position: int) -> None:
    with pytest.raises(TableNameError, match=f"position {position}") as info:
        parse_qualified_name(text)

    assert '"Order Book"' in info.value.hint


def test_identifier_of_63_bytes_is_accepted() -> None:
    assert parse_qualified_name("s." + "t" * 63).table == "t" * 63


def test_unquoted_identifier_over_63_bytes_is_refused() -> None:
    with pytest.raises(TableNameError, match="longer than PostgreSQL's 63 bytes"):
        parse_qualified_name("s." + "t" * 64)


def test_quoted_identifier_over_63_bytes_counts_bytes_not_characters() -> None:
    name = "é" * 32  # 32 characters, 64 bytes in UTF-8
    with pytest.raises(TableNameError, match="63 bytes"):
        parse_qualified_name(f'"{name}".t')


def test_nul_in_quoted_identifier_is_refused() -> None:
    with pytest.raises(TableNameError, match="NUL"):
        parse_qualified_name('"a\x00b".t')


@pytest.mark.parametrize(("name", "shown"), [
    (QualifiedName("my_schema", "ticks"), "my_schema.ticks"),
    (QualifiedName("my_schema", "Order Book"), 'my_schema."Order Book"'),
    (QualifiedName('a"b', "c"), '"a""b".c'),
    (QualifiedName("public", "Ticks"), 'public."Ticks"'),
    (QualifiedName("public", "1st"), 'public."1st"'),
    (QualifiedName("s", "a.b"), 's."a.b"'),
    (QualifiedName("s", "t$1"), "s.t$1"),
])
def test_display_form_quotes_only_when_needed(name: QualifiedName, shown: str) -> None:
    assert str(name) == shown


@pytest.mark.parametrize("name", [
    QualifiedName("my_schema", "ticks"),
    QualifiedName("my_schema", "Order Book"),
    QualifiedName('a"b', "c"),
    QualifiedName('"', '""'),
    QualifiedName("Ärger", "Öl"),
    QualifiedName("public", " lead and trail "),
    QualifiedName("s", "a.b"),
    QualifiedName("s", "tab\there"),
    QualifiedName("s", "x" * 63),
])
def test_display_form_round_trips_through_parse(name: QualifiedName) -> None:
    assert parse_qualified_name(str(name)) == name


def test_quote_ident_doubles_embedded_quotes() -> None:
    assert quote_ident('say "hi"') == '"say ""hi"""'


def test_qualified_name_parts_are_schema_then_table() -> None:
    assert QualifiedName("s", "t").parts == ("s", "t")


def test_qualified_names_sort_by_schema_then_table() -> None:
    names = [QualifiedName("b", "a"), QualifiedName("a", "z"), QualifiedName("a", "b")]

    assert sorted(names) == [QualifiedName("a", "b"), QualifiedName("a", "z"),
                             QualifiedName("b", "a")]


def test_check_identifier_returns_a_valid_name_unchanged() -> None:
    assert check_identifier("Order Book") == "Order Book"


# -- TableSpec ---------------------------------------------------------------------------------

def test_table_spec_defaults_are_upsert_on_run_date_by_primary_key() -> None:
    spec = TableSpec(QualifiedName("s", "t"))

    assert (spec.mode, spec.watermark, spec.key) == (MergeMode.UPSERT, "run_date", ())


def test_snapshot_spec_drops_its_watermark() -> None:
    spec = TableSpec(QualifiedName("s", "t"), mode=MergeMode.SNAPSHOT)

    assert spec.watermark is None


@pytest.mark.parametrize("mode", [MergeMode.UPSERT, MergeMode.REPLACE_RANGE])
def test_spec_with_a_watermark_mode_but_no_watermark_is_refused(mode: MergeMode) -> None:
    with pytest.raises(TableNameError, match="no watermark column"):
        TableSpec(QualifiedName("s", "t"), mode=mode, watermark=None)


def test_spec_with_an_empty_key_column_is_refused() -> None:
    with pytest.raises(TableNameError, match="empty key column of s.t"):
        TableSpec(QualifiedName("s", "t"), key=("a", ""))


def test_spec_with_an_overlong_watermark_is_refused() -> None:
    with pytest.raises(TableNameError, match="watermark column of s.t"):
        TableSpec(QualifiedName("s", "t"), watermark="w" * 64)


def test_spec_key_columns_are_taken_literally() -> None:
    spec = TableSpec(QualifiedName("s", "t"), key=("Instrument Token", "TS"))

    assert spec.key == ("Instrument Token", "TS")


# -- against a real PostgreSQL -----------------------------------------------------------------

@pytest.mark.parametrize("text", [
    'My_Schema."Order Book"', '"a""b".c', "MY_SCHEMA.TICKS", "Ärger.Öl", "ticks",
    ' "Mixed Case" . Tab$1 ',
])
def test_parse_agrees_with_postgresql_on_what_the_name_means(laptop_db: str, text: str) -> None:
    import psycopg

    expected = parse_qualified_name(text)
    with psycopg.connect(laptop_db, autocommit=True) as conn:
        if expected.schema != "public":
            conn.execute(f"CREATE SCHEMA {quote_ident(expected.schema)}")
        conn.execute(f"CREATE TABLE {text} (x int)")
        stored = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema')").fetchall()

    assert stored == [expected.parts]
