"""Every command fed bad inputs, from the trader's side: one clear sentence (and its
hint), the right exit code, valid JSON under ``--json``, never a traceback.

The cases are the issue's known escapes plus the ones found around them; each runs the
real ``main()`` of ``market-sync`` or ``market-sync-agent`` against real parts (a
PostgreSQL database, an HTML-answering "AWS endpoint" on 127.0.0.1).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from desktop.cli import main as market_sync
from ec2.cli import main as agent
from shared.devtools.motoserver import use_fake_credentials

HTML = (b"<!DOCTYPE html><html><head><title>Login required</title></head>"
        b"<body><h1>Welcome to Airport Wi-Fi</h1><p>Please sign in.</p></body></html>")


class HtmlEndpoint:
    """What a captive portal or a proxy answers instead of AWS: an HTML page, 200 OK."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def _page(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(HTML)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(HTML)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _page

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> HtmlEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def html_endpoint() -> Iterator[HtmlEndpoint]:
    use_fake_credentials()  # the request is signed and sent; only the answer is wrong
    with HtmlEndpoint() as server:
        yield server


def write_config(tmp: Path, *, conninfo: str, endpoint: str = "http://127.0.0.1:9",
                 region: str = "ap-south-1", bucket: str = "market-data-test",
                 instance_id: str = "i-0123456789abcdef0", name: str = "config.toml") -> Path:
    path = tmp / name
    path.write_text(f'[aws]\nregion = "{region}"\nendpoint_url = "{endpoint}"\n'
                    f'bucket = "{bucket}"\ninstance_id = "{instance_id}"\n\n'
                    f'[database]\nconninfo = "{conninfo}"\n\n'
                    '[[tables]]\nname = "market.ticks"\n')
    return path


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], entry: Callable[[list[str]], int],
        args: list[str]) -> Outcome:
    try:
        code = entry(args)
    except SystemExit as exc:  # argparse's own exits
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def assert_one_clear_sentence(result: Outcome, args: list[str], code: int, words: str) -> None:
    shown = result.out + result.err
    assert "Traceback" not in shown, shown
    assert result.code == code, (args, result)
    if "--json" in args:
        doc = json.loads(result.out)  # valid JSON, whatever happened
        assert isinstance(doc, dict) and doc.get("ok") is (code == 0), doc
        text = doc.get("error") or " ".join(doc.get("errors", []))
        assert words in text, (words, doc)
        return
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, result.err  # the sentence, and its hint
    assert lines[0].startswith(("market-sync", "market-sync-agent")), lines
    if len(lines) == 2:
        assert lines[1].lstrip().startswith("→"), lines
    assert words in result.err, (words, result.err)


# -- a misspelt conninfo keyword ---------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["sync"], ["sync", "--json"], ["sync", "--dry-run"], ["status"], ["status", "--json"],
    ["history"], ["history", "--json"], ["conflicts"], ["conflicts", "--csv"],
    ["conflicts", "--json"], ["start"], ["stop", "--json"]])
def test_a_misspelt_conninfo_keyword(command: list[str], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, conninfo="host=127.0.0.1 dbnam=market")
    args = ["--config", str(path), *command]

    result = run(capsys, market_sync, args)

    assert_one_clear_sentence(result, args, 1,
                              "[database] conninfo has an unknown keyword 'dbnam'")
    assert "did you mean 'dbname'?" in result.out + result.err


# -- an HTML page where AWS should answer ----------------------------------------------------
@pytest.mark.parametrize(("command", "code"), [
    (["start"], 1), (["start", "--json"], 1), (["stop", "--force"], 1),
    (["stop", "--force", "--json"], 1), (["sync"], 1), (["sync", "--json"], 1),
    (["status"], 1), (["status", "--json"], 1)])
def test_an_html_page_instead_of_an_aws_answer(command: list[str], code: int, tmp_path: Path,
                                               laptop_db: str, html_endpoint: HtmlEndpoint,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, conninfo=laptop_db, endpoint=html_endpoint.url)
    args = ["--config", str(path), *command]

    result = run(capsys, market_sync, args)

    shown = result.out + result.err
    assert "Traceback" not in shown and result.code == code, (args, result)
    words = "with a web page, not AWS"
    if command[0] == "status":
        if "--json" in command:
            doc = json.loads(result.out)
            assert doc["instance"] is None and doc["newest_backup"] is None
            assert all(words in e for e in doc["errors"]), doc["errors"]
        else:
            assert words in result.out and "unknown" in result.out
    else:
        assert_one_clear_sentence(result, args, code, words)


