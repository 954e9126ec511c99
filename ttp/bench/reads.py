"""Benchmark: feed and report reads by 50 concurrent clients over mTLS.

Loads a realistic store through the real ingest path, warms the caches once
(the first read after a delivery recomputes the period), then lets each
client read in a loop for a fixed time: its own gemeente feed (JSON and CSV),
the Rijk feed, and its provider's mirror report (JSON). Prints p50, p95, p99
and throughput per kind of read and overall.
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ttp.bench.ingest import _submit, batches_by_provider, synthetic_records
from ttp.local_cluster import Cluster
from ttp.pki import SAMPLE_GEMEENTEN, SAMPLE_PROVIDERS
from ttp.tls import client_context


@dataclass
class ReadTarget:
    kind: str
    slug: str
    service: str
    path: str
    accept: str = "application/json"


def targets(period: str) -> list[ReadTarget]:
    out: list[ReadTarget] = []
    for code, _ in SAMPLE_GEMEENTEN:
        out.append(ReadTarget("gemeente feed json", f"gemeente-{code}", "aggregate",
                              f"/gemeenten/{code}/outcomes?period={period}"))
        out.append(ReadTarget("gemeente feed csv", f"gemeente-{code}", "aggregate",
                              f"/gemeenten/{code}/outcomes?period={period}", "text/csv"))
    out.append(ReadTarget("rijk feed json", "rijk", "aggregate", f"/rijk/outcomes?period={period}"))
    for agb, _ in SAMPLE_PROVIDERS:
        out.append(ReadTarget("provider report json", f"provider-{agb}", "report",
                              f"/providers/{agb}/reports/{period}/intern"))
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def _read_loop(cluster: Cluster, mine: list[ReadTarget], seconds: float,
                     samples: dict[str, list[float]], errors: collections.Counter[str],
                     *, once: bool = False) -> None:
    """Read ``mine`` round robin for ``seconds`` (or each target exactly once)."""
    pki = cluster.home / "pki"
    clients = {
        (t.slug, t.service): httpx.AsyncClient(base_url=cluster.base_url(t.service),
                                               verify=client_context(pki, t.slug), timeout=30.0)
        for t in mine
    }
    try:
        deadline = time.perf_counter() + seconds
        i = 0
        while (i < len(mine)) if once else (time.perf_counter() < deadline):
            t = mine[i % len(mine)]
            i += 1
            started = time.perf_counter()
            r = await clients[(t.slug, t.service)].get(t.path, headers={"accept": t.accept})
            elapsed = time.perf_counter() - started
            if r.status_code != 200:
                errors[f"{t.kind}: {r.status_code}"] += 1
                continue
            samples[t.kind].append(elapsed)
    finally:
        for c in clients.values():
            await c.aclose()


async def _run_reads(cluster: Cluster, period: str, concurrency: int, seconds: float
                     ) -> tuple[dict[str, list[float]], collections.Counter[str], float]:
    all_targets = targets(period)
    samples: dict[str, list[float]] = collections.defaultdict(list)
    errors: collections.Counter[str] = collections.Counter()
    # warm-up: every read once, so the recompute after the delivery is not measured as a read
    await _read_loop(cluster, all_targets, 0.0, samples, errors, once=True)
    if errors:
        return samples, errors, 0.0
    samples.clear()
    errors.clear()
    started = time.perf_counter()
    await asyncio.gather(*(
        _read_loop(cluster, all_targets[i % len(all_targets):] + all_targets[: i % len(all_targets)],
                   seconds, samples, errors)
        for i in range(concurrency)
    ))
    return samples, errors, time.perf_counter() - started


def run_reads_bench(records: int, *, concurrency: int, seconds: float, backend: str = "sqlite",
                    seed: int = 1) -> dict[str, Any]:
    """Load ``records`` through ingest, then measure reads; returns the figures per kind."""
    data = synthetic_records(records, seed)
    periods = collections.Counter(r["endDate"][:4] + ("-H1" if int(r["endDate"][5:7]) <= 6 else "-H2")
                                  for r in data)
    period = periods.most_common(1)[0][0]
    with tempfile.TemporaryDirectory(prefix="ttp-bench-reads-") as tmp:
        cluster = Cluster(Path(tmp) / "cluster", backend=backend, extra_env={"TTP_LOG_LEVEL": "warning"})
        try:
            cluster.start()
            asyncio.run(_submit(cluster, batches_by_provider(data, 5000), 2))
            samples, errors, wall = asyncio.run(_run_reads(cluster, period, concurrency, seconds))
        finally:
            cluster.destroy()
    everything = [v for vs in samples.values() for v in vs]
    result: dict[str, Any] = {"period": period, "concurrency": concurrency, "seconds": wall,
                              "errors": dict(errors), "kinds": {}}
    for kind, vs in [*sorted(samples.items()), ("all reads", everything)]:
        if not vs:
            continue
        result["kinds"][kind] = {
            "requests": len(vs), "p50_ms": percentile(vs, 50) * 1000, "p95_ms": percentile(vs, 95) * 1000,
            "p99_ms": percentile(vs, 99) * 1000, "mean_ms": statistics.fmean(vs) * 1000,
            "per_second": len(vs) / wall,
        }
    return result
