"""``ttp submit``: post a file of records to ingest in batches, safely.

A JSON Lines file (one record per line) goes in batches; a CSV or XLSX file
in the delivery layout of docs/delivery.md (the files providers already make
for CBS) goes whole, as one batch, and ingest reads its rows.

Batch ids are derived from the file name, the batch's position and a keyed
digest of its records (of the whole file's bytes for CSV and XLSX), so running
the same command again resends the same batches and nothing counts twice,
while a corrected file gets new batch ids. The digest is keyed with a random
secret kept on the submitting machine (``<home>/submit-batch-id.key``): a batch
id is stored and logged by the TTP, and an unkeyed hash of records that hold
BSNs and birth dates could be reversed by brute force. On 503/429 it waits for
Retry-After and resends the same batch.

``--replace-period 2026-H1`` makes the delivery a period re-delivery: it
replaces what the provider delivered for that half year, and ingest withdraws
(and logs) the provider's records of it that the file leaves out. The file is
then always one batch, or the records of the period in other batches would
count as left out.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ttp.periods import is_period
from ttp.pki import cert_paths
from ttp.private_files import secret_file
from ttp.settings import get_settings
from ttp.tls import client_context, client_context_from_files

console = Console(stderr=True)

#: Most records in one batch (ingest refuses more; services.ingest.models.MAX_BATCH_RECORDS).
MAX_BATCH_RECORDS = 10_000


@dataclass
class Summary:
    batches: int = 0
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    corrections: int = 0
    rejected: int = 0
    retries: int = 0
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    receipts: list[dict[str, Any]] = field(default_factory=list)

    def add(self, receipt: dict[str, Any]) -> None:
        counts = receipt.get("counts", {})
        self.batches += 1
        for key in ("received", "accepted", "duplicates", "corrections", "rejected"):
            setattr(self, key, getattr(self, key) + int(counts.get(key, 0)))
        for rej in receipt.get("rejected", []):
            for problem in rej.get("problems", []):
                self.codes[problem.get("code", "?")] += 1


#: Files ingest reads itself (the delivery layout), by suffix.
FILE_MEDIA_TYPES: dict[str, str] = {
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def file_batch_id(path: Path, content: bytes, secret: bytes) -> str:
    """The batchId of a whole-file delivery: its name and a keyed digest of its content.

    The same file sent again is the same batch (a no-op); a changed file is a new one.
    The digest is an HMAC under the submitter's secret (:func:`batch_id_key`), for the
    same reason as :func:`batch_id_for`: the file holds BSNs and birth dates.
    """
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in path.stem)[:40]
    return f"{stem}-{hmac.new(secret, BATCH_ID_TAG + content, 'sha256').hexdigest()[:16]}"


def file_content_type(path: Path, content: bytes) -> str:
    """The Content-Type of a CSV or XLSX file; a CSV that is not UTF-8 is sent as windows-1252 (Excel)."""
    media = FILE_MEDIA_TYPES[path.suffix.lower()]
    if media != "text/csv":
        return media
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return "text/csv; charset=windows-1252"
    return "text/csv; charset=utf-8"


def read_batches(path: Path, size: int, split_by_provider: bool) -> Iterator[tuple[str | None, list[Any]]]:
    """Yield (provider AGB or None, records) batches, streaming the file."""
    pending: dict[str | None, list[Any]] = collections.defaultdict(list)
    with path.open("rb") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            rec = orjson.loads(line)
            key = str(rec.get("providerAgb")) if split_by_provider and isinstance(rec, dict) else None
            pending[key].append(rec)
            if len(pending[key]) >= size:
                yield key, pending.pop(key)
    for key, recs in pending.items():
        if recs:
            yield key, recs


#: Domain tag of the batch-id digest under the submitter's secret.
BATCH_ID_TAG = b"outcome-ttp/submit/batch-id/v1\x00"


def batch_id_key(home: Path) -> bytes:
    """The submitting machine's secret for batch-id digests, created (owner-only) on first use."""
    return secret_file(home / "submit-batch-id.key")


def batch_id_for(path: Path, provider: str | None, number: int, records: list[Any], secret: bytes) -> str:
    """Stable id: the same file, batch position and records always give the same batchId.

    The records' digest is an HMAC under ``secret`` (:func:`batch_id_key`),
    never a plain hash: the TTP stores the batch id.
    """
    digest = hmac.new(secret, BATCH_ID_TAG + orjson.dumps(records), "sha256").hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in path.stem)[:24]
    return f"{stem}-{provider or 'all'}-{number:05d}-{digest}"


