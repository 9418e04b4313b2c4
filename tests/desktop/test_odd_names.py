"""Names a trader's tables really have: a percent sign (psycopg reads ``%`` in a query as
a placeholder), spaces, quotes, upper case, and a column named like the conflict store's
own. The whole chain: backup, sync, a conflict saved, listed (``--json``, ``--csv``) and
put back."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from desktop.cli import main
from shared.devtools.motoserver import MotoServer
from tests.helpers import World, at_ist

TABLE = 'my_schema."Day%s ticks"'
DDL = f'''
CREATE SCHEMA my_schema;
CREATE TABLE {TABLE} ("Token%" bigint PRIMARY KEY, "run date" date NOT NULL,
                      "chg%" numeric(8,2), "say ""hi""" text, "#conflict" int,
                      "#version" text);
INSERT INTO {TABLE} VALUES (1, '2026-11-20', 1.5, 'a', 7, 'v1'),
                           (2, '2026-11-20', 2.5, 'b', 8, 'v2');
'''
TABLES = """
[[tables]]
name = 'my_schema."Day%s ticks"'
watermark = "run date"
"""


def cli(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["--config", str(world.laptop_config.path), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def test_odd_names_sync_conflict_list_and_restore(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer, capsys: pytest.CaptureFixture[str]) -> None:
    world = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url,
                  tables=TABLES)
    world.instance(DDL)
    everything = f"SELECT t::text FROM {TABLE} t ORDER BY 1"
    world.backup(at_ist("2026-11-20", 12))
    code, out = cli(world, capsys, "sync", "--json")
    assert code == 0, out
    assert world.laptop(everything) == world.instance_rows(everything)

    world.instance(f'UPDATE {TABLE} SET "chg%" = 9.99 WHERE "Token%" = 1')
    world.laptop(f'UPDATE {TABLE} SET "say ""hi""" = \'laptop\', "#conflict" = 70 '
                 'WHERE "Token%" = 1')
    world.instance(f'DELETE FROM {TABLE} WHERE "Token%" = 2')  # the day covered: local-only
    world.backup(at_ist("2026-11-20", 16))
    code, out = cli(world, capsys, "sync", "--json", "--policy", "server-wins")
    assert code == 0, out
    assert world.laptop(everything) == world.instance_rows(everything)

    code, out = cli(world, capsys, "conflicts", "--json")
    assert code == 0
    listed = {c["key"]["Token%"]: c for c in json.loads(out)["conflicts"]}
    assert listed[1]["local"] == {"Token%": 1, "run date": "2026-11-20", "chg%": 1.5,
                                  'say "hi"': "laptop", "#conflict": 70, "#version": "v1"}
    assert listed[1]["incoming"]["chg%"] == 9.99
    assert listed[2]["local"]["say \"hi\""] == "b" and listed[2]["incoming"] is None
    code, out = cli(world, capsys, "conflicts", "--csv")
    header = next(csv.reader(io.StringIO(out)))
    assert "laptop:chg%" in header and 'incoming:say "hi"' in header

    code, out = cli(world, capsys, "restore", *(str(c["id"]) for c in listed.values()))
    assert code == 0, out
    assert world.laptop(f'SELECT "Token%", "chg%", "say ""hi""", "#conflict" FROM {TABLE} '
                        'ORDER BY 1') == [(1, 1.5, "laptop", 70), (2, 2.5, "b", 8)]
