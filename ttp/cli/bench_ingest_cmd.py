"""``ttp bench ingest``: end-to-end ingest throughput beside a raw bulk insert."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ttp.bench.ingest import run_ingest_bench

console = Console()


def bench_ingest(
    records: int = typer.Option(100_000, min=100, help="Records to submit."),
    backend: str = typer.Option("both", help="sqlite, postgresql or both."),
    batch_size: int = typer.Option(5000, min=1, max=10_000, help="Records per batch."),
    clients: int = typer.Option(4, min=1, max=64, help="Concurrent submitting clients."),
    seed: int = typer.Option(1, help="Seed of the synthetic data."),
) -> None:
    """Run the whole system over mTLS on loopback, submit, and print records/s beside a raw bulk insert."""
    backends = ["sqlite", "postgresql"] if backend == "both" else [backend]
    table = Table("backend", "records", "batch", "clients", "end to end s", "records/s",
                  "raw insert records/s", "end-to-end / raw", "peak RSS MiB (per service)")
    for b in backends:
        console.print(f"[bold]{b}[/]: generating {records:,} records, starting services, submitting ...")
        r = run_ingest_bench(records, backend=b, batch_size=batch_size, clients=clients, seed=seed)
        if r.accepted != r.records:
            console.print(f"[red]only {r.accepted:,} of {r.records:,} records accepted[/]")
            raise typer.Exit(1)
        rss = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r.peak_rss_mb.items()))
        table.add_row(b, f"{r.records:,}", str(r.batch_size), str(r.clients), f"{r.seconds:.2f}",
                      f"{r.rate:,.0f}", f"{r.raw_rate:,.0f}", f"{r.rate / r.raw_rate:.2f}", rss)
    console.print(table)
