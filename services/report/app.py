"""The report service: mirror reports (spiegelrapportages) per provider per half year.

Figures come from aggregate over mTLS (``figures.HttpFigureSource``); this
service stores only what the provider adds (annotations) and decides (shares),
plus a record of which shareable figures each gemeente was served, for the
disclosure check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from services.report.cache import RenderCache
from services.report.figures import FigureCache, FigureSource
from services.report.models import parties
from services.report.routes import router
from services.report.schemas import AnnotationsIn, ReportDocument
from ttp.app_factory import create_app as create_service_app
from ttp.db import database_status
from ttp.openapi_models import document_models
from ttp.read_log import open_read_log
from ttp.service_state import close_storing_service, open_storing_service
from ttp.settings import Settings, get_settings

SERVICE = "report"

#: Bytes of rendered output kept in memory (PDFs are a few hundred kB each).
RENDER_CACHE_BYTES = 96 * 1024 * 1024
#: Report documents kept (the source of every format; small).
DOCUMENT_CACHE_ENTRIES = 512
#: How long a table fetched from aggregate is reused, in seconds.
FIGURE_TTL = 15.0


def create_app(settings: Settings | None = None, figures: FigureSource | None = None) -> FastAPI:
    """Build the report app; ``figures`` replaces the aggregate client (tests)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await open_storing_service(app, settings, SERVICE, parties)
        app.state.read_log = open_read_log(app.state.audit_sink, settings.home, SERVICE)
        source = figures
        if source is None:
            from services.report.figures import HttpFigureSource

            source = HttpFigureSource(settings)
        app.state.figures = FigureCache(source, ttl=FIGURE_TTL)
        app.state.documents = RenderCache[ReportDocument](
            max_size=DOCUMENT_CACHE_ENTRIES, size=lambda _doc: 1, max_parallel=2
        )
        app.state.renders = RenderCache[bytes](max_size=RENDER_CACHE_BYTES, size=len, max_parallel=2)
        app.state.disclosed = set()
        app.state.annotations = {}
        try:
            yield
        finally:
            await app.state.figures.aclose()
            await app.state.read_log.aclose()
            await close_storing_service(app, engine)

    async def readiness(app: FastAPI) -> dict[str, Any]:
        return {"database": await run_in_threadpool(database_status, app.state.engine)}

    app = create_service_app(
        SERVICE,
        title="Outcome TTP - report",
        description="Mirror reports (spiegelrapportages) per provider and half year, in an intern "
        "and a shareable variant, as JSON, CSV, HTML and PDF; the provider's annotations; "
        "sharing with gemeenten.",
        lifespan=lifespan,
        readiness=readiness,
    )
    app.state.trusted_proxy_mode = settings.trusted_proxy_mode
    app.include_router(router)
    document_models(app, AnnotationsIn)
    return app
