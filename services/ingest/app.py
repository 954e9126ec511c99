"""The ingest service: the only door for providers.

Validates batches, has pseudonymise replace identifiers, hands minimised rows
to aggregate (two-phase), has the audit log record the legal basis of every
record, and answers a receipt. It keeps no copy of the records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from services.ingest.models import BatchEnvelope
from services.ingest.pipeline import Upstreams
from services.ingest.receipts import parties
from services.ingest.routes import _Inflight, router
from services.ingest.withdrawal import ConsentWithdrawal
from ttp.app_factory import create_app as create_service_app
from ttp.db import database_status
from ttp.delivery_layout import FILE_MEDIA_TYPES
from ttp.openapi_models import document_models
from ttp.problems import ProblemDetails
from ttp.service_client import service_client
from ttp.service_state import close_storing_service, open_storing_service
from ttp.settings import Settings, get_settings

SERVICE = "ingest"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ingest app; clients to the other services are opened on start-up."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await open_storing_service(app, settings, SERVICE, parties)
        pseudo = service_client(settings, SERVICE, "pseudonymise")
        agg = service_client(settings, SERVICE, "aggregate")
        app.state.upstreams = Upstreams(pseudonymise=pseudo, aggregate=agg, audit=app.state.audit_sink)
        try:
            yield
        finally:
            await pseudo.aclose()
            await agg.aclose()
            await close_storing_service(app, engine)

    async def readiness(app: FastAPI) -> dict[str, Any]:
        checks: dict[str, Any] = {"database": await run_in_threadpool(database_status, app.state.engine)}
        for name, client in (("pseudonymise", app.state.upstreams.pseudonymise),
                             ("aggregate", app.state.upstreams.aggregate)):
            try:
                r = await client.get("/health", timeout=2.0)
                checks[name] = "ok" if r.status_code == 200 else f"status {r.status_code}"
            except Exception:
                checks[name] = "unreachable"
        return checks

    app = create_service_app(
        SERVICE,
        title="Outcome TTP - ingest",
        description="Delivery of youth-care outcome records by providers (jeugdhulpaanbieders), "
        "over mutual TLS. Each batch gets a receipt listing every rejected record with its reasons.",
        lifespan=lifespan,
        readiness=readiness,
        max_body=settings.max_body_bytes,
        file_media_types={"/v1/batches": FILE_MEDIA_TYPES},
    )
    app.state.trusted_proxy_mode = settings.trusted_proxy_mode
    app.state.inflight = _Inflight(settings.max_inflight_batches)
    app.include_router(router)
    document_models(app, ProblemDetails, BatchEnvelope, ConsentWithdrawal)
    return app
