"""The common shape of every TTP service app.

One place sets what the NL API Design Rules and our operations need on every
service: the ``API-Version`` header, problem+json for every error, a request id,
a body size limit (413), JSON logs, health and readiness endpoints.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ttp import metrics
from ttp.logging_setup import request_id_var
from ttp.problems import PROBLEM_JSON, Problem, install_problem_handlers

API_VERSION = "1.0.0"
log = logging.getLogger("ttp.app")

CONTACT = {
    "name": "Outcome TTP beheer",
    "email": "beheer@outcome-ttp.example.nl",
    "url": "https://outcome-ttp.example.nl/contact",
}


class ServiceMiddleware:
    """Pure ASGI middleware: API-Version, request id, body limit, metrics.

    Written as raw ASGI rather than ``BaseHTTPMiddleware`` because it runs on
    every request of the hot ingest path.
    """

    def __init__(self, app: ASGIApp, *, service: str, max_body: int) -> None:
        self.app = app
        self.service = service
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status_holder = {"status": 500}
        declared = headers.get(b"content-length")
        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                await self._too_large(scope, send, rid)
                status_holder["status"] = 413
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        raise _BodyTooLarge()
                return message

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_holder["status"] = message["status"]
                    hdrs = list(message.get("headers", []))
                    hdrs.append((b"api-version", API_VERSION.encode()))
                    hdrs.append((b"x-request-id", rid.encode("latin-1")))
                    message = {**message, "headers": hdrs}
                await send(message)

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except _BodyTooLarge:
                status_holder["status"] = 413
                await self._too_large(scope, send, rid)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            metrics.observe_request(
                self.service, scope.get("method", "?"), path, status_holder["status"],
                time.perf_counter() - started,
            )
            request_id_var.reset(token)

    async def _too_large(self, scope: Scope, send: Send, rid: str) -> None:
        problem = Problem(413, f"The request body is larger than the limit of {self.max_body} bytes.")
        import json

        body = json.dumps(problem.document(scope.get("path"))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"api-version", API_VERSION.encode()),
                    (b"x-request-id", rid.encode("latin-1")),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


def create_app(
    service: str,
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    max_body: int = 32 * 1024 * 1024,
    readiness: Callable[[FastAPI], Awaitable[dict[str, Any]]] | None = None,
) -> FastAPI:
    """A FastAPI app with the TTP conventions; routes go on ``/v1`` routers."""
    app = FastAPI(
        title=title,
        description=description,
        version=API_VERSION,
        contact=CONTACT,
        servers=[{"url": f"https://localhost:{_port(service)}/v1", "description": "development"}],
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/v1/openapi.json",
    )
    app.state.service_name = service
    install_problem_handlers(app)
    app.add_middleware(ServiceMiddleware, service=service, max_body=max_body)

    ops = APIRouter(prefix="/v1", tags=["operations"])

    @ops.get("/health", summary="Liveness: the process answers", operation_id=f"{service}Health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @ops.get("/ready", summary="Readiness: dependencies reachable", operation_id=f"{service}Ready")
    async def ready() -> dict[str, Any]:
        checks: dict[str, Any] = await readiness(app) if readiness else {}
        if any(v != "ok" for v in checks.values()):
            raise Problem(503, "Not ready: " + ", ".join(k for k, v in checks.items() if v != "ok"),
                          headers={"Retry-After": "5"})
        return {"status": "ready", "service": service, "checks": checks}

    @ops.get("/metrics", summary="Prometheus metrics (no personal data)", operation_id=f"{service}Metrics",
             include_in_schema=False)
    async def prometheus() -> Any:
        return metrics.response()

    app.include_router(ops)
    return app


def _port(service: str) -> int:
    from ttp.settings import DEFAULT_PORTS

    return DEFAULT_PORTS.get(service, 8440)
