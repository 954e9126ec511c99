"""Start-up and shut-down every storing service shares.

Migrate the service's database, open its engine, seed and load the party
registry, and give it an audit sink (the HTTP client to the log unless a test
or the audit service itself set one). One place, so the services cannot
drift apart in how they come up.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, Table

from ttp.db import make_engine, migrate
from ttp.registry import Registry
from ttp.settings import Settings


async def open_storing_service(app: FastAPI, settings: Settings, service: str, parties: Table) -> Engine:
    """Migrate, connect, load the registry and set ``app.state`` (engine, settings, registry, audit_sink)."""
    url = settings.database_url(service)
    await run_in_threadpool(migrate, service, url)
    engine = make_engine(url)
    app.state.engine = engine
    app.state.settings = settings
    app.state.registry = await run_in_threadpool(Registry.seed_and_load, engine, parties, settings.registry)
    if getattr(app.state, "audit_sink", None) is None:
        from ttp.audit_client import HttpAuditSink

        app.state.audit_sink = HttpAuditSink(settings, service)
    return engine


async def close_storing_service(app: FastAPI, engine: Engine) -> None:
    """Flush queued audit events, then release the database."""
    close = getattr(app.state.audit_sink, "aclose", None)
    if close is not None:
        await close()
    engine.dispose()
