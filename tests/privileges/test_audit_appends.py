"""The audit log takes from each service only its own kinds of entry, naming an actor it acts for.

The attack of issue 15: the report service's certificate appends a ``record-accepted`` entry
that claims another provider as actor. Before, any ``service`` certificate could (201, in the
log); the negative control restores that flat role and shows the same request succeed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.privileges.conftest import Cluster, oin
from ttp import privileges
from ttp.audit_events import EVENT_KINDS

FORGED = {"provider": "98000002", "recordId": "R-FORGED-1", "batchId": "b-forged", "period": "2026-H1",
          "contentHash": "ab" * 32, "contentKeyVersion": 1, "legalBasis": "wettelijke-verplichting"}


def forged_append(cluster: Cluster) -> dict[str, Any]:
    return {"events": [{"kind": "record-accepted", "actorOin": oin(cluster.pki, "provider-98000002"),
                        "subject": FORGED, "idempotencyKey": "record-accepted:98000002:R-FORGED-1:forged"}]}


def tree_size(cluster: Cluster) -> int:
    size: int = cluster.apps["audit"].state.store.head().tree_size
    return size


def test_report_cannot_log_a_record_accepted_for_a_provider(cluster: Cluster) -> None:
    size = tree_size(cluster)
    before = len(cluster.refusals("audit"))
    res = cluster.call("service-report", "audit", "POST", "/v1/audit/entries", json=forged_append(cluster))
    assert res.status_code == 403
    assert res.headers["content-type"] == "application/problem+json"
    assert res.json()["invalidParams"][0]["name"] == "/events/0"
    assert "does not produce 'record-accepted'" in res.json()["detail"]
    assert tree_size(cluster) == size  # nothing appended
    refusals = cluster.refusals("audit")[before:]
    assert [r.actorOin for r in refusals] == [oin(cluster.pki, "service-report")]


def test_negative_control_the_flat_service_role_lets_the_forgery_in(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With report mapped to the old flat role (every kind, any actor), the same request is logged."""
    flat = {kind: privileges.Actors(anyone=True) for kind in EVENT_KINDS}
    monkeypatch.setitem(privileges.APPENDS, "report", flat)
    size = tree_size(cluster)
    res = cluster.call("service-report", "audit", "POST", "/v1/audit/entries", json=forged_append(cluster))
    assert res.status_code == 201, res.text
    assert tree_size(cluster) == size + 1
    entry = cluster.apps["audit"].state.store.entries(start=size, end=size + 1)[0]
    assert b'"R-FORGED-1"' in entry.body


@pytest.mark.parametrize(
    ("slug", "kind", "actor", "subject", "reason"),
    [
        # ingest acts for providers only, and only about the provider it names as actor
        ("service-ingest", "record-accepted", "provider-98000001", {"provider": "98000002"}, "another provider"),
        ("service-ingest", "record-accepted", "gemeente-GM0363", {"provider": "98000001"}, "role 'gemeente'"),
        ("service-ingest", "record-accepted", "unregistered", {"provider": "98000001"}, "not a registered"),
        ("service-ingest", "feed-read", "gemeente-GM0363", {"gemeente": "GM0363"}, "does not produce"),
        # aggregate logs a gemeente's read of its own feed, not another's
        ("service-aggregate", "feed-read", "gemeente-GM0363", {"gemeente": "GM0599"}, "another gemeente"),
        ("service-aggregate", "record-accepted", "provider-98000001", {"provider": "98000001"}, "does not produce"),
        # a purge or key rotation is the service's own act, never a party's
        ("service-aggregate", "purge", "provider-98000001", {}, "role 'provider'"),
        ("service-ingest", "key-rotation", "service-ingest", {}, "does not produce"),
        ("service-ingest", "record-accepted", "service-ingest", {"provider": "98000001"}, "not the service's own"),
        # report may name aggregate (its disclosure check), no other service
        ("service-report", "report-read", "service-ingest", {"provider": "98000001"}, "does not act for the ingest"),
        ("service-report", "share-granted", "provider-98000001", {"provider": "98000002"}, "another provider"),
        ("service-pseudonymise", "record-accepted", "provider-98000001", {"provider": "98000001"},
         "does not produce"),
        ("service-portal", "report-read", "provider-98000001", {"provider": "98000001"}, "does not produce"),
    ],
)
def test_an_entry_outside_the_producers_rights_is_refused(
    cluster: Cluster, slug: str, kind: str, actor: str, subject: dict[str, Any], reason: str
) -> None:
    actor_oin = "00000099990000000042" if actor == "unregistered" else oin(cluster.pki, actor)
    if kind.startswith("record-"):  # a record entry otherwise valid: keyed content hash and its key version
        subject = {**subject, "contentHash": "ab" * 32, "contentKeyVersion": 1}
    size = tree_size(cluster)
    res = cluster.call(slug, "audit", "POST", "/v1/audit/entries",
                       json={"events": [{"kind": kind, "actorOin": actor_oin, "subject": subject}]})
    assert res.status_code == 403, res.text
    assert reason in res.json()["detail"]
    assert tree_size(cluster) == size


@pytest.mark.parametrize(
    ("slug", "kind", "actor", "subject"),
    [
        ("service-ingest", "record-rejected", "provider-98000001", {"provider": "98000001", "recordId": "x"}),
        ("service-aggregate", "feed-read", "gemeente-GM0363", {"gemeente": "GM0363", "period": "2026-H1"}),
        ("service-aggregate", "feed-read", "rijk", {"feed": "rijk", "period": "2026-H1"}),
        ("service-aggregate", "purge", "service-aggregate", {"periods": ["2024-H1"]}),
        ("service-pseudonymise", "key-rotation", "service-pseudonymise", {"action": "rotate"}),
        ("service-report", "report-read", "gemeente-GM0363", {"provider": "98000001", "period": "2026-H1"}),
        ("service-report", "report-read", "service-aggregate", {"provider": "98000001", "period": "2026-H1"}),
        ("service-report", "annotation-changed", "provider-98000001", {"provider": "98000001"}),
    ],
)
def test_each_producer_appends_its_own_kinds(
    cluster: Cluster, slug: str, kind: str, actor: str, subject: dict[str, Any]
) -> None:
    res = cluster.call(slug, "audit", "POST", "/v1/audit/entries",
                       json={"events": [{"kind": kind, "actorOin": oin(cluster.pki, actor), "subject": subject}]})
    assert res.status_code == 201, res.text


def test_one_forbidden_event_refuses_the_whole_batch(cluster: Cluster) -> None:
    size = tree_size(cluster)
    good = {"kind": "record-rejected", "actorOin": oin(cluster.pki, "provider-98000001"),
            "subject": {"provider": "98000001", "recordId": "ok"}}
    bad = {**good, "subject": {"provider": "98000002", "recordId": "bad"}}
    res = cluster.call("service-ingest", "audit", "POST", "/v1/audit/entries", json={"events": [good, good, bad]})
    assert res.status_code == 403
    assert res.json()["invalidParams"][0]["name"] == "/events/2"
    assert tree_size(cluster) == size
