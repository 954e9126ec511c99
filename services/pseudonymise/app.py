"""The pseudonymise service: holds the HMAC key and nothing else of value.

Stores nothing: no database, no cache of identifiers, no request logging. It
refuses to start without a key of at least 32 bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from services.pseudonymise.keyring import Keyring
from services.pseudonymise.models import PseudonymRequest
from services.pseudonymise.routes import router
from ttp.app_factory import create_app as create_service_app
from ttp.openapi_models import document_models
from ttp.registry import Registry
from ttp.settings import Settings, get_settings

SERVICE = "pseudonymise"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the keyring is loaded before the first request (and fails loudly)."""
    settings = settings or get_settings()
    keyring = Keyring.load(settings.keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.registry = Registry.from_yaml(settings.registry)
        if getattr(app.state, "audit_sink", None) is None:
            from ttp.audit_client import HttpAuditSink

            app.state.audit_sink = HttpAuditSink(settings, SERVICE)
        try:
            yield
        finally:
            close = getattr(app.state.audit_sink, "aclose", None)
            if close is not None:
                await close()

    async def readiness(app: FastAPI) -> dict[str, Any]:
        return {"keyring": "ok" if app.state.keyring.keys else "no key"}

    app = create_service_app(
        SERVICE,
        title="Outcome TTP - pseudonymise",
        description="Keyed pseudonyms (HMAC-SHA256 with a versioned key) for person identifiers, and keyed "
        "digests of the records they came from (for duplicate and correction detection and the audit log). "
        "Stores and logs nothing.",
        lifespan=lifespan,
        readiness=readiness,
        max_body=32 * 1024 * 1024,  # a full batch's canonical records travel with the identifiers
    )
    app.state.keyring = keyring
    app.state.trusted_proxy_mode = settings.trusted_proxy_mode
    app.include_router(router)
    document_models(app, PseudonymRequest)
    return app
