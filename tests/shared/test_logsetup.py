"""The tray's rotating log under platformdirs, next to the CLI's stderr logging."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.logsetup import configure_cli_logging, configure_file_logging


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, put back as it was (pytest's own handlers included)."""
    root = logging.getLogger()
    handlers = [(h, h.level) for h in root.handlers]
    level = root.level
    yield root
    kept = [h for h, _ in handlers]
    for handler in root.handlers:
        if handler not in kept:
            handler.close()
    root.handlers[:] = [h for h, _ in handlers]
    for handler, old in handlers:
        handler.setLevel(old)
    root.setLevel(level)


def test_file_logging_writes_info_to_the_log_file(root_logger: logging.Logger,
                                                  tmp_path: Path) -> None:
    path = configure_file_logging(tmp_path / "logs")

    logging.getLogger("desktop.test").info("instance %s started", "i-1")
    for handler in root_logger.handlers:
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            handler.flush()

    assert path == tmp_path / "logs" / "market-sync.log"
    assert "INFO" in path.read_text() and "desktop.test: instance i-1 started" in path.read_text()


def test_the_log_rotates_and_keeps_a_few_old_files(root_logger: logging.Logger,
                                                   tmp_path: Path) -> None:
    path = configure_file_logging(tmp_path, max_bytes=2_000, backups=2)

    for n in range(200):
        logging.getLogger("desktop.test").info("line %d %s", n, "x" * 40)

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["market-sync.log", "market-sync.log.1", "market-sync.log.2"]
    assert path.stat().st_size <= 2_000


def test_calling_it_again_replaces_the_file_handler(root_logger: logging.Logger,
                                                    tmp_path: Path) -> None:
    configure_file_logging(tmp_path / "a")
    configure_file_logging(tmp_path / "b")

    files = [h for h in root_logger.handlers
             if isinstance(h, logging.handlers.RotatingFileHandler)]
    assert len(files) == 1 and Path(files[0].baseFilename).parent == tmp_path / "b"


def test_the_cli_stderr_handler_still_shows_only_warnings(root_logger: logging.Logger,
                                                          tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          ) -> None:
    configure_cli_logging(0)
    path = configure_file_logging(tmp_path)

    logging.getLogger("desktop.test").info("quiet on stderr")
    logging.getLogger("desktop.test").warning("loud on stderr")

    err = capsys.readouterr().err
    assert "loud on stderr" in err and "quiet on stderr" not in err
    assert "quiet on stderr" in path.read_text()


def test_default_folder_is_the_platforms_log_folder(root_logger: logging.Logger,
                                                    tmp_home: Path) -> None:
    from shared.paths import AppPaths

    path = configure_file_logging()

    assert path.parent == AppPaths.default().log_dir and path.parent.is_relative_to(tmp_home)
