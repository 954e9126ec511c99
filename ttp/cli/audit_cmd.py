"""``ttp audit``: export the log, and verify it offline.

``export`` is run by the operator next to the audit database; ``verify`` by
an auditor anywhere, with only the export, the log's public key and
checkpoints or receipts obtained independently (for example from
``GET /v1/audit/checkpoint`` with the auditor's certificate, or from a
provider's batch receipts). Exit status: 0 verified, 1 verification failed,
2 bad input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from services.audit.export import export_log
from services.audit.store import AuditStore, make_audit_engine
from ttp.audit_verify import Report, load_proof_hashes, verify_checkpoint_consistency, verify_export
from ttp.checkpoint import CheckpointError, load_public_key
from ttp.merkle import ProofError
from ttp.settings import get_settings

app = typer.Typer(help="Audit log: export it, verify it offline.", no_args_is_help=True)

EXIT_FAILED = 1
EXIT_INPUT = 2


def _fail_input(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_INPUT)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail_input(f"cannot read {what} {path}: {exc.strerror}") from exc


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(_read_text(path, what))
    except json.JSONDecodeError as exc:
        raise _fail_input(f"{what} {path} is not JSON") from exc
    if not isinstance(doc, dict):
        raise _fail_input(f"{what} {path} is not a JSON object")
    return doc


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="File to write the export to")],
    database_url: Annotated[
        str | None, typer.Option(help="Audit database URL (default: from TTP_ settings)")
    ] = None,
) -> None:
    """Write the whole log (entries, stored leaf hashes, every signed checkpoint) to a file."""
    url = database_url or get_settings().database_url("audit")
    engine = make_audit_engine(url)
    tmp = out.with_name(out.name + ".partial")
    try:
        with tmp.open("wb") as fh:
            size = export_log(AuditStore(engine), fh)
        os.replace(tmp, out)
    finally:
        engine.dispose()
        tmp.unlink(missing_ok=True)
    typer.echo(f"exported {size} entries to {out}")


def _print_report(report: Report) -> None:
    if report.ok:
        root = report.root_hash.hex() if report.root_hash else "-"
        typer.echo(
            f"OK: {report.entries} entries, tree size {report.tree_size}, root {root}; "
            f"{report.checkpoints} checkpoints, {report.receipts} receipts, {report.proofs} "
            "inclusion proofs verified"
        )
        batches = report.batches.summary()
        abandoned = batches["preparedNotCommitted"]
        typer.echo(f"batches: {batches['committed']} stored (batch-committed), {batches['nothingToStore']} "
                   f"with nothing to store, {len(abandoned)} prepared but never committed (not stored)")
        for b in abandoned:
            typer.echo(f"  not stored: provider {b['provider']} batch {b['batchId']} "
                       f"(batch-received at entry {', '.join(map(str, b['leafIndexes']))})")
        return
    for finding in report.findings:
        typer.echo(f"FAIL: {finding}")
    if report.first_bad_entry is not None:
        typer.echo(f"first bad entry: {report.first_bad_entry}")


@app.command()
def verify(
    export_file: Annotated[
        Path | None, typer.Argument(metavar="EXPORT", help="Export written by `ttp audit export`")
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", "-c", help="Checkpoint file obtained independently (repeatable)"),
    ] = None,
    receipt: Annotated[
        list[Path] | None, typer.Option("--receipt", "-r", help="Batch receipt JSON (repeatable)")
    ] = None,
    consistency: Annotated[
        tuple[Path, Path] | None,
        typer.Option(metavar="OLD NEW", help="Check that checkpoint NEW extends checkpoint OLD"),
    ] = None,
    proof: Annotated[
        Path | None, typer.Option(help="Consistency proof JSON from /v1/audit/proofs/consistency")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(help="Log public key, PEM or verifier key (default: <pki>/audit-log.pub)"),
    ] = None,
    origin: Annotated[str | None, typer.Option(help="Expected log origin (default: the export's)")] = None,
) -> None:
    """Verify the log offline: recompute the tree, check signatures and proofs, name the first bad entry.

    With ``--consistency OLD NEW`` check that a later checkpoint extends an
    earlier one, from a consistency proof (``--proof``) or an export.
    """
    key_path = key or get_settings().pki / "audit-log.pub"
    try:
        public_key = load_public_key(key_path)
    except (OSError, ValueError) as exc:
        raise _fail_input(f"cannot load the log key {key_path}: {exc}") from exc

    notes = [_read_text(p, "checkpoint") for p in checkpoint or []]
    if consistency is not None:
        old_note, new_note = (_read_text(p, "checkpoint") for p in consistency)
        if proof is not None:
            doc = _read_json(proof, "proof")
            try:
                old, new = verify_checkpoint_consistency(
                    old_note, new_note, public_key, load_proof_hashes(doc), origin=origin)
                sizes = (doc.get("fromTreeSize", old.tree_size), doc.get("toTreeSize", new.tree_size))
                if sizes != (old.tree_size, new.tree_size):
                    raise ProofError("the proof is for other tree sizes than the checkpoints")
            except (CheckpointError, ProofError, KeyError, ValueError) as exc:
                typer.echo(f"FAIL: {exc}")
                raise typer.Exit(EXIT_FAILED) from exc
            typer.echo(f"OK: the log at size {new.tree_size} extends the log at size {old.tree_size}")
            return
        if export_file is None:
            raise _fail_input("--consistency needs --proof or an EXPORT to compute it from")
        notes += [old_note, new_note]
    elif proof is not None:
        raise _fail_input("--proof only goes with --consistency")
    if export_file is None:
        raise _fail_input("give an EXPORT to verify (or --consistency OLD NEW --proof FILE)")
    if not export_file.exists():
        raise _fail_input(f"no such export: {export_file}")

    receipts = [_read_json(p, "receipt") for p in receipt or []]
    report = verify_export(export_file, public_key, checkpoints=notes, receipts=receipts, origin=origin)
    _print_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
