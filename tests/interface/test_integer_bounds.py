"""No integer a caller sends can overflow the database: every integer parameter is bounded, and beyond is 400.

Schemathesis found the audit API answering 500 to ``treeSize=9223372036854775808``
and ``start=9223372036854775808`` (2**63, one past a 64-bit signed integer): the
value passed validation and crashed the SQLite driver. Now every integer query
or path parameter of the five services, and every integer in a request body,
declares its maximum in the OpenAPI document, and the live services answer one
past it with 400 problem+json naming the parameter.
"""

from __future__ import annotations

import json
from typing import Any

from tests.helpers.cluster import Cluster
from tests.interface.conftest import caller, require_app
from tests.interface.test_problem_json import assert_problem
from ttp.openapi_export import document_path
from ttp.settings import SERVICES

INT64_MAX = 2**63 - 1
#: The exact value schemathesis sent.
OVERFLOW = 9223372036854775808
METHODS = ("get", "put", "post", "delete", "patch")


def _integer_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The integer branch of a parameter schema (``int`` or ``int | None``), if it has one."""
    if schema.get("type") == "integer":
        return schema
    return next((s for s in schema.get("anyOf", []) if s.get("type") == "integer"), None)


def integer_parameters() -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    """(service, METHOD, path, parameter, its integer schema) for every integer query or path parameter."""
    found = []
    for service in SERVICES:
        doc = json.loads(document_path(service).read_text(encoding="utf-8"))
        for path, item in doc["paths"].items():
            for method in METHODS:
                for param in item.get(method, {}).get("parameters", []):
                    schema = _integer_schema(param.get("schema", {}))
                    if schema is not None and param["in"] in ("query", "path"):
                        found.append((service, method.upper(), path, param, schema))
    return found


def _body_integers(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        found = [(where, node)] if node.get("type") == "integer" else []
        for key, value in node.items():
            found += _body_integers(value, f"{where}/{key}")
        return found
    if isinstance(node, list):
        return [f for i, value in enumerate(node) for f in _body_integers(value, f"{where}/{i}")]
    return []


def request_body_integers() -> list[tuple[str, dict[str, Any]]]:
    """Every integer in a schema some operation takes as its request body (followed through $refs)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for service in SERVICES:
        doc = json.loads(document_path(service).read_text(encoding="utf-8"))
        schemas = doc.get("components", {}).get("schemas", {})
        todo = [json.dumps(op["requestBody"]) for item in doc["paths"].values()
                for method, op in item.items() if method in METHODS and "requestBody" in op]
        seen: set[str] = set()
        while todo:
            text = todo.pop()
            for name in schemas:
                if f'"#/components/schemas/{name}"' in text and name not in seen:
                    seen.add(name)
                    todo.append(json.dumps(schemas[name]))
        for name in sorted(seen):
            found += _body_integers(schemas[name], f"{service}:{name}")
    return found


def test_every_integer_parameter_declares_a_bound_a_database_can_hold() -> None:
    params = integer_parameters()
    named = {(service, p["name"]) for service, _m, _p, p, _s in params}
    assert {("audit", "treeSize"), ("audit", "start")} <= named  # the two schemathesis hit
    for service, method, path, param, schema in params:
        assert "maximum" in schema, f"{service} {method} {path}: {param['name']} has no maximum"
        assert schema["maximum"] <= INT64_MAX, f"{service} {method} {path}: {param['name']} {schema}"


def test_every_integer_in_a_request_body_declares_a_bound() -> None:
    body_ints = request_body_integers()
    assert any("keyVersion" in where for where, _ in body_ints)  # the search reaches nested models
    for where, schema in body_ints:
        if "enum" in schema:
            continue
        assert "maximum" in schema and schema["maximum"] <= INT64_MAX, f"{where}: {schema}"


def _minimal(param: dict[str, Any]) -> int:
    schema = _integer_schema(param.get("schema", {})) or {}
    return int(schema.get("minimum", 0))


def test_one_past_the_bound_is_a_400_naming_the_parameter(live: Cluster) -> None:
    """Each integer parameter at 2**63 and at its maximum + 1, the others at their smallest value."""
    tried = 0
    params_of_all = integer_parameters()
    for service, method, path, param, schema in params_of_all:
        require_app(service)
        doc = json.loads(document_path(service).read_text(encoding="utf-8"))
        others = [p for p in doc["paths"][path][method.lower()].get("parameters", [])
                  if p is not param and p.get("required") and p["in"] == "query"]
        for value in sorted({OVERFLOW, int(schema["maximum"]) + 1}):
            params = {p["name"]: _minimal(p) for p in others if _integer_schema(p.get("schema", {}))}
            params[param["name"]] = value
            with live.client(caller(service, method, path), service) as client:
                response = client.request(method, path, params=params)
            problem = assert_problem(response, 400)
            names = [p["name"] for p in problem.get("invalidParams", [])]
            assert any(param["name"] in n for n in names), (service, path, param["name"], value, problem)
            assert str(value) not in response.text  # the value is not echoed
            tried += 1
    assert tried >= len(params_of_all) >= 8, tried  # the audit API alone has eight integer parameters
