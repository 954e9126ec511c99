"""Benchmark: records per second end to end, beside a raw bulk insert of the same rows.

End to end means what a provider sees: mTLS to ingest, validation,
pseudonymise, classification in aggregate, the audit log append, commit and receipt,
with several concurrent clients. The raw insert writes the same minimised rows
straight into an empty store of the same backend with the driver's fastest
path (``executemany`` on SQLite, ``COPY`` on PostgreSQL), in the same run, so
the ratio between the two is meaningful on a noisy shared machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import itertools
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import make_url

from services.aggregate.store import MEASUREMENT_COLUMNS, TRAJECTORY_COLUMNS
from services.ingest.minimise import canonical_content, minimise, person_identifier
from services.ingest.rules import validate_records
from services.pseudonymise.keyring import CONTENT_TAG, DOMAIN_TAGS, normalise
from ttp import pg_databases
from ttp.bench.process_stats import cpu_seconds, machine_busy_seconds, peak_rss_mb
from ttp.db import migrate
from ttp.local_cluster import Cluster
from ttp.synthetic import SyntheticConfig, generate
from ttp.tls import client_context


@dataclass
class IngestBenchResult:
    backend: str
    records: int
    batch_size: int
    clients: int
    seconds: float
    accepted: int
    raw_seconds: float
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def raw_rate(self) -> float:
        return self.records / self.raw_seconds


def synthetic_records(n: int, seed: int) -> list[dict[str, Any]]:
    """Valid synthetic records for the sample providers."""
    return [r for r, _ in generate(SyntheticConfig(records=n, seed=seed))]


def batches_by_provider(records: list[dict[str, Any]], size: int) -> list[tuple[str, list[dict[str, Any]]]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by.setdefault(r["providerAgb"], []).append(r)
    per_provider = [[(agb, recs[i : i + size]) for i in range(0, len(recs), size)] for agb, recs in by.items()]
    # interleave providers, as end-of-period bursts from several systems arrive
    return [b for group in itertools.zip_longest(*per_provider) for b in group if b is not None]


async def _submit(
    cluster: Cluster, batches: list[tuple[str, list[dict[str, Any]]]], clients: int, prefix: str = "bench"
) -> int:
    pki = cluster.home / "pki"
    contexts = {agb: client_context(pki, f"provider-{agb}") for agb in {a for a, _ in batches}}
    queue: asyncio.Queue[tuple[int, str, list[dict[str, Any]]]] = asyncio.Queue()
    for i, (agb, recs) in enumerate(batches):
        queue.put_nowait((i, agb, recs))
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        conns = {agb: httpx.AsyncClient(base_url=cluster.base_url("ingest"), verify=ctx, timeout=300.0)
                 for agb, ctx in contexts.items()}
        try:
            while not queue.empty():
                i, agb, recs = queue.get_nowait()
                body = orjson.dumps({"batchId": f"{prefix}-{i:06d}", "records": recs})
                for _attempt in range(50):
                    r = await conns[agb].post("/batches", content=body, headers={"content-type": "application/json"})
                    if r.status_code in (429, 503):
                        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
                        continue
                    r.raise_for_status()
                    accepted += int(r.json()["counts"]["accepted"])
                    break
        finally:
            for c in conns.values():
                await c.aclose()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return accepted


def minimised_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows aggregate stores for ``records``, pseudonymised locally with a throw-away key."""
    valid, _ = validate_records(records, records[0]["providerAgb"], dt.date.today())
    key = b"bench-key-not-secret-0123456789ab"
    rows = []
    for v in valid:
        kind, value = person_identifier(v.record)
        p = hmac.digest(key, DOMAIN_TAGS[kind] + normalise(kind, value).encode(), "sha256").hex()
        c = hmac.digest(key, CONTENT_TAG + canonical_content(v.record).encode(), "sha256").hex()
        rows.append(minimise(v.record, [{"keyVersion": 1, "value": p}], 1,
                             content_hashes=[{"keyVersion": 1, "value": c}]))
    return rows


