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
import os
import random
import ssl
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ttp.bench.ingest import _submit, batches_by_provider, synthetic_records
from ttp.bench.process_stats import cpu_seconds, machine_busy_seconds
from ttp.local_cluster import Cluster
from ttp.pki import SAMPLE_GEMEENTEN, SAMPLE_PROVIDERS
from ttp.tls import client_context

#: How long a client keeps an idle connection (httpx's default is 5 s). Below the
#: services' own keep-alive of 30 s, so a client reading every few seconds
#: reuses its TLS session as a real dashboard would, instead of a handshake per read.
KEEPALIVE = 25.0


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


class _Reader:
    """One reading client: its own mTLS connections, one per party and service it reads as."""

    def __init__(self, cluster: Cluster, contexts: dict[str, ssl.SSLContext], mine: list[ReadTarget]) -> None:
        self.mine = mine
        self.clients = {
            (t.slug, t.service): httpx.AsyncClient(base_url=cluster.base_url(t.service), verify=contexts[t.slug],
                                                   timeout=30.0, limits=httpx.Limits(keepalive_expiry=KEEPALIVE))
            for t in mine
        }

    async def read(self, t: ReadTarget) -> tuple[int, int]:
        """One read to the last byte of the body: (status, bytes received).

        The body is not decompressed: the load generator stands in for
        clients on machines of their own, and unpacking megabytes here would
        take CPU from the two cores the services run on.
        """
        async with self.clients[(t.slug, t.service)].stream("GET", t.path, headers={"accept": t.accept}) as r:
            received = 0
            async for chunk in r.aiter_raw():
                received += len(chunk)
        return r.status_code, received

    async def loop(self, until: float, samples: dict[str, list[float]], errors: collections.Counter[str],
                   think: float, rng: random.Random) -> None:
        """Read round robin until ``until``, pausing ``think`` seconds on average (exponential) between reads.

        With pauses, a client starts at a random moment within the first mean
        pause: fifty dashboards do not all ask at the same instant.
        """
        if think > 0:
            await asyncio.sleep(min(rng.uniform(0, think), max(0.0, until - time.perf_counter())))
        i = 0
        while time.perf_counter() < until:
            t = self.mine[i % len(self.mine)]
            i += 1
            started = time.perf_counter()
            status, received = await self.read(t)
            elapsed = time.perf_counter() - started
            if status != 200 or received == 0:
                errors[f"{t.kind}: {status}"] += 1
            else:
                samples[t.kind].append(elapsed)
            if think > 0:  # no pause past the window's end: the window's length is the divisor of the rate
                await asyncio.sleep(min(rng.expovariate(1 / think), max(0.0, until - time.perf_counter())))

    async def close(self) -> None:
        for c in self.clients.values():
            await c.aclose()


async def _run_reads(cluster: Cluster, period: str, concurrency: int, seconds: float, think: float,
                     pids: dict[str, int]) -> tuple[dict[str, list[float]], collections.Counter[str], float,
                                                    dict[str, float]]:
    """Connect every client and read everything once, then measure ``seconds`` of reads.

    Before the window: the first read after a delivery recomputes the period,
    and every client opens its connections (a TLS handshake each, as a
    dashboard does once and then keeps). Neither is a read of published
    figures, so neither is timed. CPU time is taken over the window only.
    """
    all_targets = targets(period)
    pki = cluster.home / "pki"
    contexts = {slug: client_context(pki, slug) for slug in {t.slug for t in all_targets}}
    samples: dict[str, list[float]] = collections.defaultdict(list)
    errors: collections.Counter[str] = collections.Counter()
    readers = [_Reader(cluster, contexts, all_targets[i % len(all_targets):] + all_targets[: i % len(all_targets)])
               for i in range(concurrency)]
    try:
        for t in all_targets:  # one by one: the recompute after the delivery
            status, _ = await readers[0].read(t)
            if status != 200:
                errors[f"{t.kind}: {status}"] += 1
        if errors:
            return samples, errors, 0.0, {}
        await asyncio.gather(*(reader.read(t) for reader in readers for t in reader.mine))  # connect
        before = {name: cpu_seconds(pid) for name, pid in pids.items()} | {"machine": machine_busy_seconds()}
        started = time.perf_counter()
        await asyncio.gather(*(reader.loop(started + seconds, samples, errors, think, random.Random(i))
                               for i, reader in enumerate(readers)))
        wall = time.perf_counter() - started
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        cpu["machine"] = machine_busy_seconds() - before["machine"]
        return samples, errors, wall, cpu
    finally:
        for reader in readers:
            await reader.close()


def run_reads_bench(records: int, *, concurrency: int, seconds: float, backend: str = "sqlite",
                    seed: int = 1, think: float = 0.0) -> dict[str, Any]:
    """Load ``records`` through ingest, then measure reads; returns the figures per kind."""
    data = synthetic_records(records, seed)
    periods = collections.Counter(r["endDate"][:4] + ("-H1" if int(r["endDate"][5:7]) <= 6 else "-H2")
                                  for r in data)
    period = periods.most_common(1)[0][0]
    with tempfile.TemporaryDirectory(prefix="ttp-bench-reads-") as tmp:
        # No background recompute: it would recompute the delivery's other periods during the
        # measured window and time that, not reads. The warm-up computes what the reads need.
        quiet = {"TTP_LOG_LEVEL": "warning", "TTP_RECOMPUTE_INTERVAL": "0"}
        cluster = Cluster(Path(tmp) / "cluster", backend=backend, extra_env=quiet)
        try:
            cluster.start()
            asyncio.run(_submit(cluster, batches_by_provider(data, 5000), 2))
            pids = {"client": os.getpid(), "aggregate": cluster.procs["aggregate"].pid,
                    "report": cluster.procs["report"].pid, "audit": cluster.procs["audit"].pid}
            samples, errors, wall, cpu = asyncio.run(_run_reads(cluster, period, concurrency, seconds, think, pids))
        finally:
            cluster.destroy()
    everything = [v for vs in samples.values() for v in vs]
    result: dict[str, Any] = {"period": period, "concurrency": concurrency, "seconds": wall, "think": think,
                              "errors": dict(errors), "kinds": {},
                              "cpu_ms_per_read": {k: v / max(1, len(everything)) * 1000 for k, v in cpu.items()}}
    for kind, vs in [*sorted(samples.items()), ("all reads", everything)]:
        if not vs:
            continue
        result["kinds"][kind] = {
            "requests": len(vs), "p50_ms": percentile(vs, 50) * 1000, "p95_ms": percentile(vs, 95) * 1000,
            "p99_ms": percentile(vs, 99) * 1000, "mean_ms": statistics.fmean(vs) * 1000,
            "per_second": len(vs) / wall,
        }
    return result
