"""The portal acts for a signed-in party with ``Ttp-On-Behalf-Of``; nobody else may.

Uses the portal's certificate from the dev PKI (``ttp pki init`` issues it; the portal
service itself comes in a later issue).
"""

from __future__ import annotations

import orjson

from tests.privileges.conftest import Cluster, oin
from ttp.identity import ON_BEHALF_OF

ANNOTATIONS = "/v1/providers/98000001/reports/2026-H1/annotations"
OTHERS_ANNOTATIONS = "/v1/providers/98000002/reports/2026-H1/annotations"


def on_behalf_of(cluster: Cluster, slug: str) -> dict[str, str]:
    return {ON_BEHALF_OF: oin(cluster.pki, slug)}


def test_the_portal_acts_for_a_provider_and_every_entry_says_it_relayed(cluster: Cluster) -> None:
    portal = oin(cluster.pki, "service-portal")
    provider = oin(cluster.pki, "provider-98000001")
    as_provider = on_behalf_of(cluster, "provider-98000001")
    res = cluster.call("service-portal", "report", "GET", ANNOTATIONS, headers=as_provider)
    assert res.status_code == 200, res.text
    before = len(cluster.events("report"))
    body = {"annotations": [{"indicator": "uitval", "story": "Via het portaal geschreven."}]}
    res = cluster.call("service-portal", "report", "PUT", ANNOTATIONS, json=body, headers=as_provider)
    assert res.status_code == 200, res.text
    res = cluster.call("service-portal", "report", "GET", "/v1/providers/98000001/reports/2026-H1/intern",
                       headers=as_provider)
    assert res.status_code == 200, res.text
    new = cluster.events("report")[before:]
    assert [e.kind for e in new] == ["annotation-changed", "report-read"]
    assert all(e.actorOin == provider and e.relayedBy == portal for e in new)
    # the relayed party is held to its own rights: another provider's annotations stay closed
    before = len(cluster.refusals("report"))
    res = cluster.call("service-portal", "report", "GET", OTHERS_ANNOTATIONS, headers=as_provider)
    assert res.status_code == 403
    [refusal] = cluster.refusals("report")[before:]
    assert refusal.actorOin == provider and refusal.relayedBy == portal


def test_the_log_keeps_relayed_by_and_accepts_it_only_from_a_relaying_service(cluster: Cluster) -> None:
    portal = oin(cluster.pki, "service-portal")
    event = {"kind": "report-read", "actorOin": oin(cluster.pki, "provider-98000001"),
             "subject": {"provider": "98000001", "period": "2026-H1"}}
    store = cluster.apps["audit"].state.store
    size = store.head().tree_size
    res = cluster.call("service-report", "audit", "POST", "/v1/audit/entries",
                       json={"events": [{**event, "relayedBy": portal}]})
    assert res.status_code == 201, res.text
    entry = orjson.loads(store.entries(start=size, end=size + 1)[0].body)
    assert entry["relayedBy"] == portal and entry["actorOin"] == event["actorOin"]
    # ingest cannot relay, so no entry may claim it did
    res = cluster.call("service-report", "audit", "POST", "/v1/audit/entries",
                       json={"events": [{**event, "relayedBy": oin(cluster.pki, "service-ingest")}]})
    assert res.status_code == 403 and "relayedBy" in res.json()["detail"]
    # the portal relays for people's organisations, never for a TTP service
    res = cluster.call("service-report", "audit", "POST", "/v1/audit/entries", json={"events": [
        {**event, "actorOin": oin(cluster.pki, "service-aggregate"), "relayedBy": portal}]})
    assert res.status_code == 403


def test_the_portal_reads_the_log_for_an_auditor(cluster: Cluster) -> None:
    res = cluster.call("service-portal", "audit", "GET", "/v1/audit/checkpoint",
                       headers=on_behalf_of(cluster, "auditor"))
    assert res.status_code == 200 and res.text.count("\n") >= 3
    # without the header the portal is just a service, and services read no log
    assert cluster.call("service-portal", "audit", "GET", "/v1/audit/checkpoint").status_code == 403


def test_nobody_but_the_portal_may_send_the_header(cluster: Cluster) -> None:
    as_provider = on_behalf_of(cluster, "provider-98000001")
    for slug in ("service-ingest", "service-report", "service-aggregate", "provider-98000002", "gemeente-GM0363",
                 "auditor", "operator"):
        before = len(cluster.refusals("report"))
        res = cluster.call(slug, "report", "GET", ANNOTATIONS, headers=as_provider)
        assert res.status_code == 403, slug
        assert "relaying" in res.json()["detail"]
        [refusal] = cluster.refusals("report")[before:]
        assert refusal.actorOin == oin(cluster.pki, slug)  # logged under the sender, not the party it named


def test_the_portal_may_not_act_for_a_service_or_an_unknown_party(cluster: Cluster) -> None:
    for target, expected in ((on_behalf_of(cluster, "service-ingest"), 403),
                             ({ON_BEHALF_OF: "00000099990000000077"}, 403),
                             ({ON_BEHALF_OF: "not-an-oin"}, 400)):
        before = len(cluster.refusals("pseudonymise"))
        res = cluster.call("service-portal", "pseudonymise", "POST", "/v1/pseudonyms",
                           json={"identifiers": [{"kind": "bsn", "value": "111222333"}]}, headers=target)
        assert res.status_code == expected, (target, res.text)
        assert res.headers["content-type"] == "application/problem+json"
        logged = cluster.refusals("pseudonymise")[before:]
        assert [r.actorOin for r in logged] == ([oin(cluster.pki, "service-portal")] if expected == 403 else [])


def test_every_entry_a_route_writes_for_its_caller_carries_relayed_by() -> None:
    """Each place a service logs a party's action names the relay too (ingest, aggregate, report)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "services"
    places = [(path, line) for path in root.rglob("*.py") for line in path.read_text().splitlines()
              if "actorOin=party.oin" in line]
    assert len(places) >= 9  # record, rejection, batch, withdrawal, feed read, report read, share x2, annotation
    missing = [f"{path.relative_to(root)}: {line.strip()}" for path, line in places
               if "relayedBy=party.relayed_by" not in line]
    assert not missing, missing
