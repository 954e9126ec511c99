"""The audit service over HTTP: who may call what, validation, receipts and auditor reads."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.audit.app import create_app
from services.audit.store import AuditStore
from tests.audit.conftest import app_settings, events, oin_of
from tests.helpers.asgi import party_client
from ttp.audit_verify import verify_receipt
from ttp.checkpoint import verify_checkpoint
from ttp.merkle import leaf_hash, verify_consistency, verify_inclusion

SLUGS = [None, "provider-98000001", "gemeente-GM0363", "rijk", "auditor", "service-ingest"]
PROBLEM = "application/problem+json"


def body(evs: list[Any]) -> dict[str, Any]:
    return {"events": [e.model_dump(exclude_none=True) for e in evs]}


def append(app: FastAPI, pki: Path, evs: list[Any], slug: str = "service-ingest") -> Any:
    return party_client(app, pki, slug).post("/v1/audit/entries", json=body(evs))


def store_of(app: FastAPI) -> AuditStore:
    store: AuditStore = app.state.store
    return store


ENDPOINTS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/v1/audit/entries", {}, "service"),
    ("GET", "/v1/audit/entries", {}, "auditor"),
    ("GET", "/v1/audit/checkpoint", {}, "auditor"),
    ("GET", "/v1/audit/verifier-key", {}, "auditor"),
    ("GET", "/v1/audit/proofs/inclusion", {"leafIndex": 0}, "auditor"),
    ("GET", "/v1/audit/proofs/consistency", {"fromTreeSize": 1}, "auditor"),
    ("GET", "/v1/audit/consent-report", {"provider": "98000001"}, "auditor"),
]


def test_access_control_of_every_endpoint_by_role(running: TestClient, dev_pki: Path) -> None:
    audit_app = running.app
    assert isinstance(audit_app, FastAPI)
    append(audit_app, dev_pki, events(2, "seed"))
    store = store_of(audit_app)
    for method, url, params, allowed in ENDPOINTS:
        for slug in SLUGS:
            client = party_client(audit_app, dev_pki, slug)
            if method == "POST":
                res = client.post(url, json=body(events(1, f"ac-{slug}")))
            else:
                res = client.get(url, params=params)
            role = slug.split("-")[0] if slug else None
            if role == allowed:
                assert res.status_code in (200, 201), (url, slug, res.text)
            else:
                assert res.status_code == 403, (url, slug, res.status_code)
                assert res.headers["content-type"] == PROBLEM
                assert res.json()["status"] == 403
    # every refusal was itself logged, under the audit service's own OIN
    # (the test client runs each request in a loop of its own; drain in the app's lasting loop)
    assert running.portal is not None
    assert running.portal.call(audit_app.state.audit_sink.background.flush, 10.0)
    refusals = len(ENDPOINTS) * (len(SLUGS) - 1)
    assert len(store.entries(kind="refusal", limit=1000)) == refusals
    own = oin_of(dev_pki, "service-audit")
    docs = [orjson.loads(e.body) for e in store.entries(kind="refusal", limit=1000)]
    assert {d["recordedBy"] for d in docs} == {own}
    assert {d["actorOin"] for d in docs} >= {oin_of(dev_pki, "rijk"), "0" * 20}
    assert all(d["subject"]["service"] == "audit" for d in docs)


def test_unregistered_party_is_refused(tmp_path: Path, dev_pki: Path) -> None:
    registry = yaml.safe_load((dev_pki / "parties.yaml").read_text())
    registry["parties"] = [p for p in registry["parties"] if p["slug"] != "service-report"]
    reduced = tmp_path / "parties.yaml"
    reduced.write_text(yaml.safe_dump(registry))
    settings = app_settings(tmp_path, dev_pki).model_copy(update={"registry_file": reduced})
    app = create_app(settings)
    with TestClient(app):
        res = party_client(app, dev_pki, "service-report").post("/v1/audit/entries", json=body(events(1, "x")))
        assert res.status_code == 403
        assert "not registered" in res.json()["detail"]


def test_append_answers_a_receipt_that_verifies(audit_app_db: FastAPI, dev_pki: Path, public_key: Any) -> None:
    append(audit_app_db, dev_pki, events(3, "pre"))
    evs = events(25, "batch")
    res = append(audit_app_db, dev_pki, evs)
    assert res.status_code == 201
    assert res.headers["api-version"]
    receipt = res.json()
    assert receipt["leafIndexes"] == list(range(3, 28))
    assert receipt["appended"] == 25 and receipt["treeSize"] == 28
    check = verify_receipt(receipt, public_key)
    assert sorted(check.leaves) == list(range(3, 28))
    stored = {e.index: e.body for e in store_of(audit_app_db).iter_entries(28)}
    for p in receipt["inclusionProofs"]:
        assert base64.b64decode(p["leafHash"]) == leaf_hash(stored[p["leafIndex"]])
        assert orjson.loads(stored[p["leafIndex"]])["timestamp"] == p["timestamp"]
    # a resent batch is acknowledged with the same leaves and nothing new
    again = append(audit_app_db, dev_pki, evs)
    assert again.status_code == 200
    assert again.json()["leafIndexes"] == receipt["leafIndexes"]
    assert again.json()["appended"] == 0
    verify_receipt(again.json(), public_key)


@pytest.mark.parametrize(
    ("subject", "pointer"),
    [
        ({"bsn": "123456782"}, "/events/0/subject/bsn"),
        ({"clientBSN": "123456782"}, "/events/0/subject/clientBSN"),
        ({"client": {"birthDate": "2011-03-04"}}, "/events/0/subject/client/birthDate"),
        ({"records": [{"geboortedatum": "2011-03-04"}]}, "/events/0/subject/records/0/geboortedatum"),
        ({"postcode": "1234AB"}, "/events/0/subject/postcode"),
        ({"pseudonym": "ab12"}, "/events/0/subject/pseudonym"),
    ],
)
def test_personal_identifiers_are_refused_and_never_stored(
    subject: dict[str, Any], pointer: str, audit_app: FastAPI, dev_pki: Path, tmp_path: Path
) -> None:
    ev = events(1, "pii")[0]
    ev.subject.update(subject)
    res = append(audit_app, dev_pki, [events(1, "fine")[0], ev][::-1])
    assert res.status_code == 400
    assert res.headers["content-type"] == PROBLEM
    doc = res.json()
    assert [p["name"] for p in doc["invalidParams"]] == [pointer]
    assert doc["invalidParams"][0]["code"] == "personal-data"
    assert "1234AB" not in res.text and "123456782" not in res.text and "2011-03-04" not in res.text
    assert store_of(audit_app).head().tree_size == 0
    raw = b"".join(p.read_bytes() for p in (tmp_path / "db").glob("audit.sqlite3*"))
    for value in (b"123456782", b"2011-03-04", b"1234AB", b"ab12"):
        assert value not in raw


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        ({"events": []}, "/events"),
        ({}, "/events"),
        ({"events": [{"kind": "record-accepted"}]}, "/events/0/actorOin"),
        ({"events": [{"kind": "no-such-kind", "actorOin": "0" * 20}]}, "/events/0/kind"),
        ({"events": [{"kind": "feed-read", "actorOin": "123"}]}, "/events/0/actorOin"),
        ({"events": [{"kind": "feed-read", "actorOin": "0" * 20, "subject": {"provider": "x"}}]},
         "/events/0/subject/provider"),
        ({"events": [{"kind": "feed-read", "actorOin": "0" * 20, "subject": {"period": "2026"}}]},
         "/events/0/subject/period"),
    ],
)
def test_invalid_batches_get_400_and_append_nothing(
    payload: dict[str, Any], name: str, audit_app: FastAPI, dev_pki: Path
) -> None:
    res = party_client(audit_app, dev_pki, "service-ingest").post("/v1/audit/entries", json=payload)
    assert res.status_code == 400
    assert res.headers["content-type"] == PROBLEM
    assert name in [p["name"] for p in res.json()["invalidParams"]]
    assert store_of(audit_app).head().tree_size == 0


def test_malformed_json_gets_400(audit_app: FastAPI, dev_pki: Path) -> None:
    res = party_client(audit_app, dev_pki, "service-ingest").post(
        "/v1/audit/entries", content=b'{"events": [', headers={"content-type": "application/json"})
    assert res.status_code == 400
    assert res.headers["content-type"] == PROBLEM


def test_database_down_gives_503_and_appends_nothing(audit_app: FastAPI, dev_pki: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    store = store_of(audit_app)

    def down(*_a: Any, **_k: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(store, "append", down)
    res = append(audit_app, dev_pki, events(3, "x"))
    assert res.status_code == 503
    assert res.headers["retry-after"]
    assert res.headers["content-type"] == PROBLEM
    monkeypatch.undo()
    assert store.head().tree_size == 0


def test_auditor_reads_entries_with_filters_and_pages(audit_app_db: FastAPI, dev_pki: Path) -> None:
    append(audit_app_db, dev_pki, events(3, "a", provider="98000001", period="2026-H1"))
    append(audit_app_db, dev_pki, events(4, "b", provider="98000002", period="2026-H2", kind="record-rejected"))
    append(audit_app_db, dev_pki, events(2, "c", provider="98000001", period="2026-H2"))
    auditor = party_client(audit_app_db, dev_pki, "auditor")

    def indexes(**params: Any) -> list[int]:
        res = auditor.get("/v1/audit/entries", params=params)
        assert res.status_code == 200, res.text
        return [e["index"] for e in res.json()["entries"]]

    assert indexes() == list(range(9))
    assert indexes(provider="98000001") == [0, 1, 2, 7, 8]
    assert indexes(kind="record-rejected") == [3, 4, 5, 6]
    assert indexes(period="2026-H2") == [3, 4, 5, 6, 7, 8]
    assert indexes(provider="98000001", period="2026-H2") == [7, 8]
    assert indexes(start=2, end=4) == [2, 3]
    page = auditor.get("/v1/audit/entries", params={"limit": 4}).json()
    assert page["nextStart"] == 4 and page["treeSize"] == 9
    last = auditor.get("/v1/audit/entries", params={"start": 8, "limit": 4}).json()
    assert last["nextStart"] is None
    entry = page["entries"][0]
    assert base64.b64decode(entry["leafHash"]) == leaf_hash(
        orjson.dumps(entry["entry"], option=orjson.OPT_SORT_KEYS))
    for bad in ({"provider": "x"}, {"kind": "nope"}, {"period": "H1"}, {"limit": 0}, {"start": -1}):
        res = auditor.get("/v1/audit/entries", params=bad)
        assert res.status_code == 400 and res.headers["content-type"] == PROBLEM, bad


def test_auditor_proofs_and_checkpoints(audit_app_db: FastAPI, dev_pki: Path, public_key: Any) -> None:
    sizes = []
    for i, n in enumerate((3, 5, 1, 8)):
        sizes.append(append(audit_app_db, dev_pki, events(n, f"p{i}")).json()["treeSize"])
    auditor = party_client(audit_app_db, dev_pki, "auditor")
    res = auditor.get("/v1/audit/checkpoint")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    latest = verify_checkpoint(res.text, public_key)
    assert latest.tree_size == 17
    notes = {s: auditor.get("/v1/audit/checkpoint", params={"treeSize": s}).text for s in [0, *sizes]}
    roots = {s: verify_checkpoint(n, public_key).root_hash for s, n in notes.items()}
    assert auditor.get("/v1/audit/checkpoint", params={"treeSize": 5}).status_code == 404
    for old in roots:
        for new in roots:
            if old <= new:
                doc = auditor.get("/v1/audit/proofs/consistency",
                                  params={"fromTreeSize": old, "toTreeSize": new}).json()
                hashes = [base64.b64decode(h) for h in doc["hashes"]]
                verify_consistency(old, new, hashes, roots[old], roots[new])
    for leaf in range(17):
        doc = auditor.get("/v1/audit/proofs/inclusion", params={"leafIndex": leaf, "treeSize": 9}).json() \
            if leaf < 9 else auditor.get("/v1/audit/proofs/inclusion", params={"leafIndex": leaf}).json()
        size = doc["treeSize"]
        verify_inclusion(base64.b64decode(doc["leafHash"]), leaf, size,
                         [base64.b64decode(h) for h in doc["hashes"]], roots[size])
        assert verify_checkpoint(doc["checkpoint"], public_key).tree_size == size
    vkey = auditor.get("/v1/audit/verifier-key").text.strip()
    assert vkey.startswith("outcome-ttp.example.nl/audit/v2+")
    for params in ({"leafIndex": 17}, {"leafIndex": 0, "treeSize": 18}):
        assert auditor.get("/v1/audit/proofs/inclusion", params=params).status_code == 400
    for params in ({"fromTreeSize": 9, "toTreeSize": 4}, {"fromTreeSize": 1, "toTreeSize": 99}):
        assert auditor.get("/v1/audit/proofs/consistency", params=params).status_code == 400


def test_openapi_documents_the_endpoints(audit_app: FastAPI) -> None:
    spec = audit_app.openapi()
    # paths may be documented with or without the /v1 base path (then it is in `servers`)
    paths = {k.removeprefix("/v1"): v for k, v in spec["paths"].items()}
    for p in ("/audit/entries", "/audit/checkpoint", "/audit/proofs/inclusion",
              "/audit/proofs/consistency", "/audit/consent-report"):
        assert p in paths
    assert "post" in paths["/audit/entries"] and "get" in paths["/audit/entries"]


def test_append_with_proof_of_the_last_event_only(audit_app_db: FastAPI, dev_pki: Path, public_key: Any) -> None:
    """A big ingest batch asks for one proof (its summary entry), not one per record."""
    evs = events(40, "summary")
    res = party_client(audit_app_db, dev_pki, "service-ingest").post(
        "/v1/audit/entries", json={**body(evs), "proofs": "last"})
    assert res.status_code == 201
    receipt = res.json()
    assert receipt["leafIndexes"] == list(range(40))
    assert [p["leafIndex"] for p in receipt["inclusionProofs"]] == [39]
    check = verify_receipt(receipt, public_key)
    assert list(check.leaves) == [39]
    stored = {e.index: e.body for e in store_of(audit_app_db).iter_entries(40)}
    assert base64.b64decode(receipt["inclusionProofs"][0]["leafHash"]) == leaf_hash(stored[39])
    bad = party_client(audit_app_db, dev_pki, "service-ingest").post(
        "/v1/audit/entries", json={**body(evs), "proofs": "some"})
    assert bad.status_code == 400
