"""The portal app: pages for people, sign-in by OpenID Connect, calls to the services by relay.

Built apart from ``ttp.app_factory.create_app`` because that factory serves JSON APIs: it
answers every non-JSON body with 415 and every error as problem+json, while the portal takes
HTML forms and file uploads from browsers and answers with pages. What it shares with the
services it takes from the same modules: the request id, the JSON logs, the metrics.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.portal.pages import auditor, figures, provider, reports
from services.portal.pages.render import render
from services.portal.relay import ClientFor, PooledClients, Relay
from services.portal.session import Forbidden, SignInRequired, signed_in
from services.portal.settings import PortalConfig, PortalSettings
from services.portal.signin import make_oauth
from services.portal.signin import router as signin_router
from ttp import metrics
from ttp.logging_setup import request_id_var
from ttp.registry import Registry
from ttp.settings import Settings, get_settings

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("ttp.portal")
access_log = logging.getLogger("ttp.access")

#: Only our own files: no inline script, no CDN, no framing (clickjacking), no referrer leaks.
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self' "
     b"https:; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"x-frame-options", b"DENY"),
]
LANDING = {"provider": "/aanbieder", "gemeente": "/gemeente", "rijk": "/rijk", "auditor": "/auditor"}


class PortalMiddleware:
    """Request id, security headers, no caching of pages, metrics and the access log (no query strings)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = {"code": 500}
        static = scope.get("path", "").startswith("/static/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [*message.get("headers", []), *SECURITY_HEADERS, (b"x-request-id", rid.encode())]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or ("static" if static else "unmatched")
            elapsed = time.perf_counter() - started
            metrics.observe_request("portal", scope.get("method", "?"), route, status["code"], elapsed)
            access_log.info("request", extra={"method": scope.get("method", "?"), "route": route,
                                              "status": status["code"], "durationMs": round(elapsed * 1000, 2)})
            request_id_var.reset(token)


def create_app(settings: Settings | None = None, portal: PortalSettings | None = None,
               client_for: ClientFor | None = None) -> FastAPI:
    """The portal; ``client_for`` picks the HTTP client per service (default: pooled mTLS clients)."""
    config = PortalConfig(settings or get_settings(), portal or PortalSettings())
    pooled = None if client_for is not None else PooledClients(config.settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if pooled is not None:
            await pooled.aclose()

    app = FastAPI(title="Outcome TTP portaal", docs_url=None, redoc_url=None, openapi_url=None,
                  redirect_slashes=False, lifespan=lifespan)
    app.state.service_name = "portal"
    app.state.config = config
    app.state.registry = Registry.from_yaml(config.settings.registry)
    app.state.relay = Relay(client_for or pooled)  # type: ignore[arg-type]
    app.state.oauth = make_oauth(config)

    app.add_middleware(SessionMiddleware, secret_key=config.session_key(), session_cookie="ttp_portaal",
                       max_age=config.portal.session_max_age, same_site="lax", https_only=True)
    app.add_middleware(PortalMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, exc: SignInRequired) -> Response:
        if exc.reason:
            return render(request, "signin.html.j2", status=401, expired=True)
        return RedirectResponse("/", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "problem.html.j2", status=403, title="Geen toegang", detail=exc.detail)

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        try:
            person = signed_in(request)
        except SignInRequired as exc:
            return render(request, "signin.html.j2", expired=bool(exc.reason))
        return RedirectResponse(LANDING[person.role], status_code=303)

    @app.get("/v1/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "portal"}

    app.include_router(signin_router)
    app.include_router(provider.router)
    app.include_router(figures.router)
    app.include_router(auditor.router)
    app.include_router(reports.router)
    return app
