"""The ``ttp`` command line: one entry point for operators, providers and auditors."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ttp",
    help="Outcome TTP: youth-care outcome routing (dev PKI, services, data, feeds, reports, audit).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

from ttp.cli import pki_cmd, submit_cmd, up_cmd  # noqa: E402

app.add_typer(pki_cmd.app, name="pki")
app.command("up")(up_cmd.up)
app.command("serve")(up_cmd.serve)
app.command("submit")(submit_cmd.submit)

from ttp.cli import keys_cmd  # noqa: E402

app.add_typer(keys_cmd.app, name="keys")

from ttp.cli import feed_cmd  # noqa: E402

app.command("feed")(feed_cmd.feed)

from ttp.cli import openapi_cmd  # noqa: E402

app.add_typer(openapi_cmd.app, name="openapi")

from ttp.cli import audit_cmd  # noqa: E402

app.add_typer(audit_cmd.app, name="audit")

from ttp.cli import generate_cmd  # noqa: E402

app.command("generate")(generate_cmd.generate)

from ttp.cli import report_cmd  # noqa: E402

app.command("report")(report_cmd.report)

from ttp.cli import bench_cmd, disclosure_cmd, purge_cmd  # noqa: E402

app.command("purge")(purge_cmd.purge)
app.add_typer(disclosure_cmd.app, name="disclosure")
app.add_typer(bench_cmd.app, name="bench")
