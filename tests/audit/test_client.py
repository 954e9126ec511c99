"""``HttpAuditSink``: what ingest and the other services rely on when they append."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from services.audit.app import create_app
from tests.audit.conftest import app_settings, events
from tests.helpers.asgi import AsParty
from ttp.audit_client import AuditRejected, AuditUnavailable, BackgroundAppender, HttpAuditSink
from ttp.audit_events import AuditEvent
from ttp.pki import cert_paths
from ttp.serve import uvicorn_config
from ttp.settings import Settings


def asgi_client(app: FastAPI, pki: Path, slug: str = "service-ingest") -> httpx.AsyncClient:
    pem = cert_paths(pki, slug)[0].read_text()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=AsParty(app, pem)),
                             base_url="https://testserver/v1")


def sink_for(app: FastAPI, pki: Path, tmp_path: Path, **kw: Any) -> HttpAuditSink:
    return HttpAuditSink(app_settings(tmp_path, pki), "ingest", client=asgi_client(app, pki), **kw)


def mock_sink(handler: Any, pki: Path, tmp_path: Path) -> HttpAuditSink:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://audit/v1")
    return HttpAuditSink(app_settings(tmp_path, pki), "ingest", client=client)


async def test_append_returns_a_verified_receipt(audit_app: FastAPI, dev_pki: Path, tmp_path: Path) -> None:
    sink = sink_for(audit_app, dev_pki, tmp_path)
    receipt = await sink.append(events(50, "x"))
    assert receipt["leafIndexes"] == list(range(50))
    assert receipt["treeSize"] == 50 and receipt["appended"] == 50
    assert len(receipt["inclusionProofs"]) == 50
    again = await sink.append(events(50, "x"))
    assert again["appended"] == 0 and again["leafIndexes"] == receipt["leafIndexes"]
    await sink.aclose()


async def test_invalid_events_raise_rejected(audit_app: FastAPI, dev_pki: Path, tmp_path: Path) -> None:
    sink = sink_for(audit_app, dev_pki, tmp_path)
    ev = events(1, "bad")[0]
    ev.subject["bsn"] = "123456782"
    with pytest.raises(AuditRejected) as info:
        await sink.append([ev])
    assert info.value.status == 400
    assert info.value.problem["invalidParams"][0]["code"] == "personal-data"
    with pytest.raises(ValueError):
        await sink.append([])
    await sink.aclose()


async def test_unreachable_log_raises_unavailable(dev_pki: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(home=tmp_path, pki_dir=dev_pki, audit_port=port)
    sink = HttpAuditSink(settings, "ingest", timeout=2.0)
    with pytest.raises(AuditUnavailable):
        await sink.append(events(1, "x"))
    await sink.aclose()


async def test_server_errors_raise_unavailable_with_retry_after(dev_pki: Path, tmp_path: Path) -> None:
    sink = mock_sink(lambda _r: httpx.Response(503, headers={"retry-after": "7"},
                                               json={"status": 503, "title": "x", "detail": "down"}),
                     dev_pki, tmp_path)
    with pytest.raises(AuditUnavailable) as info:
        await sink.append(events(1, "x"))
    assert info.value.retry_after == 7
    await sink.aclose()


async def test_a_receipt_that_does_not_verify_is_not_accepted(audit_app: FastAPI, dev_pki: Path,
                                                              tmp_path: Path) -> None:
    """A service must not acknowledge on a receipt the log did not provably sign."""
    good = await sink_for(audit_app, dev_pki, tmp_path).append(events(10, "r"))
    tampered: list[dict[str, Any]] = []
    t = json.loads(json.dumps(good))
    t["inclusionProofs"][0]["hashes"][0] = base64.b64encode(bytes(32)).decode()
    tampered.append(t)
    t = json.loads(json.dumps(good))
    t["rootHash"] = t["inclusionProofs"][0]["leafHash"]
    tampered.append(t)
    t = json.loads(json.dumps(good))
    t["checkpoint"] = t["checkpoint"].replace("\n10\n", "\n11\n")
    tampered.append(t)
    t = json.loads(json.dumps(good))
    t["leafIndexes"] = t["leafIndexes"][:-1]
    tampered.append(t)
    for doc in tampered:
        sink = mock_sink(lambda _r, d=doc: httpx.Response(201, json=d), dev_pki, tmp_path)
        with pytest.raises(AuditUnavailable):
            await sink.append(events(10, "r"))
        await sink.aclose()


async def test_append_soon_retries_until_the_log_takes_it(audit_app: FastAPI, dev_pki: Path,
                                                          tmp_path: Path) -> None:
    real = asgi_client(audit_app, dev_pki)
    failures = {"left": 2}

    async def flaky(request: httpx.Request) -> httpx.Response:
        if failures["left"]:
            failures["left"] -= 1
            raise httpx.ConnectError("down", request=request)
        forwarded = await real.send(real.build_request(request.method, str(request.url).replace(
            "https://audit", "https://testserver"), content=request.content, headers=request.headers))
        await forwarded.aread()
        return httpx.Response(forwarded.status_code, headers=forwarded.headers, content=forwarded.content)

    client = httpx.AsyncClient(transport=httpx.MockTransport(flaky), base_url="https://audit/v1")
    sink = HttpAuditSink(app_settings(tmp_path, dev_pki), "ingest", client=client)
    sink.background._retry_initial = 0.01
    sink.append_soon([AuditEvent(kind="refusal", actorOin="00000099200000000001",
                                 subject={"service": "ingest", "reason": "test"})])
    sink.append_soon(events(3, "later", kind="record-rejected", keyed=False))
    assert await sink.background.flush(5.0)
    assert failures["left"] == 0 and sink.background.sent == 4
    kinds = [orjson.loads(e.body)["kind"] for e in audit_app.state.store.entries()]
    assert kinds == ["refusal", "record-rejected", "record-rejected", "record-rejected"]
    await sink.aclose()
    await real.aclose()


async def test_background_buffer_is_bounded_and_drops_rejected() -> None:
    gate = asyncio.Event()
    seen: list[str] = []

    async def slow(batch: list[AuditEvent]) -> None:
        await gate.wait()
        seen.extend(e.kind for e in batch)

    bg = BackgroundAppender(slow, max_queue=3)
    bg.submit(events(5, "x", kind="feed-read"))
    assert bg.dropped == 2 and bg.pending == 3
    assert not await bg.flush(0.05)
    gate.set()
    assert await bg.flush(2.0)
    assert seen == ["feed-read"] * 3

    async def rejecting(_batch: list[AuditEvent]) -> None:
        raise AuditRejected(400, {"detail": "bad"})

    bg = BackgroundAppender(rejecting)
    bg.submit(events(2, "y"))
    assert await bg.flush(2.0)
    assert bg.dropped == 2 and bg.sent == 0
    await bg.aclose()


# ---- over real mTLS ---------------------------------------------------------------------------

@pytest.fixture
def served(tmp_path: Path, dev_pki: Path) -> Iterator[Settings]:
    """The audit service under uvicorn, TLS with client certificates, on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(home=tmp_path, pki_dir=dev_pki, audit_port=port)
    config = uvicorn_config("audit", settings)
    config.app, config.factory = create_app(settings), False
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "audit server did not start"
        time.sleep(0.05)
    yield settings
    server.should_exit = True
    thread.join(10)


