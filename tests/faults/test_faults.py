"""Faults with real processes: kill -9 mid-submission, a database restart, a full disk, overload.

Each ends with the same check a data officer would make: every valid record
is in the store exactly once, and the audit log has exactly one acceptance
entry for each, however often batches were resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, func, select, text

from services.aggregate.models import Trajectory
from tests.helpers.cluster import Cluster
from tests.helpers.records import generated
from ttp.cli.submit_cmd import Summary, submit_async
from ttp.tls import client_context

RECORDS = 12_000


def _count(url: str, sql: Any) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sql).scalar_one())
    finally:
        engine.dispose()


def stored(cluster: Cluster) -> int:
    return _count(cluster.settings.database_url("aggregate").replace("postgresql://", "postgresql+psycopg://"),
                  select(func.count()).select_from(Trajectory))


def audited_acceptances(cluster: Cluster) -> tuple[int, int]:
    """(entries of kind record-accepted, distinct records among them) in the audit log."""
    engine = create_engine(cluster.settings.database_url("audit").replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            bodies = conn.execute(text("SELECT body FROM audit_entries WHERE kind = 'record-accepted'")).scalars()
            keys = [(e["subject"]["provider"], e["subject"]["recordId"]) for e in map(orjson.loads, bodies)]
    finally:
        engine.dispose()
    return len(keys), len(set(keys))


def write_file(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    return path


def run_submit(cluster: Cluster, path: Path, result: dict[str, Any]) -> None:
    pki = cluster.home / "pki"
    contexts: dict[str | None, Any] = {
        agb: client_context(pki, f"provider-{agb}") for agb in ("98000001", "98000002", "98000003", "98000004")
    }
    contexts[None] = contexts["98000001"]
    try:
        result["summary"] = asyncio.run(submit_async(
            path, provider=None, batch_size=1000, concurrency=2, base_url=cluster.base_url("ingest"),
            contexts=contexts, max_attempts=200, quiet=True,
        ))
    except Exception as exc:  # surfaced by the test
        result["error"] = exc


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return generated(RECORDS, seed=42)


@pytest.fixture()
def fresh_cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "ttp", backend="sqlite")
    try:
        c.start()
        yield c
    finally:
        c.destroy()


@pytest.mark.parametrize("victim", ["ingest", "pseudonymise", "aggregate", "audit"])
def test_kill_dash_nine_mid_submission(fresh_cluster: Cluster, records: list[dict[str, Any]], victim: str,
                                       tmp_path: Path) -> None:
    path = write_file(tmp_path / "records.jsonl", records)
    result: dict[str, Any] = {}
    thread = threading.Thread(target=run_submit, args=(fresh_cluster, path, result))
    thread.start()
    deadline = time.monotonic() + 60
    while stored(fresh_cluster) < 2000 and time.monotonic() < deadline:
        time.sleep(0.2)
    fresh_cluster.kill(victim)
    time.sleep(1.0)
    fresh_cluster.start(victim)
    thread.join(timeout=240)
    assert not thread.is_alive(), "submission did not finish"
    assert "error" not in result, result.get("error")
    summary: Summary = result["summary"]
    assert summary.received == RECORDS
    assert summary.retries > 0, "the kill did not interrupt any batch"
    valid = summary.accepted + summary.duplicates + summary.corrections
    # the batch cut off by the kill was resent; every valid record is stored once
    assert stored(fresh_cluster) == summary.accepted + summary.duplicates
    assert summary.corrections == 0
    total, distinct = audited_acceptances(fresh_cluster)
    assert total == distinct == stored(fresh_cluster) == valid


def test_load_shedding_answers_503_with_retry_after(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    cluster = Cluster(tmp_path / "ttp", backend="sqlite", extra_env={"TTP_MAX_INFLIGHT_BATCHES": "1"})
    try:
        cluster.start()
        batch = [r for r in records if r["providerAgb"] == "98000001"][:2000]

        async def fire() -> list[httpx.Response]:
            ctx = client_context(cluster.home / "pki", "provider-98000001")
            async with httpx.AsyncClient(base_url=cluster.base_url("ingest"), verify=ctx, timeout=120) as c:
                return list(await asyncio.gather(*(
                    c.post("/batches", json={"batchId": f"shed-{i}", "records": batch}) for i in range(6)
                )))

        answers = asyncio.run(fire())
        statuses = sorted(r.status_code for r in answers)
        assert 200 in statuses
        shed = [r for r in answers if r.status_code in (429, 503)]
        assert shed, f"no request was shed: {statuses}"
        for r in shed:
            assert int(r.headers["retry-after"]) > 0
            assert r.headers["content-type"].startswith("application/problem+json")
    finally:
        cluster.destroy()


def test_full_disk_gives_503_and_no_partial_batch(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1000k", "tmpfs", str(mount)],
                      capture_output=True, check=False).returncode != 0:
        pytest.fail("could not mount a small tmpfs to simulate a full disk (needs root)")
    cluster = Cluster(tmp_path / "ttp", backend="sqlite",
                      extra_env={"TTP_AGGREGATE_DATABASE_URL": f"sqlite:///{mount / 'aggregate.sqlite3'}"})
    try:
        cluster.start()
        batch = [r for r in records if r["providerAgb"] == "98000002"][:2500]
        with cluster.client("provider-98000002") as c:
            resp = c.post("/batches", json={"batchId": "too-big", "records": batch})
        assert resp.status_code == 503
        assert resp.headers["retry-after"]
        assert stored(cluster) == 0
        with cluster.client("provider-98000002") as c:
            small = c.post("/batches", json={"batchId": "fits", "records": batch[:5]})
        assert small.status_code in (200, 503)
        if small.status_code == 200:
            assert stored(cluster) == small.json()["counts"]["accepted"]
    finally:
        cluster.destroy()
        with contextlib.suppress(Exception):
            subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def _pg_restart() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, capture_output=True, timeout=120)


@pytest.mark.serial
def test_postgresql_restart_mid_submission(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    cluster = Cluster(tmp_path / "ttp", backend="postgresql")
    try:
        cluster.start()
        path = write_file(tmp_path / "records.jsonl", records)
        result: dict[str, Any] = {}
        thread = threading.Thread(target=run_submit, args=(cluster, path, result))
        thread.start()
        deadline = time.monotonic() + 60
        while stored(cluster) < 2000 and time.monotonic() < deadline:
            time.sleep(0.2)
        _pg_restart()
        thread.join(timeout=300)
        assert not thread.is_alive() and "error" not in result, result.get("error")
        summary: Summary = result["summary"]
        assert summary.received == RECORDS
        total, distinct = audited_acceptances(cluster)
        assert stored(cluster) == summary.accepted + summary.duplicates == total == distinct
    finally:
        cluster.destroy()


def feed_reads_logged(cluster: Cluster, gemeente: str) -> int:
    """Entries of kind feed-read for ``gemeente``'s feed in the audit log."""
    engine = create_engine(cluster.settings.database_url("audit").replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            bodies = conn.execute(text("SELECT body FROM audit_entries WHERE kind = 'feed-read'")).scalars()
            return sum(1 for e in map(orjson.loads, bodies) if e["subject"].get("gemeente") == gemeente)
    finally:
        engine.dispose()


def test_reads_served_while_the_log_is_down_survive_kill_dash_nine(
    fresh_cluster: Cluster, records: list[dict[str, Any]]
) -> None:
    """Issue 15 part 4: the log cannot write, a gemeente reads its feed 3 times, aggregate is killed -9.

    Each read was served only once its entry was in aggregate's durable spool;
    after the restart the spool is delivered and the log holds all three. (On
    the fire-and-forget path the three were answered 200 and lost.)
    """
    for agb in ("98000001", "98000002"):
        batch = [r for r in records if r["providerAgb"] == agb][:800]
        with fresh_cluster.client(f"provider-{agb}") as c:
            assert c.post("/batches", json={"batchId": f"reads-{agb}", "records": batch}).status_code == 200
    path, period = "/gemeenten/GM0363/outcomes", {"period": "2026-H1"}
    with fresh_cluster.client("gemeente-GM0363", "aggregate") as c:
        assert c.get(path, params=period).status_code == 200
    before = feed_reads_logged(fresh_cluster, "GM0363")
    assert before == 1
    fresh_cluster.kill("audit")
    with fresh_cluster.client("gemeente-GM0363", "aggregate") as c:
        served = [c.get(path, params=period) for _ in range(3)]
    assert [r.status_code for r in served] == [200, 200, 200]
    assert all(r.json()["cells"] for r in served)
    fresh_cluster.kill("aggregate")  # SIGKILL: after the spool write, before any delivery to the log
    fresh_cluster.start("audit")
    assert feed_reads_logged(fresh_cluster, "GM0363") == before  # not delivered before the kill
    fresh_cluster.start("aggregate")
    deadline = time.monotonic() + 30
    while feed_reads_logged(fresh_cluster, "GM0363") < before + 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert feed_reads_logged(fresh_cluster, "GM0363") == before + 3


def _entries(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    engine = create_engine(cluster.settings.database_url("audit").replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            bodies = conn.execute(text("SELECT body FROM audit_entries WHERE kind = :k"), {"k": kind}).scalars()
            return [orjson.loads(b) for b in bodies]
    finally:
        engine.dispose()


def _aggregate_sql(cluster: Cluster, sql: str, **params: Any) -> Any:
    return _count(cluster.settings.database_url("aggregate").replace("postgresql://", "postgresql+psycopg://"),
                  text(sql).bindparams(**params))


def _in_background(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["response"] = call()
        except Exception as exc:  # surfaced by the test
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _kill_aggregate_between_audit_and_commit(cluster: Cluster, prepared_sql: str, call: Any) -> httpx.Response:
    """Hold the log (SIGSTOP) so ingest waits on the audit append after aggregate prepared, kill -9
    aggregate there, then let the log go on: the entries become durable and the commit finds no one."""
    audit = cluster.procs["audit"]
    audit.send_signal(signal.SIGSTOP)
    try:
        thread, out = _in_background(call)
        deadline = time.monotonic() + 60
        while _aggregate_sql(cluster, prepared_sql) == 0:
            assert time.monotonic() < deadline, "aggregate never prepared"
            time.sleep(0.1)
        cluster.kill("aggregate")
    finally:
        audit.send_signal(signal.SIGCONT)
    thread.join(timeout=120)
    assert "error" not in out, out.get("error")
    response: httpx.Response = out["response"]
    return response


def test_batch_audited_then_aggregate_killed_is_prepared_not_committed_until_resent(
    fresh_cluster: Cluster, records: list[dict[str, Any]]
) -> None:
    """Issue 15 part 5: the log tells a batch stored from one prepared and abandoned."""
    from ttp.audit_batches import COMMITTED, PREPARED_NOT_COMMITTED, BatchLedger

    def ledger() -> BatchLedger:
        folded = BatchLedger()
        for kind in ("batch-received", "batch-committed"):
            for e in _entries(fresh_cluster, kind):
                folded.add(e["index"], e["kind"], e["subject"])
        return folded

    batch = [r for r in records if r["providerAgb"] == "98000001"][:500]

    def send() -> httpx.Response:
        with fresh_cluster.client("provider-98000001") as c:
            return c.post("/batches", json={"batchId": "cut-off", "records": batch})

    first = _kill_aggregate_between_audit_and_commit(
        fresh_cluster, "SELECT count(*) FROM trajectory_batches WHERE batch_id = 'cut-off'", send)
    assert first.status_code == 503 and first.headers["retry-after"]
    accepted_entries = [e for e in _entries(fresh_cluster, "record-accepted") if e["subject"]["batchId"] == "cut-off"]
    assert accepted_entries, "the record entries were durable before the kill"
    assert ledger().batches[("98000001", "cut-off")].state == PREPARED_NOT_COMMITTED
    fresh_cluster.start("aggregate")
    assert stored(fresh_cluster) == 0
    assert ledger().batches[("98000001", "cut-off")].state == PREPARED_NOT_COMMITTED  # still, until resent

    again = send()
    assert again.status_code == 200, again.text
    valid = again.json()["counts"]["accepted"]
    assert valid == len(accepted_entries) == stored(fresh_cluster)
    assert ledger().batches[("98000001", "cut-off")].state == COMMITTED
    assert len(_entries(fresh_cluster, "batch-committed")) == 1
    total, distinct = audited_acceptances(fresh_cluster)
    assert total == distinct == valid  # nothing lost, nothing counted twice
    with fresh_cluster.client("provider-98000001") as c:  # one more resend changes nothing
        resent = c.post("/batches", json={"batchId": "cut-off", "records": batch})
    assert resent.json()["counts"] == again.json()["counts"]
    assert len(_entries(fresh_cluster, "batch-committed")) == 1
    assert audited_acceptances(fresh_cluster) == (total, total)


def test_withdrawal_is_logged_before_the_rows_go_and_a_retry_removes_and_logs_once(
    fresh_cluster: Cluster, records: list[dict[str, Any]]
) -> None:
    """Issue 15 part 5: with the log down the rows stay; killed between entry and commit, the retry ends it once."""
    person = next(r for r in records if r["providerAgb"] == "98000002" and r["bsn"] not in ("000000000", "999999999"))
    same = [dict(person, recordId=f"{person['recordId']}-{i}", trajectoryId=f"{person['trajectoryId']}-{i}",
                 legalBasis="wettelijke-verplichting") for i in range(2)]
    for r in same:
        r.pop("consent", None)
    with fresh_cluster.client("provider-98000002") as c:
        assert c.post("/batches", json={"batchId": "wd", "records": same}).json()["counts"]["accepted"] == 2
    rows = "SELECT count(*) FROM trajectories WHERE provider_agb = '98000002'"
    before = _aggregate_sql(fresh_cluster, rows)
    request = {"bsn": person["bsn"], "withdrawnOn": dt.date.today().isoformat()}

    def withdraw() -> httpx.Response:
        with fresh_cluster.client("provider-98000002") as c:
            return c.post("/consent-withdrawals", json=request)

    cut = _kill_aggregate_between_audit_and_commit(
        fresh_cluster, "SELECT count(*) FROM withdrawals WHERE state = 'prepared'", withdraw)
    assert cut.status_code == 503
    logged = _entries(fresh_cluster, "consent-withdrawn")
    assert len(logged) == 1 and logged[0]["subject"]["removed"] == 2  # what will go, before it goes
    fresh_cluster.start("aggregate")
    assert _aggregate_sql(fresh_cluster, rows) == before  # not committed: nothing removed yet

    fresh_cluster.kill("audit")  # the log is down: the retry removes nothing
    down = withdraw()
    assert down.status_code == 503 and _aggregate_sql(fresh_cluster, rows) == before
    fresh_cluster.start("audit")

    for _ in range(2):  # the retry, and one more
        done = withdraw()
        assert done.status_code == 200, done.text
        assert done.json()["removed"] == 2 and sorted(done.json()["recordIds"]) == sorted(r["recordId"] for r in same)
    assert _aggregate_sql(fresh_cluster, rows) == before - 2
    logged = _entries(fresh_cluster, "consent-withdrawn")
    assert len(logged) == 1 and sorted(logged[0]["subject"]["removedRecordIds"]) == sorted(r["recordId"] for r in same)