def _tuples(rows: list[dict[str, Any]], agb_of: dict[str, str]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    now = dt.datetime.now(dt.UTC)
    traj: list[tuple[Any, ...]] = []
    meas: list[tuple[Any, ...]] = []
    for r in rows:
        agb = agb_of[r["recordId"]]
        traj.append((
            agb, r["recordId"], r["contentHashes"][0]["value"], int(r["pseudonyms"][0]["value"][:15], 16), 1,
            r["bsnKnown"],
            r["trajectoryRef"], r["pc4"], r["gemeente"], r["ageAtEnd"], r["ageBand"], r["sector"],
            r["freelyAccessible"], r["hulpvorm"], r["referrer"], r["startedInCrisis"],
            dt.date.fromisoformat(r["startDate"]), dt.date.fromisoformat(r["endDate"]), r["period"],
            r["terminationReason"], r["legalBasis"], r["consentBy"], "raw", now, r["unborn"],
        ))
        for m in r["measurements"]:
            meas.append((agb, r["recordId"], m["informant"], m["satisfaction"], m["withoutHelp"],
                         m["problemChange"], m["goalOverall"], r["period"]))
    return traj, meas


def raw_insert_seconds(url: str, batches: list[tuple[str, list[dict[str, Any]]]]) -> float:
    """Insert the same minimised rows with the driver's bulk path, one transaction per batch."""
    migrate("aggregate", url)
    prepared = []
    for agb, recs in batches:
        rows = minimised_rows(recs)
        prepared.append(_tuples(rows, {r["recordId"]: agb for r in recs}))
    parsed = make_url(url)
    t_cols, m_cols = ", ".join(TRAJECTORY_COLUMNS), ", ".join(MEASUREMENT_COLUMNS)
    if parsed.get_backend_name() == "sqlite":
        import sqlite3

        conn = sqlite3.connect(str(parsed.database))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        t_marks = ", ".join("?" * len(TRAJECTORY_COLUMNS))
        m_marks = ", ".join("?" * len(MEASUREMENT_COLUMNS))
        started = time.perf_counter()
        for traj, meas in prepared:
            with conn:
                conn.executemany(f"INSERT INTO trajectories ({t_cols}) VALUES ({t_marks})", traj)
                conn.executemany(f"INSERT INTO measurements ({m_cols}) VALUES ({m_marks})", meas)
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed
    import psycopg

    with psycopg.connect(f"host={parsed.host} port={parsed.port or 5432} dbname={parsed.database} "
                         f"user={parsed.username}") as pg:
        started = time.perf_counter()
        for traj, meas in prepared:
            with pg.transaction(), pg.cursor() as cur:
                with cur.copy(f"COPY trajectories ({t_cols}) FROM STDIN") as copy:
                    for row in traj:
                        copy.write_row(row)
                with cur.copy(f"COPY measurements ({m_cols}) FROM STDIN") as copy:
                    for row in meas:
                        copy.write_row(row)
        return time.perf_counter() - started


def run_ingest_bench(
    records: int, *, backend: str, batch_size: int, clients: int, seed: int = 1, home: Path | None = None,
) -> IngestBenchResult:
    """Generate, start a cluster, submit, measure; then the raw insert of the same rows."""
    data = synthetic_records(records, seed)
    batches = batches_by_provider(data, batch_size)
    with tempfile.TemporaryDirectory(prefix="ttp-bench-") as tmp:
        quiet = {"TTP_LOG_LEVEL": "warning", "TTP_RECOMPUTE_INTERVAL": "0"}  # measure ingest, not recompute
        cluster = Cluster(home or Path(tmp) / "cluster", backend=backend, extra_env=quiet)
        try:
            cluster.start()
            warm = synthetic_records(200, seed + 1000)
            asyncio.run(_submit(cluster, batches_by_provider(warm, 200), 1, "warm-up"))
            pids = {name: p.pid for name, p in cluster.procs.items()} | {"client": os.getpid()}
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            busy_before = machine_busy_seconds()
            started = time.perf_counter()
            accepted = asyncio.run(_submit(cluster, batches, clients))
            seconds = time.perf_counter() - started
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            cpu["machine"] = machine_busy_seconds() - busy_before
            rss = {name: peak_rss_mb(p.pid) for name, p in cluster.procs.items()}
        finally:
            cluster.destroy()
        if backend == "sqlite":
            raw_seconds = raw_insert_seconds(f"sqlite:///{Path(tmp) / 'raw.sqlite3'}", batches)
        else:
            name, url = pg_databases.create_database("ttp_raw")
            try:
                raw_seconds = raw_insert_seconds(url, batches)
            finally:
                pg_databases.drop_database(name)
    return IngestBenchResult(backend, len(data), batch_size, clients, seconds, accepted, raw_seconds, rss, cpu)
