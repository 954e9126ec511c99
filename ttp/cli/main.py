"""The ``ttp`` command line: one entry point for operators, providers, gemeenten and auditors."""

from __future__ import annotations

import typer

from ttp.cli import (
    audit_cmd,
    bench_cmd,
    disclosure_cmd,
    feed_cmd,
    generate_cmd,
    keys_cmd,
    openapi_cmd,
    pki_cmd,
    purge_cmd,
    report_cmd,
    submit_cmd,
    up_cmd,
)
from ttp.private_files import restrict_umask

app = typer.Typer(
    name="ttp",
    help="Outcome TTP: youth-care outcome routing (dev PKI, services, data, feeds, reports, audit).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)



@app.callback()
def _owner_only_files() -> None:
    # Before any command: every file the command or a service it starts creates (databases, logs,
    # keys, spools, exports) is readable by its owner only (ttp.private_files).
    restrict_umask()


# running the system
app.add_typer(pki_cmd.app, name="pki")
app.command("up")(up_cmd.up)
app.command("serve")(up_cmd.serve)
app.add_typer(keys_cmd.app, name="keys")
app.command("purge")(purge_cmd.purge)
# providers
app.command("generate")(generate_cmd.generate)
app.command("submit")(submit_cmd.submit)
app.command("report")(report_cmd.report)
# gemeenten and the Rijk
app.command("feed")(feed_cmd.feed)
# auditors and operators
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(disclosure_cmd.app, name="disclosure")
app.add_typer(openapi_cmd.app, name="openapi")
app.add_typer(bench_cmd.app, name="bench")
