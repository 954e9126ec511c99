"""``ttp generate``: write realistic synthetic outcome records as JSON Lines (or a CSV/XLSX delivery).

The output feeds ``ttp submit`` and the benchmarks. It is deterministic for a
seed (and ``--today``), streams to disk (a million records in flat memory),
and can mix in a share of invalid records that break each validation rule in
turn, so a demo shows every kind of rejection in the receipts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ttp.periods import is_period
from ttp.pki import SAMPLE_PROVIDERS
from ttp.synthetic import SyntheticConfig, default_period, write_jsonl

console = Console(stderr=True)

#: Output formats: JSON Lines for ``ttp submit`` in batches, or a delivery file (docs/delivery.md).
FORMATS: dict[str, Literal["jsonl", "csv", "xlsx"]] = {"jsonl": "jsonl", "csv": "csv", "xlsx": "xlsx"}


def generate(
    records: int = typer.Option(..., "--records", "-n", min=0, help="Number of records to write."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same file."),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="Output file (JSON Lines)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, or csv / xlsx: a delivery file in the layout of "
                            "docs/delivery.md (one row per trajectory, Dutch headings)."),
    provider: list[str] | None = typer.Option(
        None,
        "--provider",
        help="AGB code of a provider to generate for (repeatable). "
        "Default: the four dev providers of 'ttp pki init'.",
    ),
    invalid_share: float = typer.Option(
        0.0,
        "--invalid-share",
        min=0.0,
        max=1.0,
        help="Share of records that each break one validation rule, every rule in turn.",
    ),
    period: str | None = typer.Option(
        None,
        "--period",
        help="Half year (e.g. 2026-H1) in which most trajectories end. "
        "Default: the last half year that has ended.",
    ),
    today: str | None = typer.Option(
        None,
        "--today",
        help="Reference date (YYYY-MM-DD) instead of today, for reproducible files: "
        "every trajectory ends before it.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Write N synthetic records (one JSON object per line) to --out."""
    if fmt not in FORMATS:
        raise typer.BadParameter("use jsonl, csv or xlsx", param_hint="--format")
    if period is not None and not is_period(period):
        raise typer.BadParameter("use the form 2026-H1 or 2026-H2", param_hint="--period")
    try:
        ref = dt.date.fromisoformat(today) if today else dt.date.today()
    except ValueError as exc:
        raise typer.BadParameter("use the form YYYY-MM-DD", param_hint="--today") from exc
    try:
        config = SyntheticConfig(
            records=records,
            seed=seed,
            providers=tuple(provider) if provider else tuple(a for a, _ in SAMPLE_PROVIDERS),
            invalid_share=invalid_share,
            period=period,
            today=ref,
        )
        with Progress(
            TextColumn("[bold]generating[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
        ) as progress:
            task = progress.add_task("generate", total=records)
            summary = write_jsonl(config, out, lambda n: progress.advance(task, n), fmt=FORMATS[fmt])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if quiet:
        return
    table = Table("written", "value", title=f"{out} (period {period or default_period(ref)})")
    table.add_row("records", f"{summary.records:,}")
    table.add_row("  of which invalid on purpose", f"{summary.invalid:,}")
    table.add_row("clients", f"{summary.clients:,}")
    table.add_row("  with more than one trajectory", f"{summary.clients_with_restart:,}")
    valid = max(summary.records - summary.invalid, 1)
    table.add_row("without BSN (fallback key)", f"{summary.unknown_bsn / valid:.1%}")
    table.add_row("without any measurement", f"{summary.without_measurement / valid:.1%}")
    for agb, n in sorted(summary.per_provider.items()):
        table.add_row(f"provider {agb}", f"{n:,}")
    for p, n in sorted(summary.per_period.items(), reverse=True)[:4]:
        table.add_row(f"ended in {p}", f"{n:,}")
    console.print(table)
