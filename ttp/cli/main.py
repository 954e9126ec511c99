"""The ``ttp`` command line: one entry point for operators, providers and auditors."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ttp",
    help="Outcome TTP: youth-care outcome routing (dev PKI, services, data, feeds, reports, audit).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
