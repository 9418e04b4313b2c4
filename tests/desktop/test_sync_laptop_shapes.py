"""The trader's own laptop database against the sync: foreign keys, constraints, triggers,
a second sync at the same time, a role without CREATE, a killed sync, identity columns.

Each test is the trader's side: ``market-sync sync --json`` in, the laptop database out.
The promise: after a sync the laptop database is either fully updated or untouched, what
cannot be applied is one clear sentence, and nothing of the trader's is lost silently.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from desktop.cli import main
from desktop.engine.progress import SyncProgress
from shared.devtools.motoserver import MotoServer
from shared.devtools.pgcluster import PgCluster
from tests.helpers import TICKS_DDL, World, at_ist, make_config

DDL = TICKS_DDL + """
CREATE TABLE my_schema.positions (run_date date NOT NULL, tradingsymbol text NOT NULL,
                                  quantity integer, pnl numeric(12,2));
"""

TABLES = """
[[tables]]
name = "my_schema.ticks"

[[tables]]
name = "my_schema.positions"
mode = "replace-range"
"""

TICKS = """
INSERT INTO my_schema.ticks
SELECT 100 + i, %(day)s::date + time '09:15' + make_interval(secs => i), %(day)s::date,
       round((1000 + i * 0.05)::numeric, 2), i
  FROM generate_series(1, 5) AS i
"""

POSITIONS = """
INSERT INTO my_schema.positions VALUES (%(day)s, 'NIFTY', 75, 10.5), (%(day)s, 'RELIANCE', 1, -2)
"""

EVERYTHING = ("SELECT 'ticks', t::text FROM my_schema.ticks t UNION ALL "
              "SELECT 'positions', p::text FROM my_schema.positions p ORDER BY 1, 2")
LEDGER = "SELECT dump_id FROM market_sync.applied_dumps ORDER BY 1"


def seed_day(world: World, day: str) -> None:
    world.instance(TICKS, {"day": day})
    world.instance(POSITIONS, {"day": day})


@pytest.fixture
def world(tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
          moto_server: MotoServer, tmp_home: Path) -> World:
    """Days 19 and 20 of ticks (keyed) and positions (replace-range) on the laptop."""
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url, TABLES)
    w.instance(DDL)
    seed_day(w, "2026-11-19")
    w.backup(at_ist("2026-11-19"))
    seed_day(w, "2026-11-20")
    w.backup(at_ist("2026-11-20"))
    assert w.sync().exit_code == 0
    return w


def cli(world: World, capsys: pytest.CaptureFixture[str], *args: str,
        config: Path | None = None) -> tuple[int, dict[str, Any]]:
    code = main(["--config", str(config or world.laptop_config.path), "sync", "--json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, json.loads(out)


def one_sentence(doc: dict[str, Any]) -> str:
    """The error the trader reads: one line, no bug report, no traceback."""
    message = str(doc["error"])
    assert "\n" not in message and "unexpected error" not in message, message
    return message


def same_as_instance(world: World) -> None:
    assert world.laptop(EVERYTHING) == world.instance_rows(EVERYTHING)


# -- 1. foreign keys from the trader's own tables ---------------------------------------------

NOTES = """
CREATE SCHEMA trader;
ALTER TABLE my_schema.positions ADD UNIQUE (run_date, tradingsymbol);
CREATE TABLE trader.notes (id serial PRIMARY KEY, run_date date, tradingsymbol text,
                           note text,
                           FOREIGN KEY (run_date, tradingsymbol)
                           REFERENCES my_schema.positions (run_date, tradingsymbol) {action});