async def post_batch(
    client: httpx.AsyncClient, batch_id: str, records: list[Any], summary: Summary, max_attempts: int,
    replace_period: str | None = None,
) -> dict[str, Any]:
    """Post one batch of JSON records, resending the same batch on 503/429/transport errors."""
    body = orjson.dumps({"batchId": batch_id, "records": records})
    params = {"replacePeriod": replace_period} if replace_period else {}
    return await post_body(client, batch_id, body, "application/json", params, summary, max_attempts)


async def post_body(
    client: httpx.AsyncClient, batch_id: str, body: bytes, content_type: str, params: dict[str, str],
    summary: Summary, max_attempts: int,
) -> dict[str, Any]:
    """Post one batch body (JSON envelope or a whole file), resending it on 503/429/transport errors."""
    delay = 1.0
    for attempt in range(1, max_attempts + 1):
        try:
            resp = await client.post("/batches", content=body, params=params, headers={"content-type": content_type})
        except httpx.HTTPError as exc:
            if attempt == max_attempts:
                raise RuntimeError(f"batch {batch_id}: ingest unreachable ({type(exc).__name__})") from exc
            summary.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)
            continue
        if resp.status_code == 200:
            receipt: dict[str, Any] = resp.json()
            return receipt
        if resp.status_code in (429, 503) and attempt < max_attempts:
            summary.retries += 1
            wait = float(resp.headers.get("retry-after", delay))
            await asyncio.sleep(min(wait, 60))
            delay = min(delay * 2, 30)
            continue
        problem = resp.json() if resp.content else {}
        where = "; ".join(p.get("location") or p.get("name", "") for p in problem.get("invalidParams") or [])
        detail = problem.get("detail", resp.text)[:300] + (f" ({where})" if where else "")
        raise RuntimeError(f"batch {batch_id}: {resp.status_code} {detail}")
    raise RuntimeError(f"batch {batch_id}: gave up after {max_attempts} attempts")


async def submit_file_async(
    path: Path, *, base_url: str, context: ssl.SSLContext, max_attempts: int, replace_period: str | None,
    batch_secret: bytes | None = None,
) -> Summary:
    """Send a CSV or XLSX delivery whole: ingest reads the rows and answers one receipt."""
    summary = Summary()
    content = path.read_bytes()
    secret = batch_secret if batch_secret is not None else batch_id_key(get_settings().home)
    batch_id = file_batch_id(path, content, secret)
    params = {"batchId": batch_id, **({"replacePeriod": replace_period} if replace_period else {})}
    async with httpx.AsyncClient(base_url=base_url, verify=context, timeout=300.0) as client:
        receipt = await post_body(client, batch_id, content, file_content_type(path, content), params, summary,
                                  max_attempts)
    summary.add(receipt)
    summary.receipts.append(receipt)
    return summary


async def submit_async(
    path: Path, *, provider: str | None, batch_size: int, concurrency: int, base_url: str,
    contexts: dict[str | None, ssl.SSLContext], max_attempts: int, quiet: bool = False,
    batch_secret: bytes | None = None,
    replace_period: str | None = None,
) -> Summary:
    """Submit ``path``; ``batch_secret`` keys the batch ids (default: this machine's, :func:`batch_id_key`)."""
    summary = Summary()
    secret = batch_secret if batch_secret is not None else batch_id_key(get_settings().home)
    total = sum(1 for line in path.open("rb") if line.strip())
    clients = {
        key: httpx.AsyncClient(base_url=base_url, verify=ctx, timeout=120.0) for key, ctx in contexts.items()
    }
    queue: asyncio.Queue[tuple[str | None, str, list[Any]] | None] = asyncio.Queue(maxsize=concurrency * 2)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]submitting[/]"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.completed:,}/{task.total:,} records"), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), console=console, disable=quiet,
    ) as progress:
        task = progress.add_task("submit", total=total, rate="")

        async def producer() -> None:
            numbers: collections.Counter[str | None] = collections.Counter()
            for key, records in read_batches(path, batch_size, split_by_provider=provider is None):
                numbers[key] += 1
                await queue.put((key, batch_id_for(path, key, numbers[key], records, secret), records))
            for _ in range(concurrency):
                await queue.put(None)

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                key, batch_id, records = item
                client = clients.get(key) or clients[None]
                receipt = await post_batch(client, batch_id, records, summary, max_attempts, replace_period)
                summary.add(receipt)
                summary.receipts.append({"batchId": batch_id, "counts": receipt.get("counts"),
                                         "withdrawn": receipt.get("withdrawn", [])})
                elapsed = time.perf_counter() - started
                progress.update(task, advance=len(records), rate=f"{summary.received / elapsed:,.0f} rec/s")

        try:
            await asyncio.gather(producer(), *(worker() for _ in range(concurrency)))
        finally:
            for c in clients.values():
                await c.aclose()
    return summary


