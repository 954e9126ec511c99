"""``ttp up`` as an operator runs it: a killed service comes back, logs once, and the state is private.

One ``ttp up`` on SQLite in a fresh state directory, on free ports. Aggregate
is killed with SIGKILL (as the kernel's out-of-memory killer would): the other
four keep running under the same process ids, aggregate is started again and
answers ``/v1/health``, and ``up.log`` says it exited and was restarted. A
request's access line is in the logs exactly once (it used to be written to
stderr and the file, both kept under ``log/``). After SIGTERM every service
has stopped, and no file or directory of the state is readable by group or
others.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.state_files import loose_permissions
from ttp.local_cluster import free_port
from ttp.supervisor import START_ORDER
from ttp.tls import client_context


def log_lines(home: Path) -> list[dict[str, Any]]:
    path = home / "log" / "up.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def occurrences(log_dir: Path, needle: str) -> int:
    """How many lines of all files in the log directory (logs, rotated logs, raw stderr) contain ``needle``."""
    return sum(line.count(needle) for p in log_dir.iterdir() if p.is_file()
               for line in p.read_text(errors="replace").splitlines())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


class Up:
    """A running ``ttp up`` and how to reach its services."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.ports = {s: free_port() for s in START_ORDER}
        self.env = {**os.environ, "TTP_HOME": str(home), "TTP_LOG_LEVEL": "info",
                    **{f"TTP_{s.upper()}_PORT": str(p) for s, p in self.ports.items()}}
        self.console = home.parent / "console.txt"
        with self.console.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "ttp", "up", "--purge-every", "0"],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def health(self, service: str, request_id: str | None = None) -> int:
        ctx = client_context(self.home / "pki", "service-ingest")
        headers = {"X-Request-ID": request_id} if request_id else {}
        try:
            return httpx.get(f"https://127.0.0.1:{self.ports[service]}/v1/health", verify=ctx,
                             headers=headers, timeout=5).status_code
        except httpx.HTTPError:
            return 0

    def events(self, event: str, service: str | None = None) -> list[dict[str, Any]]:
        return [d for d in log_lines(self.home) if d.get("event") == event
                and (service is None or d.get("serviceName") == service)]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    running = Up(tmp_path_factory.mktemp("up") / "state")
    try:
        wait_for("all five services started", lambda: len(running.events("service-started")) == 5
                 or running.proc.poll() is not None, timeout=240)
        assert running.proc.poll() is None, running.console.read_text()
        wait_for("all five healthy", lambda: all(running.health(s) == 200 for s in START_ORDER))
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.send_signal(signal.SIGTERM)
            try:
                running.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                running.proc.kill()


def test_a_killed_service_is_restarted_while_the_others_keep_running(up: Up) -> None:
    pids = {e["serviceName"]: e["pid"] for e in up.events("service-started")}
    os.kill(pids["aggregate"], signal.SIGKILL)
    restarted = wait_for("aggregate restarted", lambda: up.events("service-restarted", "aggregate"))
    wait_for("aggregate healthy again", lambda: up.health("aggregate") == 200)
    assert restarted[0]["pid"] != pids["aggregate"] and alive(restarted[0]["pid"])
    exited = up.events("service-exited", "aggregate")
    assert exited and exited[0]["exitCode"] == -signal.SIGKILL
    assert "killed by SIGKILL" in exited[0]["message"] and exited[0]["level"] == "warning"
    for name in ("audit", "pseudonymise", "report", "ingest"):
        assert alive(pids[name]) and up.health(name) == 200, name
    assert not up.events("service-exited", "ingest")
    assert up.proc.poll() is None
    assert "aggregate stopped (killed by SIGKILL)" in up.console.read_text()


def test_a_request_is_logged_once(up: Up) -> None:
    rid = str(uuid.uuid4())
    assert up.health("ingest", request_id=rid) == 200
    log_dir = up.home / "log"
    wait_for("the access line", lambda: occurrences(log_dir, rid) > 0, timeout=10)
    time.sleep(0.5)  # a second copy, if any, would be written at the same moment
    assert occurrences(log_dir, rid) == 1
    [line] = [json.loads(raw) for raw in (log_dir / "ingest.log").read_text().splitlines() if rid in raw]
    assert line["logger"] == "ttp.access" and line["requestId"] == rid
    assert (log_dir / "ingest.stderr").read_text() == ""  # stderr is for what happens before logging starts


def test_control_the_count_sees_a_line_written_twice(tmp_path: Path) -> None:
    """What the old setup did (the same JSON line in the .log file and in the captured stderr) counts 2."""
    line = json.dumps({"message": "request", "requestId": "r-1"})
    (tmp_path / "ingest.log").write_text(line + "\n")
    (tmp_path / "ingest.stderr").write_text(line + "\n")
    assert occurrences(tmp_path, "r-1") == 2


def test_sigterm_stops_every_service_and_leaves_the_state_private(up: Up) -> None:
    pids = [e["pid"] for e in up.events("service-started") + up.events("service-restarted")]
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(timeout=90) == 0, up.console.read_text()
    assert not [pid for pid in pids if alive(pid)]
    assert up.events("services-stopped")
    assert {p.name for p in (up.home / "db").iterdir()} >= {"audit.sqlite3", "ingest.sqlite3"}
    assert not loose_permissions(up.home)


def test_control_the_permission_check_sees_a_file_made_with_the_usual_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        (tmp_path / "made-as-before.log").write_text("x")
    finally:
        os.umask(old)
    tmp_path.chmod(0o700)
    assert loose_permissions(tmp_path) == ["made-as-before.log -rw-r--r--"]
