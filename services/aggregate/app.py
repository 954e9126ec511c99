"""The aggregate service: owner of the pseudonymised trajectory store.

Receives minimised trajectories from ingest (two-phase), computes the outcome
indicators and serves the gemeente and Rijk feeds and the report service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from services.aggregate.commit_log import keep_commits_logged
from services.aggregate.disclosure import Protection
from services.aggregate.models import parties
from services.aggregate.recompute import keep_fresh
from services.aggregate.routes_ingest import router as ingest_router
from services.aggregate.routes_outcomes import router as outcomes_router
from services.aggregate.wire import CommitRequest, PrepareRequest, WithdrawalRequest
from ttp.app_factory import create_app as create_service_app
from ttp.db import database_status
from ttp.openapi_models import document_models
from ttp.problems import ProblemDetails
from ttp.read_log import open_read_log
from ttp.service_state import close_storing_service, open_storing_service
from ttp.settings import Settings, get_settings

SERVICE = "aggregate"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the aggregate app; the database is migrated and the registry seeded on start-up."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await open_storing_service(app, settings, SERVICE, parties)
        app.state.read_log = open_read_log(app.state.audit_sink, settings.home, SERVICE)
        refresher: asyncio.Task[None] | None = None
        outbox = asyncio.create_task(keep_commits_logged(app))
        if settings.recompute_interval > 0:
            protection = Protection(settings.suppression_threshold, settings.protection_ratio)
            refresher = asyncio.create_task(keep_fresh(engine, protection, interval=settings.recompute_interval))
        try:
            yield
        finally:
            outbox.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await outbox
            if refresher is not None:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
            await app.state.read_log.aclose()
            await close_storing_service(app, engine)

    async def readiness(app: FastAPI) -> dict[str, Any]:
        return {"database": await run_in_threadpool(database_status, app.state.engine)}

    app = create_service_app(
        SERVICE,
        title="Outcome TTP - aggregate",
        description="Pseudonymised trajectory store, outcome indicators with disclosure control, "
        "gemeente and Rijk feeds.",
        lifespan=lifespan,
        readiness=readiness,
        max_body=settings.max_body_bytes * 2,
    )
    app.state.trusted_proxy_mode = settings.trusted_proxy_mode
    app.include_router(ingest_router)
    app.include_router(outcomes_router)
    document_models(app, ProblemDetails, PrepareRequest, CommitRequest, WithdrawalRequest)
    return app
