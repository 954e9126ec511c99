"""The common shape of every TTP service app.

One place sets what the NL API Design Rules and our operations need on every
service: the ``API-Version`` header, problem+json for every error, a request id,
a body size limit (413), JSON logs, health and readiness endpoints.

Who may read the operational endpoints: ``/v1/health`` answers any caller the
TLS layer let in (it says nothing but "up"); ``/v1/ready`` and ``/v1/metrics``
name dependencies and traffic, so only an ``operator`` certificate or the
service's own (its container probe) reads them; the API document at
``/v1/openapi.json`` is for registered parties only.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ttp import metrics
from ttp.identity import Require, require_registered
from ttp.logging_setup import request_id_var
from ttp.openapi_nl import shape_document
from ttp.problems import PROBLEM_JSON, Problem, install_problem_handlers
from ttp.registry import Party

API_VERSION = "1.0.0"
log = logging.getLogger("ttp.app")
access_log = logging.getLogger("ttp.access")

#: A caller's own X-Request-ID is kept only in these shapes (a UUID, or 32 hex digits as we make
#: them); anything else is replaced, so a free-text id can never carry a person's data into logs.
_REQUEST_ID = re.compile(
    r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
#: Media types of request bodies the services accept; any other declared type gets 415.
JSON_MEDIA_TYPES = re.compile(r"^application/(?:[\w.+-]+\+)?json$")

CONTACT = {
    "name": "Outcome TTP beheer",
    "email": "beheer@outcome-ttp.example.nl",
    "url": "https://outcome-ttp.example.nl/contact",
}


class ServiceMiddleware:
    """Pure ASGI middleware: API-Version, request id, body limit, media type, metrics, access log.

    Written as raw ASGI rather than ``BaseHTTPMiddleware`` because it runs on
    every request of the hot ingest path. It also answers the errors that
    arise outside a route (413, 415, an unhandled crash) itself, so that those
    responses too carry ``API-Version`` and ``X-Request-ID`` and are problem+json.
    """

    def __init__(
        self, app: ASGIApp, *, service: str, max_body: int, file_media_types: Mapping[str, frozenset[str]]
    ) -> None:
        self.app = app
        self.service = service
        self.max_body = max_body
        #: Non-JSON bodies a path takes (ingest's batches: CSV and XLSX), under the same body limit.
        self.file_media_types = file_media_types

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        state = {"status": 500, "started": False, "too_large": False, "crashed": False}
        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                state["status"] = 413
                await self._problem(send, rid, self._too_large_problem(), scope, close=True)
                return
            ctype = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            has_body = (declared is not None and declared != b"0") or b"transfer-encoding" in headers
            if (has_body and ctype and not JSON_MEDIA_TYPES.match(ctype)
                    and ctype not in self.file_media_types.get(scope.get("path", ""), ())):
                state["status"] = 415
                await self._problem(
                    send, rid, Problem(415, "Send the request body as application/json."), scope, close=True
                )
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        state["too_large"] = True
                        raise _BodyTooLarge()
                return message

            async def send_wrapper(message: Message) -> None:
                if state["too_large"]:
                    # The app turned the overflow into some other answer (FastAPI makes it a 400);
                    # the caller gets the 413 from the ``except`` below instead.
                    return
                if message["type"] == "http.response.start":
                    state["status"] = message["status"]
                    state["started"] = True
                    hdrs = list(message.get("headers", []))
                    hdrs.append((b"api-version", API_VERSION.encode()))
                    hdrs.append((b"x-request-id", rid.encode("latin-1")))
                    message = {**message, "headers": hdrs}
                await send(message)

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except _BodyTooLarge:
                pass
            except Exception:
                if not state["too_large"]:
                    if not state["started"]:
                        # Answer here so that the 500 carries API-Version and X-Request-ID too; the
                        # exception goes on to Starlette, which logs it (problems._crash) and lets
                        # the server and test clients see it, but sends nothing more.
                        state["status"] = 500
                        await self._problem(
                            send, rid,
                            Problem(500, "The service failed to handle this request; it has been logged."),
                            scope,
                        )
                    state["crashed"] = True
                    raise
            if state["too_large"] and not state["started"]:
                state["status"] = 413
                await self._problem(send, rid, self._too_large_problem(), scope, close=True)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            metrics.observe_request(self.service, scope.get("method", "?"), path, int(state["status"]), elapsed)
            access_log.info(
                "request",
                extra={"method": scope.get("method", "?"), "route": path, "status": int(state["status"]),
                       "durationMs": round(elapsed * 1000, 2)},
            )
            if not state["crashed"]:
                # After a crash the id stays set (in this request's own context) so that
                # Starlette's logging of the exception (problems._crash) still carries it.
                request_id_var.reset(token)

    def _too_large_problem(self) -> Problem:
        return Problem(413, f"The request body is larger than the limit of {self.max_body} bytes.")

    async def _problem(self, send: Send, rid: str, problem: Problem, scope: Scope, *, close: bool = False) -> None:
        """Send ``problem`` as the whole response, with the headers every response carries."""
        body = json.dumps(problem.document(scope.get("path"))).encode()
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"api-version", API_VERSION.encode()),
            (b"x-request-id", rid.encode("latin-1")),
        ]
        if close:
            # The unread body would otherwise be parsed as the next request on this connection.
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": problem.status, "headers": headers})
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
    file_media_types: Mapping[str, frozenset[str]] | None = None,
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
        # Served below, behind the registry check, instead of FastAPI's open route.
        openapi_url=None,
        # No trailing-slash aliases (NL API Design Rules): "/v1/health/" is a 404, not a redirect.
        redirect_slashes=False,
    )
    app.state.service_name = service
    install_problem_handlers(app)
    app.add_middleware(ServiceMiddleware, service=service, max_body=max_body,
                       file_media_types=file_media_types or {})

    ops = APIRouter(prefix="/v1", tags=["operations"])

    @ops.get("/health", summary="Liveness: the process answers", operation_id=f"{service}Health")
    async def health() -> dict[str, str]:
        """Answers 200 while the process serves requests; checks no dependency."""
        return {"status": "ok", "service": service}

    monitoring = Require(roles=("operator",), own_service=True)

    @ops.get("/ready", summary="Readiness: dependencies reachable (operator or the service itself)",
             operation_id=f"{service}Ready",
             responses={403: {"description": "Not an operator certificate nor the service's own (logged)",
                              "content": {PROBLEM_JSON: {}}},
                        503: {"description": "A dependency is down; named in detail",
                              "content": {PROBLEM_JSON: {}}}})
    async def ready(_party: Party = Depends(monitoring)) -> dict[str, Any]:
        """Answers 200 when the service's dependencies answer (its database takes a write), 503 with
        Retry-After otherwise."""
        checks: dict[str, Any] = await readiness(app) if readiness else {}
        if any(v != "ok" for v in checks.values()):
            raise Problem(503, "Not ready: " + ", ".join(k for k, v in checks.items() if v != "ok"),
                          headers={"Retry-After": "5"})
        return {"status": "ready", "service": service, "checks": checks}

    @ops.get("/metrics", summary="Prometheus metrics (no personal data)", operation_id=f"{service}Metrics",
             include_in_schema=False)
    async def prometheus(_party: Party = Depends(monitoring)) -> Any:
        # Counts of other providers' deliveries are not for providers or gemeenten: TTP monitoring only.
        return metrics.response()

    @ops.get("/openapi.json", summary="This API's OpenAPI document (registered parties only)",
             operation_id=f"{service}OpenApi", include_in_schema=False)
    async def openapi_document(_party: Party = Depends(require_registered())) -> JSONResponse:
        return JSONResponse(app.openapi())

    app.include_router(ops)
    _shape_openapi(app, service)
    return app


def _shape_openapi(app: FastAPI, service: str) -> None:
    """Serve (and export) the document shaped to the NL API Design Rules (``ttp.openapi_nl``)."""

    shaped: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        # FastAPI regenerates its document when routes were added since; shape each new one once.
        doc = FastAPI.openapi(app)
        if not shaped or shaped[-1] is not doc:
            shape_document(doc, production_url=f"https://{service}.outcome-ttp.example.nl/v1")
            shaped[:] = [doc]
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def _port(service: str) -> int:
    from ttp.settings import DEFAULT_PORTS

    return DEFAULT_PORTS.get(service, 8440)
