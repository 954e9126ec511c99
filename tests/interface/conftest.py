"""Fixtures of the interface tests: one live TTP over real TLS for the whole package.

The TLS scan, the fuzzer, the problem+json checks and the log capture all need
the services as real processes on real sockets (the TLS layer and uvicorn are
part of what is tested), and starting five processes costs seconds on a
shared 2-core machine, so they share one cluster on SQLite. The fuzzer runs
first (alphabetical module order) and the log test reads every log line
written by then, so its privacy check also covers the fuzzer's traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from tests.helpers.cluster import START_ORDER, Cluster
from ttp.identity import Require
from ttp.openapi_export import API_PREFIX, create_service_app, scratch_settings, services_with_app
from ttp.registry import ROLES
from ttp.settings import SERVICES

#: The party whose certificate each service is mostly called with (its main caller).
MAIN_CALLER: dict[str, str] = {
    "ingest": "provider-98000001",
    "pseudonymise": "service-ingest",
    "aggregate": "service-ingest",
    "report": "provider-98000001",
    "audit": "auditor",
}


#: The dev party that plays each role when an operation is called.
PARTY_FOR_ROLE: dict[str, str] = {
    "provider": "provider-98000001",
    "gemeente": "gemeente-GM0363",
    "rijk": "rijk",
    "auditor": "auditor",
    "operator": "operator",
}


def _admitted(dependant: Any) -> str | None:
    """A dev party the route's ``Require`` dependency (ttp.identity) admits, or None if it has none."""
    call = getattr(dependant, "call", None)
    if isinstance(call, Require):
        if call.registered:
            return None
        for role in ROLES:
            if role in call.roles:
                return PARTY_FOR_ROLE[role]
        if call.services:  # ingest, the main producer, where it is admitted (its audit appends are the examples)
            return f"service-{'ingest' if 'ingest' in call.services else sorted(call.services)[0]}"
        return None
    for sub in getattr(dependant, "dependencies", []):
        found = _admitted(sub)
        if found:
            return found
    return None


@cache
def callers(service: str) -> dict[tuple[str, str], str]:
    """For each operation (METHOD, document path) of ``service``: the dev party allowed to call it."""
    out: dict[tuple[str, str], str] = {}
    with scratch_settings() as settings:
        app = create_service_app(service, settings)
        for ctx in iter_route_contexts(app.routes):
            route = ctx.original_route
            if not isinstance(route, APIRoute) or not ctx.path_format:
                continue
            party = _admitted(route.dependant) or MAIN_CALLER[service]
            path = ctx.path_format.removeprefix(API_PREFIX) or "/"
            for method in ctx.methods or ():
                out[(method.upper(), path)] = party
    return out


def caller(service: str, method: str, path: str) -> str:
    """The dev party to call ``method path`` of ``service`` with (its main caller if unknown)."""
    return callers(service).get((method.upper(), path), MAIN_CALLER[service])


def require_app(service: str) -> None:
    """Every one of the five services must have its app: a missing one fails, it is never skipped."""
    if service not in services_with_app():
        pytest.fail(f"services/{service}/app.py is missing")


@pytest.fixture(scope="package")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Every service that has an app, as real processes on free loopback ports (SQLite)."""
    home: Path = tmp_path_factory.mktemp("ttp-interface")
    cluster = Cluster(home, backend="sqlite")
    available = set(services_with_app())
    try:
        cluster.start(*[s for s in START_ORDER if s in available])
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    """Each of the five services in turn."""
    name: str = request.param
    require_app(name)
    return name