# -- values the command line refuses ----------------------------------------------------------
@pytest.mark.parametrize(("args", "words"), [
    (["demo", "--days", "0"], "argument --days: 0 is too small: it must be 1 or more"),
    (["demo", "--days", "-1"], "argument --days: -1 is too small: it must be 1 or more"),
    (["demo", "--days", "three"], "argument --days: 'three' is not a whole number"),
    (["demo", "--step", "0"], "argument --step: 0 is too small: it must be 1 or more"),
    (["demo", "--headless", "--step", "-15"], "argument --step: -15 is too small"),
    (["start", "--timeout", "-5"], "argument --timeout: -5 must be a number of seconds"),
    (["stop", "--wait", "--timeout", "0", "--json"], "argument --timeout: 0 must be a number"),
    (["start", "--timeout", "nan"], "argument --timeout: nan must be a number of seconds"),
    (["sync", "--policy", "server-win"], "argument --policy: invalid choice: 'server-win'"),
    (["sync", "--json", "--policy", "server-win"], "invalid choice: 'server-win'"),
    (["conflicts", "--json", "--csv"], "not allowed with argument --json"),
    (["synk"], "argument COMMAND: invalid choice: 'synk'"),
    ([], "the following arguments are required: COMMAND"),
    (["sync", "--bogus"], "unrecognized arguments: --bogus"),
    (["status", "--json", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_usage_mistakes_exit_2(args: list[str], words: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_clear_sentence(run(capsys, market_sync, args), args, 2, words)


@pytest.mark.parametrize(("args", "code", "words"), [
    (["trading-day", "2026-13-01"], 2, "argument DATE: '2026-13-01' is not a date"),
    (["trading-day", "tomorrow"], 2, "'tomorrow' is not a date; write it as YYYY-MM-DD"),
    (["app-hours", "--at", "2026-11-23T25:00"], 2, "--at '2026-11-23T25:00' is not an ISO time"),
    (["--config", "/nonexistent/agent.toml", "backup"], 1, "no configuration file"),
    (["--config", "/nonexistent/agent.toml", "backup", "--json"], 1, "no configuration file"),
    (["notify", "x.service", "--lines", "0"], 2, "argument --lines: 0 is too small"),
    (["report-backup", "maybe"], 2, "invalid choice: 'maybe'"),
])
def test_the_agent_refuses_in_one_sentence(args: list[str], code: int, words: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_clear_sentence(run(capsys, agent, args), args, code, words)


def test_a_real_trading_day_question_still_exits_0_or_1(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    assert run(capsys, agent, ["trading-day", "2026-11-23"]).code == 0
    assert run(capsys, agent, ["trading-day", "2026-11-28"]).code == 1


# -- configs that are wrong in other ways ----------------------------------------------------
@pytest.mark.parametrize(("change", "words"), [
    ({"region": "ap-south1"}, "region 'ap-south1' is not an AWS region"),
    ({"bucket": "My_Bucket"}, "bucket name 'My_Bucket' breaks S3's naming rules"),
    ({"instance_id": "i-123"}, "instance id 'i-123' is not an EC2 instance id"),
    ({"endpoint": "http://10.1.2.3:9000"}, "endpoint_url 'http://10.1.2.3:9000' is not https"),
    ({"conninfo": "host=localhost dbname"}, 'conninfo \'host=localhost dbname\' is not a libpq'),
])
@pytest.mark.parametrize("command", [["sync"], ["status", "--json"], ["start", "--json"]])
def test_a_config_value_that_cannot_work(change: dict[str, str], words: str,
                                         command: list[str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    values = {"conninfo": "dbname=market", **change}
    path = write_config(tmp_path, **values)
    args = ["--config", str(path), *command]

    assert_one_clear_sentence(run(capsys, market_sync, args), args, 1, words)


@pytest.mark.parametrize("command", [["sync"], ["history", "--json"], ["status"]])
def test_a_config_that_is_not_there_or_not_toml(command: list[str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    missing = ["--config", str(tmp_path / "nope.toml"), *command]
    assert_one_clear_sentence(run(capsys, market_sync, missing), missing, 1,
                              "no configuration file")
    folder = ["--config", str(tmp_path), *command]
    assert_one_clear_sentence(run(capsys, market_sync, folder), folder, 1, "cannot read")
    broken = tmp_path / "broken.toml"
    broken.write_text("[aws\nregion = ")
    garbled = ["--config", str(broken), *command]
    assert_one_clear_sentence(run(capsys, market_sync, garbled), garbled, 1,
                              "not valid TOML")


@pytest.mark.parametrize("command", [["sync"], ["sync", "--json"], ["history"],
                                     ["conflicts", "--json"]])
def test_a_database_that_is_not_running(command: list[str], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, conninfo="host=127.0.0.1 port=9 dbname=market "
                        "connect_timeout=3")
    args = ["--config", str(path), *command]

    assert_one_clear_sentence(run(capsys, market_sync, args), args, 1,
                              "cannot connect to the laptop database")


def test_version_and_help_for_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    from desktop.cli import build_parser

    result = run(capsys, market_sync, ["--version"])
    assert result.code == 0 and result.out.startswith("market-sync ")
    result = run(capsys, agent, ["--version"])
    assert result.code == 0 and result.out.startswith("market-sync-agent ")
    for parser, entry in ((build_parser(), market_sync), (_agent_parser(), agent)):
        commands = next(a for a in parser._actions if a.dest == "command")
        for name, sub in commands.choices.items():  # type: ignore[union-attr]
            assert sub.description, f"{parser.prog} {name} has no description"
            for action in sub._actions:
                assert action.help, f"{parser.prog} {name} {action.option_strings} has no help"
            help_run = run(capsys, entry, [name, "--help"])
            assert help_run.code == 0 and sub.description.split()[0] in help_run.out


def _agent_parser() -> Any:
    from ec2.cli import build_parser

    return build_parser()
