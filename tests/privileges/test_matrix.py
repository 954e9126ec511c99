"""Least privilege: every internal endpoint, called with every certificate there is.

The table below is written from the issue (pseudonyms: ingest only; trajectory writes and
withdrawals: ingest only; figures for reports: report only; ...), not read from the code, and
a second test proves it covers every internal route the apps have, so an endpoint added later
cannot escape the matrix.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from tests.privileges.conftest import UNREGISTERED, Cluster, oin
from ttp.identity import Require
from ttp.settings import SERVICES

PROBLEM = "application/problem+json"
SERVICE_SLUGS = [f"service-{s}" for s in (*SERVICES, "portal")]
#: Every kind of certificate: each TTP service's, each party role's, and one the registry does not know.
CALLERS = [*SERVICE_SLUGS, "provider-98000001", "gemeente-GM0363", "rijk", "auditor", "operator", UNREGISTERED]

PSEUDONYMS = {"identifiers": [{"kind": "bsn", "value": "111222333"}]}
SNAPSHOT = "/v1/providers/98000001/reports/2026-H1/deelbaar/snapshots/" + "0" * 64


def refusal_append(cluster: Cluster, slug: str) -> dict[str, Any]:
    """A batch every producing service may append: one refusal it observed."""
    return {"events": [{"kind": "refusal", "actorOin": oin(cluster.pki, "rijk"),
                        "subject": {"service": slug.removeprefix("service-"), "reason": "matrix"}}]}


#: (service, method, path, body, the only callers admitted). A body of None is sent as no body.
INTERNAL: list[tuple[str, str, str, Any, set[str]]] = [
    ("pseudonymise", "POST", "/v1/pseudonyms", PSEUDONYMS, {"service-ingest"}),
    ("aggregate", "POST", "/v1/trajectories", {}, {"service-ingest"}),
    ("aggregate", "POST", "/v1/trajectory-batches/98000001/b-1/commit", {}, {"service-ingest"}),
    ("aggregate", "POST", "/v1/consent-withdrawals", {}, {"service-ingest"}),
    ("aggregate", "POST", "/v1/consent-withdrawals/98000001/w-1/commit", {}, {"service-ingest"}),
    ("aggregate", "GET", "/v1/providers/98000001/outcomes?period=2026-H1&variant=intern", None,
     {"service-report"}),
    ("aggregate", "GET", "/v1/national/outcomes?period=2026-H1", None, {"service-report"}),
    ("report", "GET", "/v1/shares", None, {"service-aggregate"}),
    ("report", "GET", SNAPSHOT, None, {"service-aggregate"}),
    ("audit", "POST", "/v1/audit/entries", "refusal",
     {"service-ingest", "service-pseudonymise", "service-aggregate", "service-report", "service-portal"}),
]
for _service in SERVICES:
    INTERNAL.append((_service, "GET", "/v1/ready", None, {"operator", f"service-{_service}"}))
    INTERNAL.append((_service, "GET", "/v1/metrics", None, {"operator", f"service-{_service}"}))
    INTERNAL.append((_service, "GET", "/v1/openapi.json", None, set(CALLERS) - {UNREGISTERED}))


def _id(case: tuple[str, str, str, Any, set[str]]) -> str:
    return f"{case[0]}:{case[1]}:{case[2].split('?')[0]}"


@pytest.mark.parametrize("case", INTERNAL, ids=_id)
def test_each_internal_endpoint_admits_exactly_the_services_that_need_it(
    cluster: Cluster, case: tuple[str, str, str, Any, set[str]]
) -> None:
    service, method, path, body, admitted = case
    for slug in CALLERS:
        before = len(cluster.refusals(service))
        json = refusal_append(cluster, slug) if body == "refusal" else body
        res = cluster.call(slug, service, method, path, json=json)
        refusals = cluster.refusals(service)[before:]
        if slug in admitted:
            assert res.status_code != 403, (slug, res.text)
            assert refusals == [], (slug, [r.subject for r in refusals])
        else:
            assert res.status_code == 403, (slug, res.status_code, res.text)
            assert res.headers["content-type"] == PROBLEM
            assert res.json()["status"] == 403 and res.json()["title"] == "Forbidden"
            assert [r.actorOin for r in refusals] == [oin(cluster.pki, slug)], slug
            assert refusals[0].subject["service"] == service


def test_the_right_caller_is_served(cluster: Cluster) -> None:
    """Not merely 'not refused': the admitted caller gets the answer."""
    res = cluster.call("service-ingest", "pseudonymise", "POST", "/v1/pseudonyms", json=PSEUDONYMS)
    assert res.status_code == 200 and len(res.json()["pseudonyms"]) == 1
    res = cluster.call("service-report", "audit", "POST", "/v1/audit/entries",
                       json=refusal_append(cluster, "service-report"))
    assert res.status_code == 201 and res.json()["appended"] == 1
    res = cluster.call("service-aggregate", "report", "GET", "/v1/shares")
    assert res.status_code == 200 and res.json() == {"shares": []}
    res = cluster.call("operator", "aggregate", "GET", "/v1/ready")
    assert res.status_code == 200 and res.json()["checks"] == {"database": "ok"}
    res = cluster.call("auditor", "pseudonymise", "GET", "/v1/openapi.json")
    assert res.status_code == 200 and "/pseudonyms" in res.json()["paths"]


def test_only_aggregate_of_the_services_reads_a_shareable_report(cluster: Cluster) -> None:
    """The report read admits providers, gemeenten and aggregate's disclosure check, no other service."""
    path = "/v1/providers/98000001/reports/2026-H1/deelbaar"
    for slug in SERVICE_SLUGS:
        if slug == "service-aggregate":
            continue
        before = len(cluster.refusals("report"))
        res = cluster.call(slug, "report", "GET", path)
        assert res.status_code == 403, slug
        assert [r.actorOin for r in cluster.refusals("report")[before:]] == [oin(cluster.pki, slug)]
    assert cluster.call("provider-98000001", "report", "GET", path).status_code == 200


def test_the_matrix_covers_every_route_a_ttp_service_may_call(cluster: Cluster) -> None:
    """Every route that admits a TTP service (or only operators) is in the table above."""
    listed = {(s, m, p.split("?")[0]) for s, m, p, _, _ in INTERNAL}
    for service, app in cluster.apps.items():
        for route in app.routes:
            if not isinstance(route, APIRoute):
                continue
            requires = [d.call for d in route.dependant.dependencies if isinstance(d.call, Require)]
            if route.path == "/v1/health":
                assert not requires  # liveness says nothing but "up": any certificate the CA signed
                continue
            assert requires, f"{service} {route.path} has no access dependency"
            guard = requires[0]
            internal = (guard.services or guard.own_service or guard.registered) and not guard.roles
            if not internal:
                continue
            for method in route.methods:
                shaped = {(s, m, p) for s, m, p in listed if s == service and m == method
                          and _matches(route, p)}
                assert shaped, f"{service} {method} {route.path} is not in the matrix"


def _matches(route: APIRoute, path: str) -> bool:
    match, _ = route.matches({"type": "http", "path": path, "method": "GET", "root_path": ""})
    return match.name != "NONE"