INSERT INTO trader.notes (run_date, tradingsymbol, note)
VALUES ('2026-11-20', 'RELIANCE', 'averaged down here');
"""


@pytest.mark.parametrize("action", ["", "ON DELETE CASCADE", "ON DELETE SET NULL"])
def test_a_replaced_day_keeps_the_rows_the_traders_table_references(
        world: World, capsys: pytest.CaptureFixture[str], action: str) -> None:
    """The instance changed NIFTY's row of the 20th; the trader's note is on RELIANCE's,
    which the instance did not change: the day is updated and the note stays."""
    world.laptop(NOTES.format(action=action))
    world.instance("UPDATE my_schema.positions SET pnl = 12 WHERE tradingsymbol = 'NIFTY' "
                   "AND run_date = '2026-11-20'")
    world.instance("INSERT INTO my_schema.positions VALUES ('2026-11-20', 'TCS', 3, 1)")
    world.backup(at_ist("2026-11-23"))

    code, doc = cli(world, capsys)

    assert code == 0, doc.get("error") or doc
    assert doc["dumps"][0]["diverged"] == 1
    same_as_instance(world)
    assert world.laptop("SELECT run_date::text, tradingsymbol, note FROM trader.notes") == [
        ("2026-11-20", "RELIANCE", "averaged down here")]


def test_a_replaced_day_is_a_multiset_alike_rows_counted(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Only the rows the dump lacks go: of three alike laptop rows where the dump has one,
    two; a row twice in the dump comes twice."""
    world.laptop("INSERT INTO my_schema.positions SELECT * FROM my_schema.positions "
                 "WHERE tradingsymbol = 'NIFTY' AND run_date = '2026-11-20'")
    world.laptop("INSERT INTO my_schema.positions SELECT * FROM my_schema.positions "
                 "WHERE tradingsymbol = 'NIFTY' AND run_date = '2026-11-20'")  # 4 NIFTY
    world.laptop("INSERT INTO my_schema.positions VALUES ('2026-11-20', 'INFY', 2, NULL)")
    world.instance("INSERT INTO my_schema.positions VALUES ('2026-11-20', 'TCS', 3, NULL), "
                   "('2026-11-20', 'TCS', 3, NULL), ('2026-11-20', 'NIFTY', 75, 10.5)")
    world.backup(at_ist("2026-11-23"))

    code, doc = cli(world, capsys)

    assert code == 0, doc.get("error") or doc
    assert (doc["dumps"][0]["new"], doc["dumps"][0]["diverged"]) == (2, 3)
    same_as_instance(world)
    assert sorted(c.local_row["tradingsymbol"] for c in world.conflicts(
        "my_schema.positions")) == ["INFY", "NIFTY", "NIFTY"]


def test_a_replaced_day_keeps_the_laptop_only_column_of_the_rows_that_stay(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The trader's own column (DEFAULT now() and a note) on a replace-range table: a day
    the instance changed one row of keeps the other rows' values; the changed row's old
    version is saved whole, its laptop values with it."""
    world.laptop("ALTER TABLE my_schema.positions ADD COLUMN seen timestamptz DEFAULT now(), "
                 "ADD COLUMN note text")
    world.laptop("UPDATE my_schema.positions SET seen = '2026-11-20 18:00+05:30', "
                 "note = tradingsymbol || ' checked'")
    world.instance("UPDATE my_schema.positions SET pnl = 12 WHERE tradingsymbol = 'NIFTY' "
                   "AND run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-23"))

    code, doc = cli(world, capsys, "--keep-dropped-columns")

    assert code == 0, doc.get("error") or doc
    assert world.laptop("SELECT tradingsymbol, pnl::text, note, seen = '2026-11-20 18:00+05:30' "
                        "FROM my_schema.positions WHERE run_date = '2026-11-20' ORDER BY 1") == [
        ("NIFTY", "12.00", None, False), ("RELIANCE", "-2.00", "RELIANCE checked", True)]
    (saved,) = world.conflicts("my_schema.positions")
    assert (saved.local_row["tradingsymbol"], saved.local_row["note"]) == (
        "NIFTY", "NIFTY checked")


@pytest.mark.parametrize("action", ["", "ON DELETE CASCADE", "ON DELETE SET NULL"])
def test_a_referenced_row_the_instance_changed_stops_the_sync_naming_both_tables(
        world: World, capsys: pytest.CaptureFixture[str], action: str) -> None:
    world.laptop(NOTES.format(action=action))
    world.instance("UPDATE my_schema.positions SET pnl = 12 WHERE tradingsymbol = 'RELIANCE' "
                   "AND run_date = '2026-11-20'")
    seed_day(world, "2026-11-23")
    world.backup(at_ist("2026-11-23"))
    before, ledger = world.laptop(EVERYTHING), world.laptop(LEDGER)

    code, doc = cli(world, capsys)

    assert code == 1, doc.get("error") or doc
    message = one_sentence(doc)
    assert "my_schema.positions" in message and "trader.notes" in message, message
    assert world.laptop(EVERYTHING) == before and world.laptop(LEDGER) == ledger
    # The trader's note is still there, still pointing at its position.
    assert world.laptop("SELECT run_date::text, tradingsymbol, note FROM trader.notes") == [
        ("2026-11-20", "RELIANCE", "averaged down here")]

    world.laptop("DELETE FROM trader.notes")  # the trader moves the note elsewhere
    code, doc = cli(world, capsys)
    assert code == 0, doc.get("error") or doc
    same_as_instance(world)


def test_a_keyed_row_deleted_on_the_instance_is_not_cascaded_into_the_traders_table(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.laptop("CREATE SCHEMA trader; CREATE TABLE trader.fills ("
                 "token bigint, at timestamptz, qty integer, FOREIGN KEY (token, at) "
                 "REFERENCES my_schema.ticks (instrument_token, exchange_timestamp) "
                 "ON DELETE CASCADE)")
    world.laptop("INSERT INTO trader.fills SELECT instrument_token, exchange_timestamp, 10 "
                 "FROM my_schema.ticks WHERE instrument_token = 103 AND run_date = '2026-11-20'")
    world.instance("DELETE FROM my_schema.ticks WHERE instrument_token = 103 "
                   "AND run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-23"))
    before = world.laptop(EVERYTHING)

    code, doc = cli(world, capsys)

    assert code == 1, doc.get("error") or doc
    message = one_sentence(doc)
    assert "my_schema.ticks" in message and "trader.fills" in message, message
    assert world.laptop(EVERYTHING) == before
    assert world.laptop("SELECT token, qty FROM trader.fills") == [(103, 10)]


def test_a_changed_keyed_row_referenced_by_the_traders_table_is_updated_in_place(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """An upsert changes a referenced row's values, never its key: the reference holds."""
    world.laptop("CREATE SCHEMA trader; CREATE TABLE trader.fills ("
                 "token bigint, at timestamptz, FOREIGN KEY (token, at) "
                 "REFERENCES my_schema.ticks (instrument_token, exchange_timestamp))")
    world.laptop("INSERT INTO trader.fills SELECT instrument_token, exchange_timestamp "
                 "FROM my_schema.ticks WHERE run_date = '2026-11-20'")
    world.instance("UPDATE my_schema.ticks SET last_price = 1 WHERE run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-23"))

    code, doc = cli(world, capsys)

    assert code == 0, doc.get("error") or doc
    same_as_instance(world)
    assert world.laptop("SELECT count(*) FROM trader.fills") == [(5,)]


