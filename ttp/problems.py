"""RFC 9457 problem details, the only error format any TTP service answers with.

Every error, including the framework's own 404/405/422 and unexpected crashes,
leaves as ``application/problem+json`` with ``status``, ``title`` and ``detail``;
validation errors add ``invalidParams`` (NL API Design Rules). No stack trace and
no submitted value is ever echoed, so an error cannot leak a BSN.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ttp.request_scope import route_template

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("ttp.problems")

TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class InvalidParam(BaseModel):
    """One thing wrong with the request, located by name (a JSON pointer for bodies)."""

    name: str = Field(description="JSON pointer or parameter name of the offending value")
    code: str = Field(description="Stable machine-readable reason code")
    reason: str = Field(description="Human-readable explanation; never repeats the submitted value")
    location: str | None = Field(
        default=None, description="Where in a delivered CSV/XLSX file, e.g. \"rij 17, kolom 'Geboortedatum'\""
    )


class ProblemDetails(BaseModel):
    """RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    invalidParams: list[InvalidParam] | None = None  # noqa: N815 - NL API field name


class Problem(Exception):
    """Raise anywhere to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        invalid_params: list[InvalidParam] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.type = type_
        self.invalid_params = invalid_params
        self.headers = headers or {}

    def document(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        if self.invalid_params is not None:
            doc["invalidParams"] = [p.model_dump(exclude_none=True) for p in self.invalid_params]
        return doc


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    """A JSONResponse carrying the problem with the right media type."""
    return JSONResponse(
        problem.document(instance), status_code=problem.status, media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    """Turn a pydantic error location into a JSON pointer (RFC 6901)."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return "/" + "/".join(parts) if parts else ""


def pydantic_invalid_params(errors: list[Any], *, strip_prefix: int = 0) -> list[InvalidParam]:
    """Map pydantic errors to invalidParams without echoing the input value."""
    out: list[InvalidParam] = []
    for err in errors:
        loc = list(err.get("loc", ()))[strip_prefix:]
        out.append(
            InvalidParam(name=pointer(loc), code=str(err.get("type", "invalid")), reason=str(err.get("msg", "invalid")))
        )
    return out


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route offers on ``path``, for the ``Allow`` header of a 405.

    Starlette answers 405 from the first route whose path matches, so its ``Allow``
    lists only that route's methods when a path has a route per method (GET and PUT
    of one resource). RFC 9110 wants all of them.
    """
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "_allow_table", None)
    if table is None:
        table = []
        for ctx in iter_route_contexts(app.routes):
            if ctx.path and ctx.methods:
                regex, _, _ = compile_path(ctx.path)
                table.append((regex, {m.upper() for m in ctx.methods}))
        app.state._allow_table = table
    methods: set[str] = set()
    for regex, route_methods in table:
        if regex.match(path):
            methods |= route_methods
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error path of the app to problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No resource at this path."
        if exc.status_code == 405 and detail == "Method Not Allowed":
            detail = f"Method {request.method} is not allowed on this path."
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        return problem_response(Problem(exc.status_code, detail, headers=headers), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        params = pydantic_invalid_params(list(exc.errors()))
        return problem_response(
            Problem(400, "The request is not valid; see invalidParams.", invalid_params=params),
            request.url.path,
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # A failing or full database is an outage, not a bug in the request: ask for a resend.
        log.error("database error", extra={"error_type": type(exc.orig).__name__,
                                           "route": route_template(request.scope)})
        return problem_response(
            Problem(503, "The service's database is unavailable; nothing was stored. Try again later.",
                    headers={"Retry-After": "5"}),
            request.url.path,
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", extra={"error_type": type(exc).__name__, "route": route_template(request.scope)})
        return problem_response(
            Problem(500, "The service failed to handle this request; it has been logged."),
            request.url.path,
        )
