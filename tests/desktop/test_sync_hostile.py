"""A damaged or hostile manifest changes nothing (issue 9 point 7): hand-made manifests in
moto S3, `market-sync sync` on the laptop: exit 1, one clear sentence quoting at most ~200
characters of any value, and the laptop database byte-for-byte as it was."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.devtools.motoserver import MotoServer
from shared.dumpstore import DumpRef
from shared.errors import ManifestError
from shared.manifest import MAX_MANIFEST_BYTES
from tests.desktop.coverage_world import laptop_bytes, seed_world, sync_cli, trade
from tests.helpers import World, at_ist

Doc = dict[str, Any]


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer, tmp_home: Path) -> World:
    w = seed_world(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    trade(w, "2026-11-19")
    trade(w, "2026-11-20")
    w.backup(at_ist("2026-11-20"))
    assert w.sync().exit_code == 0
    w.instance("DELETE FROM my_schema.positions WHERE run_date = '2026-11-20'")
    trade(w, "2026-11-23")
    w.backup(at_ist("2026-11-23"))  # pending: covers the 20th to the 23rd
    return w


def table(doc: Doc, name: str) -> Doc:
    found: Doc = next(t for t in doc["tables"] if t["table"] == name)
    return found


def set_in(name: str, **fields: Any) -> Callable[[Doc], None]:
    return lambda doc: table(doc, name).update(fields)


def part_of(name: str, index: int, **fields: Any) -> Callable[[Doc], None]:
    return lambda doc: table(doc, name)["parts"][index].update(fields)


HOSTILE: list[tuple[str, Callable[[Doc], None], str]] = [
    ("a part with no day for a watermarked table", part_of("ticks", 0, day=None),
     "must name its day"),
    ("a table total that its parts do not add up to",
     lambda d: table(d, "ticks").update(rows=table(d, "ticks")["rows"] + 1), "its parts hold"),
    ("a part on a day the table does not cover",
     set_in("ticks", covers=[["2026-11-23", "2026-11-23"]]), "not among the days"),
    ("covered days before the dump's range",
     set_in("positions", covers=[["2020-01-01", "2026-11-23"]]), "before the dump's range"),
    ("covered days running to the end of time",
     set_in("positions", covers=[["2026-11-20", "2026-11-23"], ["2026-11-25", "9999-12-31"]]),
     "may only name single days"),
    ("a megabyte in a date", part_of("ticks", 0, day="2026-11-20" + "9" * 1_000_000),
     "is not a date"),
    ("a megabyte in a column type", lambda d: table(d, "ticks")["columns"][0].update(
        type="bigint" + " " * 1_000_000), "not a plausible value"),
    ("a key that is not a column", set_in("ticks", key=["instrument_token", "nope"]),
     "not one of its columns"),
    ("a watermark that is not a day column", set_in("ticks", watermark="volume"),
     "is not a date or timestamp column"),
    ("a mode the config does not have", set_in("holdings", mode="upsert"),
     "the config says replace-range"),
    ("watermark bounds its parts contradict", set_in("ticks", watermark_min="2026-11-01"),
     "its parts' days are"),
    ("a NULL-watermark part of a table that does not cover them",
     lambda d: (set_in("positions", covers_null=False)(d),
                part_of("positions", 0, day=None, watermark_null=True)(d)),
     "does not cover NULL watermarks"),
    ("a previous dump after this one",
     lambda d: d.update(previous_dump_id="29991231T000000Z-00000000"), "does not come before"),
    ("a snapshot in two parts",
     lambda d: table(d, "market_structure")["parts"].append(
         dict(table(d, "market_structure")["parts"][0], file="x.copy.zst")),
     "exactly one part"),
]


def pending_manifest(world: World) -> tuple[str, Doc]:
    ref = world.store.list_dumps()[-1]
    raw = world.s3.get_object(Bucket=world.bucket, Key=ref.manifest_key)["Body"].read()
    return ref.manifest_key, json.loads(raw)


def refused(world: World, capsys: pytest.CaptureFixture[str]) -> str:
    """Sync; it must exit 1, change nothing, and say why in one sentence."""
    before = laptop_bytes(world)
    code, out, err = sync_cli(world, capsys, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False, out
    assert laptop_bytes(world) == before
    error: str = doc["error"]
    assert "\n" not in error and len(error) < 600, error
    assert "Traceback" not in err
    return error


@pytest.mark.parametrize(("change", "expected"), [(c, e) for _, c, e in HOSTILE],
                         ids=[name for name, _, _ in HOSTILE])
def test_a_hostile_manifest_changes_nothing_and_says_why(
        world: World, capsys: pytest.CaptureFixture[str], change: Callable[[Doc], None],
        expected: str) -> None:
    key, doc = pending_manifest(world)
    change(doc)
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=json.dumps(doc).encode())
    assert expected in refused(world, capsys)


@pytest.mark.parametrize("body", [
    b"[" * 200_000,  # nesting deeper than any parser's stack
    b'{"format": "market-sync-dump", "version": 2' + b" " * 100 + b"\xff\xfe}",
    b"",
], ids=["deep nesting", "not utf-8", "empty"])
def test_a_manifest_that_is_not_json_changes_nothing(
        world: World, capsys: pytest.CaptureFixture[str], body: bytes) -> None:
    key, _ = pending_manifest(world)
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=body)
    assert "is not valid JSON" in refused(world, capsys)


def test_a_manifest_over_16_mib_is_refused_before_it_is_read(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    key, doc = pending_manifest(world)
    padded = json.dumps(doc).encode() + b" " * MAX_MANIFEST_BYTES  # still valid JSON
    world.s3.put_object(Bucket=world.bucket, Key=key, Body=padded)
    fetched: list[str] = []
    world.s3.meta.events.register("before-call.s3.GetObject",
                                  lambda **kw: fetched.append("GetObject"))

    ref = world.store.list_dumps()[-1]
    with pytest.raises(ManifestError, match="more than the 16,777,216 a manifest may have"):
        world.store.load_manifest(ref)  # by the listing's size: never fetched
    assert fetched == []
    with pytest.raises(ManifestError, match="more than the 16,777,216"):
        world.store.load_manifest(DumpRef(ref.dump_id, ref.manifest_key))  # by its length
    assert "more than the 16,777,216" in refused(world, capsys)
