"""``ttp submit``: post a JSON Lines file of records to ingest in batches, safely.

Batch ids are derived from the file name, the batch's position and a keyed
digest of its records, so running the same command again resends the same
batches and nothing counts twice, while a corrected file gets new batch ids.
The digest is keyed with a random secret kept on the submitting machine
(``<home>/submit-batch-id.key``): a batch id is stored and logged by the TTP,
and an unkeyed hash of records that hold BSNs and birth dates could be
reversed by brute force. On 503/429 it waits for Retry-After and resends the
same batch.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import os
import secrets
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

from ttp.pki import cert_paths
from ttp.settings import get_settings
from ttp.tls import client_context, client_context_from_files

console = Console(stderr=True)


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
    path = home / "submit-batch-id.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another run created it first
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
    return path.read_bytes()


def batch_id_for(path: Path, provider: str | None, number: int, records: list[Any], secret: bytes) -> str:
    """Stable id: the same file, batch position and records always give the same batchId.

    The records' digest is an HMAC under ``secret`` (:func:`batch_id_key`),
    never a plain hash: the TTP stores the batch id.
    """
    digest = hmac.new(secret, BATCH_ID_TAG + orjson.dumps(records), "sha256").hexdigest()[:12]
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in path.stem)[:24]
    return f"{stem}-{provider or 'all'}-{number:05d}-{digest}"


async def post_batch(
    client: httpx.AsyncClient, batch_id: str, records: list[Any], summary: Summary, max_attempts: int
) -> dict[str, Any]:
    """Post one batch, resending the same batch on 503/429/transport errors."""
    body = orjson.dumps({"batchId": batch_id, "records": records})
    delay = 1.0
    for attempt in range(1, max_attempts + 1):
        try:
            resp = await client.post("/batches", content=body, headers={"content-type": "application/json"})
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
        raise RuntimeError(f"batch {batch_id}: {resp.status_code} {problem.get('detail', resp.text)[:300]}")
    raise RuntimeError(f"batch {batch_id}: gave up after {max_attempts} attempts")


async def submit_async(
    path: Path, *, provider: str | None, batch_size: int, concurrency: int, base_url: str,
    contexts: dict[str | None, ssl.SSLContext], max_attempts: int, quiet: bool = False,
    batch_secret: bytes | None = None,
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
                receipt = await post_batch(client, batch_id, records, summary, max_attempts)
                summary.add(receipt)
                summary.receipts.append({"batchId": batch_id, "counts": receipt.get("counts")})
                elapsed = time.perf_counter() - started
                progress.update(task, advance=len(records), rate=f"{summary.received / elapsed:,.0f} rec/s")

        try:
            await asyncio.gather(producer(), *(worker() for _ in range(concurrency)))
        finally:
            for c in clients.values():
                await c.aclose()
    return summary


def submit(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines, one record per line."),
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
) -> None:
    """Post FILE to ingest in batches with a progress bar; prints the summed receipts."""
    settings = get_settings()
    base_url = url or settings.base_url("ingest")
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
            contexts=contexts, max_attempts=max_attempts,
        )
    )
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