def _print_file_problems(receipt: dict[str, Any]) -> None:
    """Every problem of a file delivery by row and column, as a data officer looks them up."""
    lines = Table("waar", "code", "reden", title="rejected rows")
    for rej in receipt.get("rejected", []):
        for problem in rej.get("problems", []):
            lines.add_row(problem.get("location") or problem.get("name", ""), problem.get("code", ""),
                          problem.get("reason", ""))
    if lines.row_count:
        Console().print(lines)


def submit(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="JSON Lines (one record per line), or a .csv or .xlsx delivery "
                                "(docs/delivery.md)."),
    provider: str | None = typer.Option(
        None, "--provider", help="Send everything with this provider's dev certificate (AGB). "
        "Default: each record with the dev certificate of its own providerAgb."
    ),
    cert: Path | None = typer.Option(None, help="Client certificate (PEM) instead of the dev PKI."),
    key: Path | None = typer.Option(None, help="Private key of --cert."),
    ca: Path | None = typer.Option(None, help="CA bundle that signed the TTP's server certificates."),
    batch_size: int = typer.Option(5000, min=1, max=10_000, help="Records per batch."),
    concurrency: int = typer.Option(2, min=1, max=16, help="Batches in flight at once."),
    max_attempts: int = typer.Option(20, min=1, help="Attempts per batch on 503/429 or network errors."),
    url: str | None = typer.Option(None, help="Ingest base URL (default from settings), ending in /v1."),
    replace_period: str | None = typer.Option(
        None, "--replace-period", help="Period re-delivery (e.g. 2026-H1): the file replaces what you delivered "
        "for that half year; your records of it that the file leaves out are withdrawn. Only the current and "
        "the previous period."),
) -> None:
    """Post FILE to ingest with a progress bar; prints the summed receipts."""
    settings = get_settings()
    base_url = url or settings.base_url("ingest")
    if replace_period is not None and not is_period(replace_period):
        raise typer.BadParameter("use the form 2026-H1 or 2026-H2", param_hint="--replace-period")
    if file.suffix.lower() in FILE_MEDIA_TYPES:
        if cert and key:
            context = client_context_from_files(ca or settings.pki / "ca.pem", cert, key)
        elif provider:
            context = client_context(settings.pki, f"provider-{provider}")
        else:
            raise typer.BadParameter("a CSV or XLSX delivery is sent with one certificate: give --provider AGB "
                                     "or --cert and --key", param_hint="--provider")
        try:
            summary = asyncio.run(submit_file_async(file, base_url=base_url, context=context,
                                                    max_attempts=max_attempts, replace_period=replace_period))
        except RuntimeError as exc:
            Console(stderr=True).print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
        _print_summary(summary)
        _print_file_problems(summary.receipts[0])
        return
    if replace_period is not None:
        batch_size = MAX_BATCH_RECORDS  # a re-delivery is one batch: see the module docstring
        if sum(1 for line in file.open("rb") if line.strip()) > MAX_BATCH_RECORDS:
            raise typer.BadParameter(f"a period re-delivery is one batch of at most {MAX_BATCH_RECORDS:,} records",
                                     param_hint="--replace-period")
    contexts: dict[str | None, ssl.SSLContext] = {}
    if cert and key:
        contexts[None] = client_context_from_files(ca or settings.pki / "ca.pem", cert, key)
        provider = provider or "given-certificate"
    elif provider:
        contexts[None] = client_context(settings.pki, f"provider-{provider}")
    else:
        agbs = {agb for agb, _ in read_batches(file, 100_000, True) if agb is not None}
        for agb in agbs:
            if cert_paths(settings.pki, f"provider-{agb}")[0].exists():
                contexts[agb] = client_context(settings.pki, f"provider-{agb}")
        if not contexts:
            raise typer.BadParameter("no dev certificate for any providerAgb in the file; use --provider or --cert")
        contexts[None] = next(iter(contexts.values()))
    summary = asyncio.run(
        submit_async(
            file, provider=provider, batch_size=batch_size, concurrency=concurrency, base_url=base_url,
            contexts=contexts, max_attempts=max_attempts, replace_period=replace_period,
        )
    )
    _print_summary(summary)


def _print_summary(summary: Summary) -> None:
    table = Table("batches", "received", "accepted", "duplicates", "corrections", "rejected", "retries")
    table.add_row(*(f"{v:,}" for v in (summary.batches, summary.received, summary.accepted,
                                       summary.duplicates, summary.corrections, summary.rejected,
                                       summary.retries)))
    Console().print(table)
    if summary.codes:
        codes = Table("rejection reason", "records")
        for code, n in summary.codes.most_common():
            codes.add_row(code, f"{n:,}")
        Console().print(codes)
    withdrawn = [rid for r in summary.receipts for rid in r.get("withdrawn") or []]
    if withdrawn:
        Console().print(f"withdrawn by the period re-delivery ({len(withdrawn)}): {', '.join(withdrawn)}")
