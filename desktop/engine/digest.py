"""The row digest: one 64-bit value that stands for a row's non-key columns.

Two rows whose digests are equal are ``NOT DISTINCT`` (up to a 2^-64 chance of a random
collision): ``docs/design-notes.md`` ("The classifier's proof") argues it type by type and
``tests/desktop/test_digest_proof.py`` checks it on adversarial pairs of every type this
module accepts. A column of any other type makes the merge compare whole rows instead.
"""

from __future__ import annotations

import re

from psycopg import sql

# Compared (and EXCEPT-ed) as text: types with no equality operator, and jsonb, whose `=`
# (and hash) ignores a number's sign and scale inside the document ({"q": 1} = {"q": 1.0});
# its text is canonical (key order, spacing), so only a real change differs.
COMPARED_AS_TEXT = re.compile(r"^(json|jsonb|xml|point|line|lseg|box|path|polygon|circle)(\[\])*$")
# The row digest: hash_record_extended over the non-key columns. These types (and arrays of
# them, with their dimensions) hash every bit of their value and agree with `=`; numeric,
# bigint and timestamps need extra terms (see digest_terms). Any other type (money, bit,
# tsvector, interval, numeric[], domains, extension types …) makes the merge compare whole
# rows instead.
_TYPMOD = r"(\(\d+(,\d+)?\))?"
_FULL_HASH = re.compile(
    r"^(smallint|integer|real|double precision|text|character varying|character|bytea|boolean"
    rf"|date|uuid|inet|cidr|macaddr){_TYPMOD}(?P<array>(\[\])*)$")
_NUMERIC = re.compile(rf"^numeric{_TYPMOD}$")
_TIMESTAMP = re.compile(r"^timestamp(\(\d\))? with(out)? time zone$")
# Not 0 or 1: hash functions return the seed (or seed − 1) for zero, numeric NaN and
# infinities, and a NULL hashes to 0; a seed of 0 would make NULL and 0.0 look alike.
DIGEST_SEED = 0x6D61726B65747379  # "marketsy"
# Terms per ROW(): PostgreSQL allows 1,664 entries in a ROW or target list. A wider row is
# digested in chunks whose digests are digested again, so any table width has a digest.
CHUNK_TERMS = 1000


def compared_as_text(kind: str) -> bool:
    return COMPARED_AS_TEXT.match(kind) is not None


def digest_terms(ident: sql.Composable, kind: str) -> list[sql.Composable] | None:
    """What a column of type ``kind`` contributes to the row digest, or None if the digest
    cannot stand for its equality."""
    if compared_as_text(kind):
        return [sql.SQL("{}::text").format(ident)]
    full = _FULL_HASH.match(kind)
    if full:
        if full.group("array"):
            # an array's hash covers its elements only: {{1,2},{3,4}}, {1,2,3,4} and
            # [0:3]={1,2,3,4} hash alike; array_dims() adds the shape and lower bounds
            return [ident, sql.SQL("array_dims({})").format(ident)]
        return [ident]
    if _NUMERIC.match(kind):
        # numeric's hash leaves out the sign, and NaN and ±Infinity all hash alike
        return [ident, sql.SQL("{} < 0").format(ident), sql.SQL("{} = 'NaN'::numeric")
                .format(ident)]
    if kind == "bigint":
        # 8-byte integers hash their two halves XOR-ed together: add the high half
        return [ident, sql.SQL("({} >> 32)::integer").format(ident)]
    if _TIMESTAMP.match(kind):
        # hashed like bigint (microseconds); the epoch as float8 tells apart any two values
        # more than 2^32 µs (71 minutes) apart, so with the XOR-ed halves it is injective
        return [ident, sql.SQL("date_part('epoch', {})").format(ident)]
    return None


def digest_blocker(columns: tuple[str, ...], types: dict[str, str]) -> str | None:
    """The first column whose type the row digest does not cover, or None."""
    for c in columns:
        if digest_terms(sql.Identifier(c), types[c]) is None:
            return f"{c} ({types[c]})"
    return None


def row_digest(alias: str, columns: tuple[str, ...], types: dict[str, str]) -> sql.Composed:
    """The 64-bit digest of ``columns`` of the row ``alias`` (all covered by the digest)."""
    terms: list[sql.Composable] = []
    for c in columns:
        more = digest_terms(sql.Identifier(alias, c), types[c])
        assert more is not None, c
        terms += more
    if not terms:
        return sql.Composed([sql.SQL("0::bigint")])
    while len(terms) > CHUNK_TERMS:
        terms = [_hashed(terms[i:i + CHUNK_TERMS]) for i in range(0, len(terms), CHUNK_TERMS)]
    return _hashed(terms)


def _hashed(terms: list[sql.Composable]) -> sql.Composed:
    return sql.SQL("hash_record_extended(ROW({}), {})").format(
        sql.SQL(", ").join(terms), sql.Literal(DIGEST_SEED))
