"""Reads are logged before they are served: group commit to the log, a durable spool behind it.

Issue 15 part 4: with the audit log unable to write, feed reads were answered
200 and their entries, queued in memory, were lost with a kill -9 of the
serving process.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ttp.audit_client import AuditRejected
from ttp.audit_events import AuditEvent
from ttp.read_log import ReadLog, ReadNotLogged, ReadSpool

REPO = Path(__file__).resolve().parents[2]
GEMEENTE_OIN = "00000099200000000001"


def read(i: int = 0) -> AuditEvent:
    return AuditEvent(kind="feed-read", actorOin=GEMEENTE_OIN,
                      subject={"feed": "gemeente", "gemeente": "GM0363", "period": "2026-H1", "n": i})


class Log:
    """The audit log as the read log sees it: an append that works, fails, or is slow."""

    def __init__(self) -> None:
        self.batches: list[list[AuditEvent]] = []
        self.down = False

    async def append(self, events: list[AuditEvent]) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("audit log cannot write")
        await asyncio.sleep(0.005)
        self.batches.append(list(events))
        return {}

    def entries(self) -> list[AuditEvent]:
        return [e for batch in self.batches for e in batch]


async def test_concurrent_reads_share_appends_and_each_returns_only_once_logged(tmp_path: Path) -> None:
    audit = Log()
    read_log = ReadLog(audit.append, ReadSpool(tmp_path / "spool.sqlite3"))
    await asyncio.gather(*(read_log.record(read(i)) for i in range(60)))
    assert sorted(e.subject["n"] for e in audit.entries()) == list(range(60))
    assert len(audit.batches) <= 3, "reads arriving together must share an append (group commit)"
    assert len({e.idempotencyKey for e in audit.entries()}) == 60  # a re-delivery cannot log one twice
    await read_log.aclose()


async def test_with_the_log_down_reads_wait_in_the_spool_and_reach_the_log_in_order(tmp_path: Path) -> None:
    audit = Log()
    audit.down = True
    read_log = ReadLog(audit.append, ReadSpool(tmp_path / "spool.sqlite3"), retry_initial=0.01)
    for i in range(3):
        await read_log.record(read(i))
    assert read_log.spool is not None and read_log.spool.pending == 3 and not audit.entries()
    audit.down = False
    assert await read_log.flush(5.0)
    assert [e.subject["n"] for e in audit.entries()] == [0, 1, 2]
    await read_log.aclose()


async def test_a_read_neither_logged_nor_spooled_is_refused(tmp_path: Path) -> None:
    audit = Log()
    audit.down = True
    with pytest.raises(ReadNotLogged):
        await ReadLog(audit.append, None).record(read())  # no spool could be opened
    full = ReadSpool(tmp_path / "spool.sqlite3", max_entries=2)
    read_log = ReadLog(audit.append, full, retry_initial=10)
    await read_log.record(read(1))
    await read_log.record(read(2))
    with pytest.raises(ReadNotLogged):
        await read_log.record(read(3))
    assert full.pending == 2

    async def rejecting(_events: list[AuditEvent]) -> None:
        raise AuditRejected(400, {"detail": "bad entry"})

    with pytest.raises(ReadNotLogged):  # an entry the log refuses is not spooled to be refused again
        await ReadLog(rejecting, ReadSpool(tmp_path / "other.sqlite3")).record(read())


SERVE_THEN_HANG = """
import asyncio, sys
from pathlib import Path
from ttp.audit_client import BackgroundAppender
from ttp.audit_events import AuditEvent
from ttp.read_log import ReadLog, ReadSpool

async def log_down(events):
    raise ConnectionError("audit log cannot write")

async def main(path, spool):
    event = AuditEvent(kind="feed-read", actorOin=sys.argv[3], subject={"feed": "gemeente", "gemeente": "GM0363"})
    if path == "durable":
        await ReadLog(log_down, ReadSpool(Path(spool)), retry_initial=0.05).record(event)
    else:  # the old path: queued in memory, answered at once
        BackgroundAppender(log_down, retry_initial=0.05).submit([event])
    print("served", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("path", ["durable", "fire-and-forget"])
def test_a_read_served_then_killed_dash_nine_is_in_the_log_after_the_restart(tmp_path: Path, path: str) -> None:
    """The process serves a read while the log is down and is killed before delivering it.

    On the durable path the restarted process finds the entry in its spool and
    delivers it. The old fire-and-forget path (the negative control) loses it:
    the test's check fails there.
    """
    spool = tmp_path / "aggregate-reads.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", SERVE_THEN_HANG, path, str(spool), GEMEENTE_OIN],
                            cwd=REPO, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"served"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    audit = Log()

    async def restart() -> None:
        read_log = ReadLog(audit.append, ReadSpool(spool))
        read_log.ensure_delivery()
        assert await read_log.flush(10.0)
        await read_log.aclose()

    asyncio.run(restart())
    found = [e for e in audit.entries() if e.actorOin == GEMEENTE_OIN]
    if path == "durable":
        assert len(found) == 1 and found[0].subject["gemeente"] == "GM0363"
    else:
        assert found == [], "negative control: the fire-and-forget read is lost with the process"
