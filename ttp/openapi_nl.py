"""Shape a service's generated OpenAPI document to the NL API Design Rules.

FastAPI writes a correct but generic document. The rules our documents are
linted against (``openapi/.spectral.yaml``) ask for things no route should
have to repeat, so they are added here, once, for every service:

- the major version lives in the server URL (``.../v1``), so the ``/v1``
  prefix of the routes is taken off the paths;
- every 2xx/3xx response declares the ``API-Version`` header (and every
  response the ``X-Request-ID`` header), because the service middleware sends
  them on every response;
- every error is ``application/problem+json`` (RFC 9457) with the
  ``ProblemDetails`` schema; FastAPI's 422 ``HTTPValidationError`` is replaced
  by the 400 our handlers actually answer with;
- the responses the framework and middleware produce for any operation are
  documented: 400 where there is input, 403 (identity), 404 where there are
  path parameters, 413 and 415 where there is a body, 500 and 503;
- the mutual-TLS security scheme, required by every operation.

The function is pure (document in, same document out, changed in place) and
idempotent, so the document served at ``/v1/openapi.json``, the committed
``openapi/<service>.json`` and the tests all see the same thing.
"""

from __future__ import annotations

from typing import Any

from ttp.problems import InvalidParam, ProblemDetails

API_PREFIX = "/v1"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/ProblemDetails"
SECURITY_SCHEME = "mTLS"
SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

#: Responses any operation may give because of the framework, the middleware or identity.
ERROR_DESCRIPTIONS: dict[str, str] = {
    "400": "The request is not valid (parameters, body or JSON); see invalidParams. Nothing was processed.",
    "403": "The client certificate does not identify a party that may do this; the refusal is logged.",
    "404": "No resource at this path for the caller.",
    "413": "The request body is larger than this service accepts.",
    "415": "The request body is not application/json.",
    "500": "The service failed to handle the request; the failure is logged (no details are returned).",
    "503": "The service or one of its dependencies is temporarily unavailable; retry after Retry-After.",
}

#: Tag of the operational endpoints (health, readiness) that identify no caller.
OPERATIONS_TAG = "operations"
TAG_DESCRIPTIONS = {OPERATIONS_TAG: "Liveness and readiness, for the platform's health checks."}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {
            "API-Version": {"$ref": "#/components/headers/API-Version"},
            "X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"},
        },
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def _is_fastapi_validation_error(response: dict[str, Any]) -> bool:
    """FastAPI's automatic 422 (which our handlers never send: they answer 400)."""
    content = response.get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _components(doc: dict[str, Any], api_version: str) -> None:
    comps = doc.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    problem = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    problem.pop("$defs", None)
    problem["description"] = (
        "RFC 9457 problem details. Every error of this API has this shape, with the media type "
        "application/problem+json. No submitted value is ever repeated in it."
    )
    problem["examples"] = [
        {
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": "The request is not valid; see invalidParams.",
            "instance": "/v1/example",
            "invalidParams": [
                {"name": "/body/records/0/endDate", "code": "date_from_datetime_parsing",
                 "reason": "Input should be a valid date"}
            ],
        }
    ]
    schemas["ProblemDetails"] = problem
    schemas["InvalidParam"] = InvalidParam.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    headers = comps.setdefault("headers", {})
    headers["API-Version"] = {
        "description": "The full version (semver) of the API that answered (NL API Design Rules).",
        "required": True,
        "schema": {"type": "string", "pattern": SEMVER, "examples": [api_version]},
    }
    headers["X-Request-ID"] = {
        "description": "Id of this request, carried on to the other TTP services and into their logs. "
        "A caller may send its own (a UUID or 32 hex digits); otherwise one is made.",
        "required": True,
        "schema": {"type": "string", "maxLength": 64},
    }
    comps.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "mutualTLS",
        "description": "Every port requires a client certificate (PKIoverheid in production, the TTP "
        "development CA otherwise). The caller is the organisation whose OIN is in the certificate "
        "subject's serialNumber, looked up in the party registry.",
    }


def _strip_prefix(doc: dict[str, Any]) -> None:
    paths: dict[str, Any] = doc.get("paths", {})
    doc["paths"] = {
        (path[len(API_PREFIX):] or "/") if path.startswith(API_PREFIX + "/") else path: item
        for path, item in paths.items()
    }


def _shape_operation(method: str, op: dict[str, Any], path_params: list[dict[str, Any]]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    if "422" in responses and _is_fastapi_validation_error(responses["422"]):
        del responses["422"]
    params = [*path_params, *op.get("parameters", [])]
    has_body = "requestBody" in op
    wanted: list[str] = []
    if method in ("post", "put", "patch") or has_body or params:
        wanted.append("400")
    if OPERATIONS_TAG not in op.get("tags", []):
        wanted.append("403")
    if any(p.get("in") == "path" for p in params):
        wanted.append("404")
    if has_body:
        wanted += ["413", "415"]
    wanted += ["500", "503"]
    for code in wanted:
        responses.setdefault(code, _problem_response(ERROR_DESCRIPTIONS[code]))
    for code, response in responses.items():
        if "$ref" in response:
            continue
        headers = response.setdefault("headers", {})
        headers.setdefault("API-Version", {"$ref": "#/components/headers/API-Version"})
        headers.setdefault("X-Request-ID", {"$ref": "#/components/headers/X-Request-ID"})
        if code[0] in "45":
            # Whatever a route declared for an error, the body is a problem document.
            content = response.get("content") or {}
            response["content"] = {PROBLEM_JSON: {**content.get(PROBLEM_JSON, {}), "schema": {"$ref": PROBLEM_REF}}}
    op["responses"] = dict(sorted(responses.items()))
    op["security"] = [{SECURITY_SCHEME: []}]


def _declare_tags(doc: dict[str, Any]) -> None:
    """List every tag the operations use at the top level, as OpenAPI expects."""
    declared = {t["name"] for t in doc.get("tags", [])}
    tags = list(doc.get("tags", []))
    for item in doc.get("paths", {}).values():
        for method in HTTP_METHODS:
            for tag in item.get(method, {}).get("tags", []):
                if tag not in declared:
                    declared.add(tag)
                    tags.append({"name": tag, "description": TAG_DESCRIPTIONS.get(tag, f"Operations on {tag}.")})
    if tags:
        doc["tags"] = tags


def shape_document(doc: dict[str, Any], *, production_url: str | None = None) -> dict[str, Any]:
    """Apply the NL API Design Rules conventions to ``doc`` (in place) and return it."""
    api_version = str(doc.get("info", {}).get("version", "1.0.0"))
    _strip_prefix(doc)
    _components(doc, api_version)
    for item in doc.get("paths", {}).values():
        path_params = item.get("parameters", [])
        for method in HTTP_METHODS:
            if method in item:
                _shape_operation(method, item[method], path_params)
    doc["security"] = [{SECURITY_SCHEME: []}]
    _declare_tags(doc)
    if production_url and not any(s.get("url") == production_url for s in doc.get("servers", [])):
        doc["servers"] = [{"url": production_url, "description": "production"}, *doc.get("servers", [])]
    return doc
