"""The audit service: the tamper-evident log's single writer (``uvicorn --factory``).

On start it migrates its database, seeds the party registry, loads the log's
Ed25519 key (``ttp pki init`` writes it) and makes sure the log has a head
and a signed checkpoint, so an auditor can fetch one even before the first
append.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI

from services.audit.models import parties
from services.audit.routes import AppendRequest, router
from services.audit.sink import AuditLog, LocalAuditSink
from services.audit.store import AuditStore, make_audit_engine
from ttp.app_factory import create_app as create_service_app
from ttp.checkpoint import CheckpointSigner, load_private_key
from ttp.db import database_status, migrate
from ttp.identity import UNKNOWN_OIN, oin_from_pem
from ttp.openapi_models import document_models
from ttp.pki import server_paths
from ttp.problems import ProblemDetails
from ttp.registry import Registry
from ttp.settings import Settings, get_settings

DESCRIPTION = (
    "Append-only, tamper-evident log of the TTP (RFC 9162 Merkle tree, C2SP signed checkpoints). "
    "TTP services append; auditors read entries, inclusion and consistency proofs, checkpoints "
    "and the consent report."
)


def _own_oin(settings: Settings) -> str:
    """The audit service's OIN, from its own server certificate: it signs its refusals with it."""
    cert = server_paths(settings.pki, "audit")[0]
    return (oin_from_pem(cert.read_text()) if cert.exists() else None) or UNKNOWN_OIN


def create_app(settings: Settings | None = None) -> FastAPI:
    """The audit service app; ``settings`` default to the environment's."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.database_url("audit")
        await to_thread.run_sync(migrate, "audit", url)
        engine = make_audit_engine(url)
        signer = CheckpointSigner(load_private_key(settings.pki / "audit-log.key"))
        store = AuditStore(engine, signer)
        app.state.registry = await to_thread.run_sync(
            Registry.seed_and_load, engine, parties, settings.registry)
        await to_thread.run_sync(store.ensure_head)
        audit_log = AuditLog(store)
        sink = LocalAuditSink(audit_log, _own_oin(settings))
        app.state.store = store
        app.state.audit_log = audit_log
        app.state.audit_sink = sink
        app.state.trusted_proxy_mode = settings.trusted_proxy_mode
        try:
            yield
        finally:
            await sink.aclose()
            engine.dispose()

    async def readiness(app: FastAPI) -> dict[str, Any]:
        return {"database": await to_thread.run_sync(database_status, app.state.store.engine)}

    app = create_service_app(
        "audit",
        title="Outcome TTP audit log",
        description=DESCRIPTION,
        lifespan=lifespan,
        readiness=readiness,
        max_body=settings.max_body_bytes,
    )
    app.include_router(router)
    document_models(app, AppendRequest, ProblemDetails)
    return app
