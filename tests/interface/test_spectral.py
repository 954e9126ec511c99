"""The OpenAPI documents pass our NL API Design Rules ruleset with zero errors, and the ruleset bites.

Spectral (``@stoplight/spectral-cli``, pinned in ``package.json``) is installed
into ``node_modules`` by ``scripts/setup-tools.sh`` (``npm ci``). The ruleset is
``openapi/.spectral.yaml``. Passing a ruleset proves little if its rules never
fire, so a second test lints a copy of a real document broken in one place per
rule and requires every rule to report it.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ttp.openapi_export import OPENAPI_DIR, REPO_ROOT, services_with_app

SPECTRAL = REPO_ROOT / "node_modules" / ".bin" / "spectral"
RULESET = OPENAPI_DIR / ".spectral.yaml"
ERROR = 0  # Spectral's severity code for errors


def lint(*documents: Path) -> list[dict[str, Any]]:
    """Run Spectral on ``documents``; returns its findings (JSON output)."""
    if not SPECTRAL.exists():
        pytest.fail(f"{SPECTRAL} is missing: run 'bash scripts/setup-tools.sh' (npm ci) first")
    proc = subprocess.run(
        [str(SPECTRAL), "lint", "--ruleset", str(RULESET), "--format", "json", "--quiet",
         "--fail-severity", "error", *map(str, documents)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )
    # Exit 1 means findings at the fail severity; anything else (2: bad ruleset, crash) is a tool failure.
    assert proc.returncode in (0, 1), f"spectral failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout[:2000]}"
    findings: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    return findings


def describe(findings: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{Path(f['source']).name}:{f['range']['start']['line'] + 1} {f['code']} {f['message']} "
        f"({'.'.join(map(str, f['path']))})"
        for f in findings
    )


def test_committed_documents_have_no_lint_errors() -> None:
    documents = [OPENAPI_DIR / f"{s}.json" for s in services_with_app()]
    missing = [d for d in documents if not d.exists()]
    assert not missing, f"not exported: {missing}; run 'ttp openapi export'"
    errors = [f for f in lint(*documents) if f["severity"] == ERROR]
    assert not errors, "Spectral errors:\n" + describe(errors)


def broken_document() -> tuple[dict[str, Any], set[str]]:
    """A real document with one violation per rule; returns it and the rules that must fire."""
    source = next(OPENAPI_DIR / f"{s}.json" for s in services_with_app() if (OPENAPI_DIR / f"{s}.json").exists())
    doc: dict[str, Any] = copy.deepcopy(json.loads(source.read_text(encoding="utf-8")))
    doc["paths"]["/health"]["get"]["responses"]["200"].pop("description")  # invalid OpenAPI
    doc["info"]["version"] = "v1"
    del doc["info"]["contact"]["email"]
    doc["servers"] = [{"url": "http://ttp.example.nl/api"}]
    doc["components"]["securitySchemes"] = {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Key"}}
    doc["security"] = [{"apiKey": []}]
    for item in doc["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "security" in op:
                op["security"] = [{"apiKey": []}]
    problem = {"$ref": "#/components/schemas/ProblemDetails"}
    doc["paths"]["/Bad_Segment/{id}/"] = {
        "get": {
            "operationId": "brokenGet",
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "page_size", "in": "query", "schema": {"type": "integer"}},
            ],
            "responses": {
                "200": {"description": "no API-Version header",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/bad_name"}}}},
                "404": {"description": "plain JSON error", "content": {"application/json": {"schema": problem}}},
                "500": {"description": "problem without detail", "content": {"application/problem+json": {
                    "schema": {"type": "object", "required": ["status", "title"],
                               "properties": {"status": {"type": "integer"}, "title": {"type": "string"}}}}}},
            },
        },
        "post": {
            "operationId": "brokenPost",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"204": {"description": "no 400, no example, no header"}},
        },
        "x-copy": {"description": "not an HTTP method"},
    }
    doc["components"]["schemas"]["bad_name"] = {
        "type": "object",
        "properties": {
            "birthDate": {"type": "string"},
            "endDate": {"type": "string", "format": "date-time"},
            "periodStart": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}$"},
        },
    }
    must_fire = {
        "oas3-schema", "nlgov:semver", "nlgov:info-contact-fields-exist",
        "nlgov:include-major-version-in-uri", "nlgov:servers-use-https", "nlgov:missing-version-header",
        "nlgov:paths-no-trailing-slash", "nlgov:paths-kebab-case", "nlgov:query-keys-camel-case",
        "ttp:schema-names-upper-camel-case", "nlgov:use-problem-schema", "nlgov:problem-schema-members",
        "nlgov:problem-invalid-input", "nlgov:specify-format-for-date", "nlgov:http-methods",
        "ttp:request-body-example", "ttp:mutual-tls",
    }
    return doc, must_fire


def test_every_rule_fires_on_a_broken_document(tmp_path: Path) -> None:
    doc, must_fire = broken_document()
    target = tmp_path / "broken.json"
    target.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    # OpenAPI 2 cannot be in the same document: Spectral would then skip every OpenAPI 3 rule.
    swagger = tmp_path / "swagger.json"
    swagger.write_text(json.dumps({**doc, "openapi": "2.0"}), encoding="utf-8")
    findings = lint(target, swagger)
    fired = {f["code"] for f in findings if f["severity"] == ERROR}
    assert not must_fire - fired, f"rules that did not fire: {sorted(must_fire - fired)}\n{describe(findings)}"
    assert {f["code"] for f in findings if Path(f["source"]).name == "swagger.json"} >= {"nlgov:openapi3"}
    findings = [f for f in findings if Path(f["source"]).name == "broken.json"]
    date_messages = [f["message"] for f in findings if f["code"] == "nlgov:specify-format-for-date"]
    assert len(date_messages) == 3, date_messages  # birthDate, endDate (date-time), periodStart (pattern)
    invalid_input = {tuple(f["path"][:3]) for f in findings if f["code"] == "nlgov:problem-invalid-input"}
    assert {("paths", "/Bad_Segment/{id}/", "get"), ("paths", "/Bad_Segment/{id}/", "post")} <= invalid_input
