"""Every error is RFC 9457 problem+json with API-Version and a request id, and never a stack trace.

Against the live services (real uvicorn, real TLS): 404, 405, 413 (declared
body too large), 415, framework validation (400, never FastAPI's 422) and 403.
In process, through the same middleware: a body that only turns out too large
while streaming (chunked) and an unhandled crash, which cannot be provoked in a
correct live service.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tests.helpers.cluster import Cluster
from tests.interface.conftest import MAIN_CALLER, PARTY_FOR_ROLE, caller
from ttp.app_factory import API_VERSION, create_app
from ttp.logging_setup import request_id_var
from ttp.openapi_export import document_path
from ttp.tls import client_context

#: What a Python stack trace or an exception repr leaks; a parser's "at line 1 column 2" is fine.
TRACE_MARKERS = ("Traceback", 'File "', '.py", line', "site-packages", "Exception(", "Error(")
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$|^[0-9a-f-]{36}$")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is a problem document with ``status`` and carries the headers every response has."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:300]}"
    assert response.headers["content-type"].split(";")[0] == "application/problem+json", response.headers
    assert response.headers["api-version"] == API_VERSION
    assert REQUEST_ID.match(response.headers["x-request-id"])
    doc: dict[str, Any] = response.json()
    assert doc["status"] == status
    assert isinstance(doc["title"], str) and doc["title"]
    assert isinstance(doc["detail"], str) and doc["detail"]
    for marker in TRACE_MARKERS:
        assert marker not in response.text, f"{marker!r} in an error body: {response.text[:300]}"
    return doc


def body_operation(service: str) -> tuple[str, str] | None:
    """A (METHOD, path) of ``service`` that takes a JSON body and has no path parameters."""
    doc = json.loads(document_path(service).read_text(encoding="utf-8"))
    for path, item in doc["paths"].items():
        for method in ("post", "put", "patch"):
            if method in item and "requestBody" in item[method] and "{" not in path:
                return method.upper(), path
    for path, item in doc["paths"].items():
        for method in ("post", "put", "patch"):
            if method in item and "requestBody" in item[method]:
                return method.upper(), re.sub(r"\{[^}]+\}", "x", path)
    return None


def test_unknown_path_is_a_problem(service: str, live: Cluster) -> None:
    with live.client(MAIN_CALLER[service], service) as c:
        assert_problem(c.get("/no-such-resource"), 404)
        assert_problem(c.get("/health/"), 404)  # no trailing-slash aliases either


def test_wrong_method_is_a_problem(service: str, live: Cluster) -> None:
    with live.client(MAIN_CALLER[service], service) as c:
        response = c.delete("/health")
    assert_problem(response, 405)
    assert "GET" in response.headers.get("allow", "")


def test_405_allow_header_lists_every_documented_method(service: str, live: Cluster) -> None:
    """RFC 9110: Allow names all methods of the resource, also where each method is its own route."""
    doc = json.loads(document_path(service).read_text(encoding="utf-8"))
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")}
        probe = next(m for m in ("PATCH", "DELETE", "PUT", "POST") if m not in documented)
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        with live.client(MAIN_CALLER[service], service) as c:
            response = c.request(probe, concrete)
        assert_problem(response, 405)
        allow = {m.strip() for m in response.headers["allow"].split(",")}
        assert allow == documented, f"{probe} {path}: Allow {sorted(allow)}, documented {sorted(documented)}"


def _raw_exchange(cluster: Cluster, service: str, slug: str, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send a hand-made request head (no body) over mTLS; read the whole answer."""
    ctx = client_context(cluster.home / "pki", slug)
    port = int(cluster.env[f"TTP_{service.upper()}_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(head)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head_part, _, body = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def test_declared_body_over_the_limit_is_413(service: str, live: Cluster) -> None:
    op = body_operation(service) or ("POST", "/health")
    method, path = op
    head = (
        f"{method} /v1{path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {2**40}\r\n\r\n"
    ).encode()
    status, headers, body = _raw_exchange(live, service, caller(service, method, path), head)
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert headers["api-version"] == API_VERSION and REQUEST_ID.match(headers["x-request-id"])
    assert headers.get("connection") == "close"
    doc = json.loads(body)
    assert doc["status"] == 413 and doc["title"] and doc["detail"]


def test_unsupported_media_type_is_415(service: str, live: Cluster) -> None:
    op = body_operation(service)
    if op is None:
        pytest.skip(f"{service} has no operation with a request body")
    method, path = op
    with live.client(caller(service, method, path), service) as c:
        response = c.request(method, path, content=b"recordId=1", headers={"content-type": "text/plain"})
    assert_problem(response, 415)


def test_framework_validation_error_is_400_with_invalid_params(service: str, live: Cluster) -> None:
    op = body_operation(service)
    if op is None:
        pytest.skip(f"{service} has no operation with a request body")
    method, path = op
    with live.client(caller(service, method, path), service) as c:
        wrong_shape = c.request(method, path, json=["not", "an", "object"])
        not_json = c.request(method, path, content=b"{not json", headers={"content-type": "application/json"})
    doc = assert_problem(wrong_shape, 400)
    assert doc.get("invalidParams"), doc
    assert all({"name", "code", "reason"} <= set(p) for p in doc["invalidParams"])
    assert_problem(not_json, 400)


def test_query_validation_error_is_400(service: str, live: Cluster) -> None:
    """A GET whose integer query parameter gets text: 400 problem (FastAPI would say 422)."""
    doc = json.loads(document_path(service).read_text(encoding="utf-8"))
    for path, item in doc["paths"].items():
        op = item.get("get", {})
        ints = [p for p in op.get("parameters", []) if p["in"] == "query"
                and (p.get("schema", {}).get("type") == "integer"
                     or any(s.get("type") == "integer" for s in p.get("schema", {}).get("anyOf", [])))]
        if ints and "{" not in path:
            with live.client(caller(service, "GET", path), service) as c:
                response = c.get(path, params={ints[0]["name"]: "not-a-number"})
            problem = assert_problem(response, 400)
            assert any(ints[0]["name"] in p["name"] for p in problem.get("invalidParams", [])), problem
            return
    pytest.skip(f"{service} has no GET with an integer query parameter")


def test_a_party_without_the_role_gets_403(service: str, live: Cluster) -> None:
    op = body_operation(service)
    if op is None:
        pytest.skip(f"{service} has no operation with a request body")
    method, path = op
    allowed = caller(service, method, path)
    other = next(p for p in PARTY_FOR_ROLE.values() if p != allowed and not p.startswith(allowed.split("-")[0]))
    with live.client(other, service) as c:
        response = c.request(method, path, json={})
    assert response.status_code == 403, response.text  # the access check comes before the body
    assert_problem(response, 403)


def test_a_free_text_request_id_is_replaced_and_a_uuid_is_kept(live: Cluster) -> None:
    """A caller's X-Request-ID reaches our logs, so only an id that cannot carry personal data is kept."""
    with live.client("service-ingest", "pseudonymise") as c:
        replaced = c.get("/health", headers={"X-Request-ID": "bsn-111222333"})
        kept = c.get("/health", headers={"X-Request-ID": "0f8fad5b-d9cb-469f-a165-70867728950e"})
    assert replaced.headers["x-request-id"] != "bsn-111222333"
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    assert kept.headers["x-request-id"] == "0f8fad5b-d9cb-469f-a165-70867728950e"


# --- In process: the same middleware, for what a correct live service never does ---------------


class Item(BaseModel):
    name: str


def crash_app() -> TestClient:
    app = create_app("pseudonymise", title="probe", description="probe app", max_body=1024)
    router = APIRouter(prefix="/v1")

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret detail 111222333 must not leak")

    @router.post("/items")
    async def items(item: Item) -> dict[str, str]:
        return {"name": item.name}

    @router.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False, base_url="https://testserver")


def test_unhandled_crash_is_a_bare_500_problem_logged_under_its_request_id() -> None:
    seen: list[tuple[str, str]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.getMessage(), request_id_var.get()))

    handler = Capture()
    logging.getLogger("ttp.problems").addHandler(handler)
    try:
        rid = "0f8fad5b-d9cb-469f-a165-70867728950e"
        response = crash_app().get("/v1/crash", headers={"X-Request-ID": rid})
    finally:
        logging.getLogger("ttp.problems").removeHandler(handler)
    assert_problem(response, 500)
    assert response.headers["x-request-id"] == rid
    assert "111222333" not in response.text and "RuntimeError" not in response.text
    assert ("unhandled error", rid) in seen, seen


@pytest.mark.parametrize("path", ["/v1/items", "/v1/raw"])
def test_streamed_body_over_the_limit_is_413(path: str) -> None:
    """No Content-Length (chunked): the limit is found while reading, by a model route and a raw one."""

    def chunks() -> Any:
        for _ in range(8):
            yield b'{"name": "' + b"x" * 200 + b'"}'

    response = crash_app().post(path, content=chunks(), headers={"content-type": "application/json"})
    assert_problem(response, 413)


def test_small_streamed_body_is_accepted() -> None:
    """Control for the test above: the same route and encoding under the limit work."""

    def chunks() -> Any:
        yield b'{"name": '
        yield b'"ok"}'

    response = crash_app().post("/v1/items", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json() == {"name": "ok"}
