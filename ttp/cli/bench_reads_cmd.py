"""``ttp bench reads``: p50/p95/p99 of feed and report reads at 50 concurrent clients."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ttp.bench.reads import run_reads_bench

console = Console()


def bench_reads(
    records: int = typer.Option(20_000, min=100, help="Records loaded before reading."),
    concurrency: int = typer.Option(50, min=1, max=500, help="Concurrent reading clients."),
    seconds: float = typer.Option(15.0, min=1.0, help="How long the clients read."),
    backend: str = typer.Option("sqlite", help="sqlite or postgresql."),
    think: float = typer.Option(0.0, min=0.0, help="Mean pause in seconds between one client's reads "
                                "(exponential); 0 reads back to back, which measures saturation."),
) -> None:
    """Start the system, load data through ingest, then read feeds and reports concurrently."""
    console.print(f"loading {records:,} records, then {concurrency} clients read for {seconds:.0f} s ...")
    r = run_reads_bench(records, concurrency=concurrency, seconds=seconds, backend=backend, think=think)
    table = Table("read", "requests", "per second", "p50 ms", "p95 ms", "p99 ms")
    for kind, f in r["kinds"].items():
        table.add_row(kind, f"{f['requests']:,}", f"{f['per_second']:,.0f}", f"{f['p50_ms']:.1f}",
                      f"{f['p95_ms']:.1f}", f"{f['p99_ms']:.1f}")
    console.print(f"period {r['period']}, {r['concurrency']} clients, mean pause between reads {think:g} s, "
                  f"{r['seconds']:.1f} s, backend {backend}")
    console.print(table)
    cpu = r["cpu_ms_per_read"]
    console.print("CPU ms per read: " + ", ".join(f"{name} {ms:.1f}" for name, ms in cpu.items())
                  + " (the client is the load generator, on the same two cores)")
    if r["errors"]:
        console.print(f"[red]errors: {r['errors']}[/]")
        raise typer.Exit(1)