async def test_http_sink_over_mutual_tls(served: Settings) -> None:
    sink = HttpAuditSink(served, "ingest")
    receipt = await sink.append(events(20, "tls"))
    assert receipt["treeSize"] == 20
    sink.append_soon([AuditEvent(kind="batch-received", actorOin="00000099100000000001",
                                 subject={"provider": "98000001", "period": "2026-H1"})])
    await sink.aclose()
    # a provider's certificate is refused by the log over the same TLS path
    provider = HttpAuditSink(served, "ingest")
    from ttp.tls import client_context

    provider._client = httpx.AsyncClient(base_url=served.base_url("audit"),
                                         verify=client_context(served.pki, "provider-98000001"))
    with pytest.raises(AuditRejected) as info:
        await provider.append(events(1, "p"))
    assert info.value.status == 403
    await provider.aclose()
    auditor = httpx.AsyncClient(base_url=served.base_url("audit"), verify=client_context(served.pki, "auditor"))
    deadline = asyncio.get_running_loop().time() + 5
    while True:  # the log records its own refusal in the background, a batch's linger later
        entries = (await auditor.get("/audit/entries")).json()["entries"]
        if len(entries) >= 22 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    await auditor.aclose()
    assert [e["entry"]["kind"] for e in entries].count("batch-received") == 1
    assert len(entries) == 21 + 1  # 20 records, the read, and the provider's refusal


def test_sink_loads_the_log_key_from_the_pki(dev_pki: Path, tmp_path: Path) -> None:
    """Receipts are checked against the key ``ttp pki init`` wrote, without extra configuration."""
    sink = HttpAuditSink(app_settings(tmp_path, dev_pki), "ingest")
    assert sink.public_key is not None
