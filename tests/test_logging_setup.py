"""A service's log line goes to one place, a file is rotated, and every log file is owner-only."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttp.logging_setup import configure_logging
from ttp.settings import Settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_with_a_file_a_line_goes_to_the_file_only(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("ingest", "info", tmp_path / "log" / "ingest.log")
    logging.getLogger("ttp.test").info("batch stored", extra={"records": 3})
    out, err = capfd.readouterr()
    lines = (tmp_path / "log" / "ingest.log").read_text().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["batch stored"]
    assert out == "" and err == ""


def test_without_a_file_a_line_goes_to_stderr_only(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("ingest", "info", None)
    logging.getLogger("ttp.test").info("batch stored")
    _out, err = capfd.readouterr()
    assert [json.loads(line)["message"] for line in err.splitlines()] == ["batch stored"]
    assert not list(tmp_path.iterdir())


def test_the_file_is_rotated_and_every_copy_is_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # as in a process that did not restrict its umask
    try:
        configure_logging("aggregate", "info", tmp_path / "log" / "aggregate.log", max_bytes=2048, backups=2)
        for i in range(200):
            logging.getLogger("ttp.test").info("line %d", i)
    finally:
        os.umask(old)
    files = sorted(p.name for p in (tmp_path / "log").iterdir())
    assert files == ["aggregate.log", "aggregate.log.1", "aggregate.log.2"]  # two backups kept, older ones gone
    for name in files:
        path = tmp_path / "log" / name
        assert path.stat().st_size <= 2048 + 300
        assert path.stat().st_mode & 0o077 == 0, name
    assert (tmp_path / "log").stat().st_mode & 0o077 == 0
    last = json.loads((tmp_path / "log" / "aggregate.log").read_text().splitlines()[-1])
    assert last["message"] == "line 199"


def test_under_ttp_up_a_service_logs_to_its_file_in_a_container_to_stderr(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).log_file("report") is None  # the default: a container's stderr
    assert Settings(home=tmp_path, log_destination="file").log_file("report") == tmp_path / "log" / "report.log"