# -- 2. the laptop's own constraints ------------------------------------------------------

@pytest.mark.parametrize(("constraint", "name"), [
    ("ALTER TABLE my_schema.ticks ADD CONSTRAINT price_sane CHECK (last_price < 1000.2)",
     "price_sane"),
    ("CREATE UNIQUE INDEX one_per_volume ON my_schema.ticks (volume, run_date)",
     "one_per_volume"),
])
@pytest.mark.parametrize("path", ["new day", "merged day"])
def test_a_laptop_constraint_an_incoming_row_breaks_applies_nothing(
        world: World, capsys: pytest.CaptureFixture[str], constraint: str, name: str,
        path: str) -> None:
    world.laptop(constraint.replace("1000.2", "1000.3"))  # the laptop's rows all pass
    if path == "new day":  # copied straight in: volume 6 on a new token, price 1000.30
        world.instance(TICKS.replace("generate_series(1, 5)", "generate_series(2, 6)"),
                       {"day": "2026-11-23"})
        world.instance("UPDATE my_schema.ticks SET volume = 2 WHERE run_date = '2026-11-23'")
    else:  # the 20th re-sent with a changed row: merged
        world.instance("UPDATE my_schema.ticks SET last_price = 5000, volume = 2 "
                       "WHERE instrument_token = 105 AND run_date = '2026-11-20'")
        world.instance(TICKS, {"day": "2026-11-23"})
    world.instance(POSITIONS, {"day": "2026-11-23"})
    world.backup(at_ist("2026-11-23"))
    before, ledger = world.laptop(EVERYTHING), world.laptop(LEDGER)

    code, doc = cli(world, capsys)

    assert code == 1, doc.get("error") or doc
    message = one_sentence(doc)
    assert "my_schema.ticks" in message and name in message, message
    assert world.laptop(EVERYTHING) == before and world.laptop(LEDGER) == ledger


# -- 3. triggers on the laptop's tables ---------------------------------------------------

AUDIT = """
CREATE SCHEMA trader;
CREATE TABLE trader.audit (op text, token bigint);
CREATE FUNCTION trader.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO trader.audit VALUES (TG_OP, COALESCE(NEW.instrument_token, OLD.instrument_token));
  RETURN NULL;
END $$;
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON my_schema.ticks
  FOR EACH ROW EXECUTE FUNCTION trader.audit();
"""


def test_an_audit_trigger_sees_each_change_once_and_a_resent_day_stays_unchanged(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.laptop(AUDIT)
    world.backup(at_ist("2026-11-20", 17))  # the 20th again, same rows

    code, doc = cli(world, capsys)
    assert code == 0, doc.get("error") or doc
    assert (doc["dumps"][0]["new"], doc["dumps"][0]["diverged"]) == (0, 0)
    assert world.laptop("SELECT count(*) FROM trader.audit") == [(0,)]

    world.instance("UPDATE my_schema.ticks SET last_price = 1 WHERE instrument_token = 102 "
                   "AND run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-20", 18))
    code, doc = cli(world, capsys)
    assert code == 0, doc.get("error") or doc
    assert doc["dumps"][0]["diverged"] == 1
    assert world.laptop("SELECT op, token FROM trader.audit") == [("UPDATE", 102)]

    world.backup(at_ist("2026-11-20", 19))  # and once more: nothing to do
    code, doc = cli(world, capsys)
    assert code == 0, doc.get("error") or doc
    assert (doc["dumps"][0]["new"], doc["dumps"][0]["diverged"]) == (0, 0)
    assert world.laptop("SELECT count(*) FROM trader.audit") == [(1,)]
    same_as_instance(world)


