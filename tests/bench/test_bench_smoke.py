"""Each benchmark command runs end to end on a small load and prints its figures.

No timing is asserted (a 2-core shared machine is too noisy); the tests prove
the commands work and report what they claim to report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


def run_ttp(*args: str, timeout: int = 600) -> str:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    out = subprocess.run([sys.executable, "-m", "ttp", *args], capture_output=True, text=True, env=env,
                         timeout=timeout, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_ingest_prints_rates_beside_raw_insert(backend: str) -> None:
    text = run_ttp("bench", "ingest", "--records", "600", "--backend", backend, "--batch-size", "200",
                   "--clients", "2")
    assert backend in text
    assert "records/s" in text and "raw insert" in text
    assert re.search(r"\b600\b", text), text
    assert "records accepted" not in text, text  # the bench reports any shortfall of accepted records
    assert "CPU time per record while submitting" in text, text


def test_bench_reads_prints_latency_percentiles() -> None:
    text = run_ttp("bench", "reads", "--records", "400", "--concurrency", "5", "--seconds", "2", "--think", "0.2")
    for column in ("p50 ms", "p95 ms", "p99 ms"):
        assert column in text
    assert "gemeente feed json" in text and "provider report json" in text
    assert "mean pause between reads 0.2 s" in text and "CPU ms per read: client" in text


def test_bench_recompute_prints_time_beside_duckdb() -> None:
    text = run_ttp("bench", "recompute", "--records", "2000")
    assert "duckdb" in text.lower()
