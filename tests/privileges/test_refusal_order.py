"""A wrong caller is refused before its body is read; a cross-party read is logged everywhere."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import Depends
from fastapi.routing import APIRoute

from services.ingest.receipts import save_receipt
from services.pseudonymise.models import PseudonymRequest
from tests.helpers.asgi import party_client
from tests.privileges.conftest import Cluster, oin
from tests.report.conftest import RecordingSink
from ttp.app_factory import create_app
from ttp.identity import require_service
from ttp.registry import Party, Registry

MALFORMED = b'{"identifiers": [{"kind": "bsn", "value": '  # cut off mid-value
ANNOTATIONS = "/v1/providers/98000001/reports/2026-H1/annotations"


def post_raw(cluster: Cluster, slug: str, service: str, method: str, path: str, body: bytes) -> Any:
    client = party_client(cluster.apps[service], cluster.pki, slug)
    return client.request(method, path, content=body, headers={"content-type": "application/json"})


def test_a_wrong_caller_with_a_broken_body_gets_403_and_is_logged(cluster: Cluster) -> None:
    for service, method, path, slug in (
        ("pseudonymise", "POST", "/v1/pseudonyms", "service-report"),
        ("pseudonymise", "POST", "/v1/pseudonyms", "provider-98000001"),
        ("report", "PUT", ANNOTATIONS, "provider-98000002"),
        ("report", "PUT", ANNOTATIONS, "gemeente-GM0363"),
    ):
        for body in (MALFORMED, b'{"unexpected": true}'):
            before = len(cluster.refusals(service))
            res = post_raw(cluster, slug, service, method, path, body)
            assert res.status_code == 403, (service, slug, res.text)
            assert [r.actorOin for r in cluster.refusals(service)[before:]] == [oin(cluster.pki, slug)]
    # the right caller still gets a clear 400 for the same bodies
    res = post_raw(cluster, "service-ingest", "pseudonymise", "POST", "/v1/pseudonyms", b'{"unexpected": true}')
    assert res.status_code == 400 and res.json()["invalidParams"]
    res = post_raw(cluster, "provider-98000001", "report", "PUT", ANNOTATIONS, MALFORMED)
    assert res.status_code == 400


def test_no_route_lets_the_framework_parse_its_body_before_the_access_check(cluster: Cluster) -> None:
    for service, app in cluster.apps.items():
        for route in app.routes:
            if isinstance(route, APIRoute):
                assert not route.dependant.body_params, f"{service} {route.path} declares its body as a parameter"


def test_negative_control_a_body_parameter_answers_a_wrong_caller_400(dev_pki: Path) -> None:
    """The old shape of POST /v1/pseudonyms: the body parameter is parsed first, so no 403, no refusal."""
    app = create_app("pseudonymise", title="old shape", description="a route with a body parameter")
    app.state.registry = Registry.from_yaml(dev_pki / "parties.yaml")
    sink = RecordingSink()
    app.state.audit_sink = sink

    @app.post("/v1/pseudonyms")
    async def old(body: PseudonymRequest, _party: Party = Depends(require_service("ingest"))) -> dict[str, int]:
        return {"n": len(body.identifiers)}

    res = party_client(app, dev_pki, "service-report").post(
        "/v1/pseudonyms", content=MALFORMED, headers={"content-type": "application/json"})
    assert res.status_code == 400
    assert sink.soon == []


def test_another_providers_receipt_answers_as_a_missing_one_but_is_logged(cluster: Cluster) -> None:
    engine = cluster.apps["ingest"].state.engine
    save_receipt(engine, "98000001", "HZN-2026-H1-0007", {"batchId": "HZN-2026-H1-0007",
                                                          "receivedAt": dt.datetime.now(dt.UTC).isoformat()})
    before = len(cluster.refusals("ingest"))
    foreign = cluster.call("provider-98000002", "ingest", "GET", "/v1/batches/HZN-2026-H1-0007")
    unknown = cluster.call("provider-98000002", "ingest", "GET", "/v1/batches/HZN-2026-H1-9999")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["detail"] == unknown.json()["detail"]  # existence is not revealed
    logged = cluster.refusals("ingest")[before:]
    assert [r.actorOin for r in logged] == [oin(cluster.pki, "provider-98000002")]  # only the cross-party one
    assert "another provider's batch" in logged[0].subject["reason"]