def test_a_trigger_stamping_a_laptop_column_is_not_a_change_of_the_synced_data(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.laptop("""
        ALTER TABLE my_schema.ticks ADD COLUMN touched_at timestamptz DEFAULT now();
        CREATE FUNCTION my_schema.touch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.touched_at := clock_timestamp(); RETURN NEW; END $$;
        CREATE TRIGGER touch BEFORE UPDATE ON my_schema.ticks
          FOR EACH ROW EXECUTE FUNCTION my_schema.touch();
    """)
    world.instance("UPDATE my_schema.ticks SET volume = 99 WHERE instrument_token = 104 "
                   "AND run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-20", 17))
    stamped = world.laptop("SELECT touched_at FROM my_schema.ticks ORDER BY 1 LIMIT 1")

    code, doc = cli(world, capsys, "--keep-dropped-columns")
    assert code == 0, doc.get("error") or doc
    assert doc["dumps"][0]["diverged"] == 1
    assert world.laptop("SELECT instrument_token FROM my_schema.ticks "
                        "WHERE touched_at > %s", stamped[0]) == [(104,)]

    world.backup(at_ist("2026-11-20", 18))  # the same rows again
    code, doc = cli(world, capsys, "--keep-dropped-columns")
    assert code == 0, doc.get("error") or doc
    assert (doc["dumps"][0]["new"], doc["dumps"][0]["diverged"]) == (0, 0)
    query = "SELECT t::text FROM (SELECT {} FROM my_schema.ticks) t ORDER BY 1".format(
        "instrument_token, exchange_timestamp, run_date, last_price, volume")
    assert world.laptop(query) == world.instance_rows(query)


# -- 4. two syncs at once -------------------------------------------------------------

