"""``ttp bench``: the performance benchmarks, each measured beside a reference in the same run."""

from __future__ import annotations

import typer

from ttp.cli import bench_recompute
from ttp.cli.bench_disclosure_cmd import bench_disclosure
from ttp.cli.bench_ingest_cmd import bench_ingest
from ttp.cli.bench_reads_cmd import bench_reads

app = typer.Typer(
    help="Benchmarks: ingest (beside a raw bulk insert), recompute (beside DuckDB), reads (latency percentiles), "
    "disclosure (beside tau-ARGUS).",
    no_args_is_help=True,
)
app.command("ingest")(bench_ingest)
app.command("recompute")(bench_recompute.recompute)
app.command("reads")(bench_reads)
app.command("disclosure")(bench_disclosure)
