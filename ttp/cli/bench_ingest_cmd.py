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
    table = Table("backend", "records", "end to end s", "records/s", "raw insert records/s", "ratio")
    cpu_names = ("client", "ingest", "pseudonymise", "aggregate", "audit", "machine")
    cpu = Table("backend", *(f"{s} µs/record" for s in cpu_names), title="CPU time per record while submitting")
    memory = Table("backend", *(f"{s} peak RSS MiB" for s in ("ingest", "pseudonymise", "aggregate", "audit")))
    for b in backends:
        console.print(f"[bold]{b}[/]: {records:,} records, batches of {batch_size}, {clients} clients ...")
        r = run_ingest_bench(records, backend=b, batch_size=batch_size, clients=clients, seed=seed)
        if r.accepted != r.records:
            console.print(f"[red]only {r.accepted:,} of {r.records:,} records accepted[/]")
            raise typer.Exit(1)
        table.add_row(b, f"{r.records:,}", f"{r.seconds:.2f}", f"{r.rate:,.0f}", f"{r.raw_rate:,.0f}",
                      f"{r.rate / r.raw_rate:.2f}")
        memory.add_row(b, *(f"{r.peak_rss_mb.get(s, float('nan')):.0f}"
                            for s in ("ingest", "pseudonymise", "aggregate", "audit")))
        cpu.add_row(b, *(f"{r.cpu_seconds.get(s, float('nan')) / r.records * 1e6:.0f}" for s in cpu_names))
    console.print(table)
    console.print(cpu)
    console.print(memory)