def test_two_syncs_at_once_one_refuses_and_nothing_is_applied_twice(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    seed_day(world, "2026-11-23")
    world.backup(at_ist("2026-11-23"))
    (world.tmp / "other").mkdir()
    other = make_config(world.tmp / "other", world.laptop_db, world.bucket, world.endpoint,
                        TABLES)
    applying, release = threading.Event(), threading.Event()

    def hold(p: SyncProgress) -> None:
        if p.phase == "applying":
            applying.set()
            release.wait(30)

    result: list[int] = []
    first = threading.Thread(target=lambda: result.append(
        world.engine().run(progress=hold).exit_code))
    first.start()
    try:
        assert applying.wait(30)
        code, doc = cli(world, capsys, config=other.path)
    finally:
        release.set()
        first.join(60)

    assert code == 1, doc.get("error") or doc
    assert "another sync is already running" in one_sentence(doc)
    assert result == [0]
    code, doc = cli(world, capsys, config=other.path)
    assert code == 0 and doc["dumps"] == [], doc
    ledger = world.laptop(LEDGER)
    assert len(ledger) == len(set(ledger)) == 3
    same_as_instance(world)


def while_conflicts_are_saved(world: World, statement: str) -> threading.Thread:
    """Run ``statement`` (the trader's own program) in the moment between the sync saving
    its conflicts and changing the rows, widened by a slow trigger."""
    world.laptop("""CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$;
                    CREATE TRIGGER slow AFTER INSERT ON market_sync.conflicts
                      FOR EACH STATEMENT EXECUTE FUNCTION public.slow()""")

    def trader() -> None:
        for _ in range(500):
            if world.laptop("SELECT 1 FROM pg_stat_activity WHERE application_name = "
                            "'market-sync' AND wait_event = 'PgSleep'"):
                world.laptop(statement)
                return
            time.sleep(0.02)

    writer = threading.Thread(target=trader)
    writer.start()
    return writer


def test_a_row_the_trader_adds_while_a_sync_applies_is_never_deleted_unsaved(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The trader's own program adds a tick to the 20th while the sync deletes the row the
    instance deleted there: the sync works on one snapshot, so the new row is not taken
    along; it stays, as any row the trader adds."""
    world.instance("DELETE FROM my_schema.ticks WHERE instrument_token = 103 "
                   "AND run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-23"))
    writer = while_conflicts_are_saved(
        world, "INSERT INTO my_schema.ticks VALUES (999, '2026-11-20 15:00+05:30', "
        "'2026-11-20', 1, 1)")
    code, doc = cli(world, capsys)
    writer.join(30)

    assert code == 0, doc.get("error") or doc
    saved = [c.local_row["instrument_token"] for c in world.conflicts()]
    kept = world.laptop("SELECT instrument_token FROM my_schema.ticks WHERE run_date = "
                        "'2026-11-20' AND instrument_token IN (103, 999) ORDER BY 1")
    assert saved == [103]
    assert kept == [(999,)]


def test_a_row_the_trader_edits_while_a_sync_replaces_it_stops_the_dump(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The sync saved the laptop's row as it was and is about to write the instance's; the
    trader's program edits it meanwhile: that edit is not overwritten unsaved, the dump
    stops in one sentence, and the next sync saves the edit and applies."""
    world.instance("UPDATE my_schema.ticks SET volume = 50 WHERE instrument_token = 102 "
                   "AND run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-23"))
    ledger = world.laptop(LEDGER)
    writer = while_conflicts_are_saved(
        world, "UPDATE my_schema.ticks SET volume = 77 WHERE instrument_token = 102 "
        "AND run_date = '2026-11-20'")
    code, doc = cli(world, capsys)
    writer.join(30)

    assert code == 1, doc
    assert "another session changed rows" in one_sentence(doc)
    assert world.laptop(LEDGER) == ledger and world.conflicts() == []
    world.laptop("DROP TRIGGER slow ON market_sync.conflicts")
    code, doc = cli(world, capsys)
    assert code == 0, doc.get("error") or doc
    assert [c.local_row["volume"] for c in world.conflicts()] == [77]
    same_as_instance(world)


def test_an_edit_left_uncommitted_in_a_sql_tool_stops_the_sync_in_words(
        world: World, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The trader's SQL tool holds an uncommitted edit of a row the sync must change: the
    sync does not wait for ever, it says so; once committed, the edit is saved and the
    instance's row applied."""
    monkeypatch.setattr("desktop.engine.session.LOCK_WAIT", "1s")
    world.instance("UPDATE my_schema.ticks SET volume = 50 WHERE instrument_token = 102 "
                   "AND run_date = '2026-11-20'")
    world.backup(at_ist("2026-11-23"))
    ledger = world.laptop(LEDGER)
    with psycopg.connect(world.laptop_db) as tool:  # not autocommit: a transaction stays open
        tool.execute("UPDATE my_schema.ticks SET volume = 77 WHERE instrument_token = 102 "
                     "AND run_date = '2026-11-20'")
        code, doc = cli(world, capsys)
        assert code == 1, doc
        assert "another session holds rows or tables" in one_sentence(doc)
        assert "commit or roll back" in doc["hint"]
        assert world.laptop(LEDGER) == ledger
        tool.commit()
    code, doc = cli(world, capsys)
    assert code == 0, doc.get("error") or doc
    assert [c.local_row["volume"] for c in world.conflicts()] == [77]
    same_as_instance(world)


def test_a_statement_timeout_set_for_the_database_is_not_a_cancel(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The trader guards interactive sessions with a database-wide statement_timeout; a
    big day takes the sync longer than that. The sync is not "cancelled" for ever."""
    world.instance(TICKS.replace("generate_series(1, 5)", "generate_series(1, 300000)"),
                   {"day": "2026-11-23"})
    world.backup(at_ist("2026-11-23"))
    world.laptop("DO $$ BEGIN EXECUTE format("
                 "'ALTER DATABASE %I SET statement_timeout = ''100ms''', "
                 "current_database()); END $$")

    code, doc = cli(world, capsys)

    assert code == 0, doc.get("error") or doc
    assert world.laptop("SELECT count(*) FROM my_schema.ticks") == [(300010,)]


# -- 5. a laptop role that may read and write, not create -----------------------------

@pytest.fixture
def trader_role(world: World, pg_cluster: PgCluster) -> Iterator[str]:
    """A role that may read and write the synced tables and nothing else."""
    role = f"trader_rw_{os.getpid()}"
    world.laptop(f"CREATE ROLE {role} LOGIN")
    world.laptop(f"GRANT USAGE ON SCHEMA my_schema TO {role}; "
                 f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA my_schema "
                 f"TO {role}")
    yield role
    world.laptop(f"DROP OWNED BY {role}")
    world.laptop(f"DROP ROLE {role}")


def as_role(world: World, role: str) -> Path:
    folder = world.tmp / role
    folder.mkdir(exist_ok=True)
    return make_config(folder, world.laptop_db.replace("user=postgres", f"user={role}"),
                       world.bucket, world.endpoint, TABLES).path


def test_a_first_sync_as_a_role_without_create_says_what_privilege_is_missing(
        world: World, trader_role: str, capsys: pytest.CaptureFixture[str]) -> None:
    world.laptop("DROP SCHEMA market_sync CASCADE")
    seed_day(world, "2026-11-23")
    world.backup(at_ist("2026-11-23"))
    before = world.laptop(EVERYTHING)

    code, doc = cli(world, capsys, config=as_role(world, trader_role))

    assert code == 1, doc.get("error") or doc
    message = one_sentence(doc)
    assert trader_role in message and "CREATE" in message and "market_sync" in message, message
    assert "GRANT" in doc["hint"], doc
    assert world.laptop(EVERYTHING) == before


def test_a_later_sync_as_a_role_without_create_says_what_privilege_is_missing(
        world: World, trader_role: str, capsys: pytest.CaptureFixture[str]) -> None:
    world.laptop(f"GRANT USAGE ON SCHEMA market_sync TO {trader_role}; "
                 f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA market_sync "
                 f"TO {trader_role}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA market_sync "
                 f"TO {trader_role}")
    world.instance("UPDATE my_schema.ticks SET volume = 7 WHERE instrument_token = 101 "
                   "AND run_date = '2026-11-20'")  # the 20th must be merged
    seed_day(world, "2026-11-23")
    world.backup(at_ist("2026-11-23"))
    before, ledger = world.laptop(EVERYTHING), world.laptop(LEDGER)
    config = as_role(world, trader_role)

    code, doc = cli(world, capsys, config=config)

    assert code == 1, doc.get("error") or doc
    message = one_sentence(doc)
    assert trader_role in message and "market_sync" in message, message
    assert f"GRANT CREATE ON SCHEMA market_sync TO {trader_role}" in doc["hint"], doc
    assert "REFERENCES ON market_sync.conflicts" in doc["hint"], doc
    assert world.laptop(EVERYTHING) == before and world.laptop(LEDGER) == ledger

    world.laptop(doc["hint"].split(" run: ", 1)[1])  # the owner does as the hint says
    code, doc = cli(world, capsys, config=config)
    assert code == 0, doc.get("error") or doc
    same_as_instance(world)


# -- 6. a sync killed mid-apply ---------------------------------------------------------

def test_a_sync_killed_mid_apply_leaves_nothing_and_the_next_applies_each_dump_once(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.instance(TICKS.replace("generate_series(1, 5)", "generate_series(1, 400000)"),
                   {"day": "2026-11-23"})
    world.instance(POSITIONS, {"day": "2026-11-23"})
    world.backup(at_ist("2026-11-23"))
    before, ledger = world.laptop(EVERYTHING), world.laptop(LEDGER)
    sync = subprocess.Popen(
        [sys.executable, "-m", "desktop.cli", "--config", str(world.laptop_config.path),
         "sync", "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sync.poll() is None:
            if world.laptop("SELECT 1 FROM pg_stat_activity WHERE application_name = "
                            "'market-sync' AND state = 'active' AND query LIKE 'COPY%%'"):
                break
            time.sleep(0.05)
        assert sync.poll() is None, "the sync ended before it was caught applying"
        sync.send_signal(signal.SIGKILL)
    finally:
        sync.kill()
        sync.wait()
    for _ in range(100):  # the server ends the killed sync's transaction
        if not world.laptop("SELECT 1 FROM pg_stat_activity "
                            "WHERE application_name = 'market-sync'"):
            break
        time.sleep(0.1)
    assert world.laptop(EVERYTHING) == before and world.laptop(LEDGER) == ledger

    code, doc = cli(world, capsys)

    assert code == 0, doc.get("error") or doc
    assert world.laptop("SELECT count(*) FROM my_schema.ticks") == [(400010,)]
    assert world.laptop(LEDGER) == [*ledger, (doc["dumps"][0]["dump_id"],)]
    same_as_instance(world)


# -- and what else a careful trader meets ---------------------------------------------

def test_a_laptop_table_with_the_instances_identity_column_takes_merged_rows(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer, tmp_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The trader made the laptop's table from the instance's schema (pg_dump -s): an
    identity column GENERATED ALWAYS. Copying a new day in works; merging must too."""
    ddl = """
    CREATE SCHEMA my_schema;
    CREATE TABLE my_schema.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                   run_date date NOT NULL, symbol text, qty integer);
    """
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url,
              '[[tables]]\nname = "my_schema.orders"\n')
    w.instance(ddl)
    w.laptop(ddl)
    w.instance("INSERT INTO my_schema.orders (run_date, symbol, qty) "
               "VALUES ('2026-11-20', 'NIFTY', 75), ('2026-11-20', 'TCS', 3)")
    w.backup(at_ist("2026-11-20", 12))
    assert cli(w, capsys)[0] == 0
    w.instance("INSERT INTO my_schema.orders (run_date, symbol, qty) "
               "VALUES ('2026-11-20', 'INFY', 5)")
    w.instance("UPDATE my_schema.orders SET qty = 50 WHERE symbol = 'NIFTY'")
    w.laptop("UPDATE my_schema.orders SET qty = 70 WHERE symbol = 'TCS'")  # the trader's
    w.backup(at_ist("2026-11-20", 16))

    code, doc = cli(w, capsys)

    assert code == 0, doc.get("error") or doc
    query = "SELECT o::text FROM my_schema.orders o ORDER BY 1"
    assert w.laptop(query) == w.instance_rows(query)
    # The trader's edit lost to the instance's row; putting it back goes through too.
    (conflict,) = [c for c in w.conflicts() if c.local_row["symbol"] == "TCS"]
    code = main(["--config", str(w.laptop_config.path), "restore", str(conflict.id), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert w.laptop("SELECT symbol, qty FROM my_schema.orders ORDER BY id") == [
        ("NIFTY", 50), ("TCS", 70), ("INFY", 5)]


@pytest.mark.parametrize("id_column", ["bigserial", "bigint GENERATED BY DEFAULT AS IDENTITY"])
def test_the_traders_own_inserts_after_a_sync_do_not_collide_with_the_instances_ids(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer, tmp_home: Path, capsys: pytest.CaptureFixture[str],
        id_column: str) -> None:
    """The laptop's table has the instance's serial/identity id: the rows the sync writes
    carry the instance's ids, so the laptop's sequence must move past them, or the
    trader's own next insert fails on a duplicate key."""
    ddl = f"""
    CREATE SCHEMA my_schema;
    CREATE TABLE my_schema.orders (id {id_column} PRIMARY KEY, run_date date NOT NULL,
                                   symbol text);
    """
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url,
              '[[tables]]\nname = "my_schema.orders"\n')
    w.instance(ddl)
    w.laptop(ddl)
    w.instance("INSERT INTO my_schema.orders (run_date, symbol) SELECT '2026-11-20', 'S' || i "
               "FROM generate_series(1, 40) i")
    w.backup(at_ist("2026-11-20", 12))
    assert cli(w, capsys, "--dry-run")[0] == 0  # changes nothing, the sequence included
    assert w.laptop("SELECT pg_sequence_last_value(pg_get_serial_sequence("
                    "'my_schema.orders', 'id'))") == [(None,)]
    assert cli(w, capsys)[0] == 0  # copied straight in
    w.laptop("INSERT INTO my_schema.orders (run_date, symbol) VALUES ('2026-11-20', 'MINE')")
    w.instance("INSERT INTO my_schema.orders (run_date, symbol) SELECT '2026-11-20', 'T' || i "
               "FROM generate_series(1, 5) i")
    w.instance("UPDATE my_schema.orders SET id = id + 100 WHERE symbol LIKE 'T%'")
    w.backup(at_ist("2026-11-20", 16))
    assert cli(w, capsys)[0] == 0  # merged (MINE is not on the instance: saved, removed)
    w.laptop("INSERT INTO my_schema.orders (run_date, symbol) VALUES ('2026-11-21', 'MINE2')")
    assert w.laptop("SELECT id FROM my_schema.orders WHERE symbol = 'MINE2'")[0][0] > 145


GENERATED = "notional numeric GENERATED ALWAYS AS (last_price * volume) STORED"


def test_a_generated_column_on_both_sides_is_computed_by_the_laptop(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer, tmp_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The laptop's table made from the instance's schema: the instance's generated column
    arrives as a value; the laptop computes its own from the same columns."""
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url)
    for side in (w.instance, w.laptop):
        side(TICKS_DDL)
        side(f"ALTER TABLE my_schema.ticks ADD COLUMN {GENERATED}")
    w.instance(TICKS, {"day": "2026-11-20"})
    w.backup(at_ist("2026-11-20", 12))
    code, doc = cli(w, capsys)
    assert code == 0, doc.get("error") or doc
    w.instance("UPDATE my_schema.ticks SET volume = 10 WHERE instrument_token = 101")
    w.instance(TICKS.replace("100 + i", "200 + i"), {"day": "2026-11-20"})
    w.backup(at_ist("2026-11-20", 16))

    code, doc = cli(w, capsys)

    assert code == 0, doc.get("error") or doc
    assert (doc["dumps"][0]["new"], doc["dumps"][0]["diverged"]) == (5, 1)
    query = "SELECT t::text FROM my_schema.ticks t ORDER BY 1"
    assert w.laptop(query) == w.instance_rows(query)


def test_a_laptop_only_generated_column_is_not_a_column_the_instance_dropped(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.laptop(f"ALTER TABLE my_schema.ticks ADD COLUMN {GENERATED}")
    world.instance("UPDATE my_schema.ticks SET volume = 10 WHERE instrument_token = 101 "
                   "AND run_date = '2026-11-20'")
    seed_day(world, "2026-11-23")
    world.backup(at_ist("2026-11-23"))

    code, doc = cli(world, capsys)

    assert code == 0, doc.get("error") or doc
    assert world.laptop("SELECT count(*) FROM my_schema.ticks WHERE notional IS DISTINCT FROM "
                        "last_price * volume") == [(0,)]
    query = ("SELECT t::text FROM (SELECT instrument_token, exchange_timestamp, run_date, "
             "last_price, volume FROM my_schema.ticks) t ORDER BY 1")
    assert world.laptop(query) == world.instance_rows(query)


@pytest.mark.parametrize("action", ["", "ON UPDATE SET NULL", "ON UPDATE CASCADE"])
def test_a_renamed_symbol_the_traders_watchlist_references_stops_naming_both_tables(
        tmp_path: Path, instance_db: str, laptop_db: str, bucket: str,
        moto_server: MotoServer, tmp_home: Path, capsys: pytest.CaptureFixture[str],
        action: str) -> None:
    """The trader's watchlist points at market_structure by symbol (a laptop-only UNIQUE);
    the instance renames a symbol (a corporate action). The watchlist is not blanked behind
    the trader's back (it follows only where its key says ON UPDATE CASCADE)."""
    ddl = ("CREATE SCHEMA my_schema; CREATE TABLE my_schema.market_structure ("
           "instrument_token bigint PRIMARY KEY, tradingsymbol text NOT NULL, lot_size integer)")
    w = World(tmp_path, instance_db, laptop_db, bucket, moto_server.endpoint_url,
              '[[tables]]\nname = "my_schema.market_structure"\nmode = "snapshot"\n')
    w.instance(ddl)
    w.instance("INSERT INTO my_schema.market_structure VALUES (1, 'ZOMATO', 1), (2, 'TCS', 1)")
    w.backup(at_ist("2026-11-20", 12))
    assert cli(w, capsys)[0] == 0
    w.laptop("ALTER TABLE my_schema.market_structure ADD UNIQUE (tradingsymbol); "
             "CREATE SCHEMA trader; CREATE TABLE trader.watchlist (symbol text REFERENCES "
             f"my_schema.market_structure (tradingsymbol) {action}); "
             "INSERT INTO trader.watchlist VALUES ('ZOMATO')")
    w.instance("UPDATE my_schema.market_structure SET tradingsymbol = 'ETERNAL' "
               "WHERE instrument_token = 1")
    w.backup(at_ist("2026-11-20", 16))
    query = "SELECT m::text FROM my_schema.market_structure m ORDER BY 1"
    before = w.laptop(query)

    code, doc = cli(w, capsys)

    if action == "ON UPDATE CASCADE":
        assert code == 0, doc.get("error") or doc
        assert w.laptop("SELECT symbol FROM trader.watchlist") == [("ETERNAL",)]
        assert w.laptop(query) == w.instance_rows(query)
        return
    assert code == 1, doc
    message = one_sentence(doc)
    assert "my_schema.market_structure" in message and "trader.watchlist" in message, message
    assert w.laptop(query) == before
    assert w.laptop("SELECT symbol FROM trader.watchlist") == [("ZOMATO",)]
    w.laptop("UPDATE trader.watchlist SET symbol = NULL")  # the trader lets go of it
    w.instance("UPDATE my_schema.market_structure SET lot_size = 2 WHERE instrument_token = 2")
    w.backup(at_ist("2026-11-20", 17))
    code, doc = cli(w, capsys)
    assert code == 0, doc.get("error") or doc
    assert w.laptop(query) == w.instance_rows(query)


@pytest.mark.parametrize("event", ["INSERT", "UPDATE"])
def test_a_trigger_that_keeps_rows_out_is_named_not_blamed_on_the_dump(
        world: World, capsys: pytest.CaptureFixture[str], event: str) -> None:
    """The trader's BEFORE trigger skips ticks of instruments they do not follow (new ones,
    or changes to them): the rows do not all arrive. That is the trigger's doing, not a
    damaged dump, and no conflict may say the instance's row won where it did not."""
    world.laptop(f"""
        CREATE FUNCTION my_schema.only_mine() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.instrument_token > 101 THEN RETURN NULL; END IF; RETURN NEW; END $$;
        CREATE TRIGGER only_mine BEFORE {event} ON my_schema.ticks
          FOR EACH ROW EXECUTE FUNCTION my_schema.only_mine();
    """)
    world.instance("UPDATE my_schema.ticks SET volume = 50 WHERE instrument_token = 102 "
                   "AND run_date = '2026-11-20'")
    seed_day(world, "2026-11-23")
    world.backup(at_ist("2026-11-23"))
    before = world.laptop(EVERYTHING)

    code, doc = cli(world, capsys)

    assert code == 1, doc
    message = one_sentence(doc)
    assert "only_mine" in message and "my_schema.ticks" in message, message
    assert "damaged" not in message + doc["hint"]
    assert world.laptop(EVERYTHING) == before and world.conflicts() == []
