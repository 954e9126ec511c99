"""``ttp bench``: the performance benchmarks, each measured beside a reference in the same run."""

from __future__ import annotations

import typer

from ttp.cli import bench_recompute

app = typer.Typer(help="Benchmarks: recompute (more to come: ingest, reads).", no_args_is_help=True)
app.command("recompute")(bench_recompute.recompute)
