"""Faults with real processes: kill -9 mid-submission, a database restart, a full disk, overload.

Each ends with the same check a data officer would make: every valid record
is in the store exactly once, and the audit log has exactly one acceptance
entry for each, however often batches were resent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
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
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
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
