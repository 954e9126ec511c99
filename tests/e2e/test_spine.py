"""End to end over real processes and real mTLS: provider to store, and what must be refused."""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, func, select, text

from services.aggregate.models import Measurement, Trajectory
from tests.helpers.cluster import Cluster
from tests.helpers.records import generated, make_bsn, valid_record
from ttp.audit_verify import verify_receipt
from ttp.checkpoint import load_public_key


def store_count(cluster: Cluster, provider: str | None = None) -> int:
    engine = create_engine(cluster.settings.database_url("aggregate").replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        stmt = select(func.count()).select_from(Trajectory)
        if provider:
            stmt = stmt.where(Trajectory.provider_agb == provider)
        n = int(conn.execute(stmt).scalar_one())
    engine.dispose()
    return n


def post(cluster: Cluster, slug: str, batch_id: str, records: list[dict[str, Any]]) -> httpx.Response:
    with cluster.client(slug) as c:
        return c.post("/batches", json={"batchId": batch_id, "records": records})


def test_generated_batch_lands_in_store(cluster: Cluster) -> None:
    records = [r for r in generated(400, seed=7, providers=("98000002",)) if r["providerAgb"] == "98000002"]
    resp = post(cluster, "provider-98000002", "gen-1", records)
    assert resp.status_code == 200, resp.text
    receipt = resp.json()
    assert resp.headers["api-version"]
    counts = receipt["counts"]
    assert counts["received"] == len(records)
    assert counts["accepted"] + counts["rejected"] == len(records)
    assert counts["accepted"] > 0.9 * len(records)
    assert store_count(cluster, "98000002") == counts["accepted"]
    # the receipt is there again, and carries the audit log's inclusion proof
    with cluster.client("provider-98000002") as c:
        again = c.get("/batches/gen-1")
    assert again.status_code == 200 and again.json()["counts"] == counts
    # ... and the batch's entries are in the audit log: the proof verifies against the signed checkpoint
    audit = receipt["audit"]
    assert len(audit["recordEntries"]) == counts["accepted"] + counts["rejected"]
    check = verify_receipt(
        {"checkpoint": audit["checkpoint"], "treeSize": audit["treeSize"], "rootHash": audit["rootHash"],
         "inclusionProofs": [audit["inclusionProof"]]},
        load_public_key(cluster.home / "pki" / "audit-log.pub"),
    )
    assert audit["batchEntry"] in check.leaves


def test_records_without_measurements_are_counted(cluster: Cluster) -> None:
    rec = valid_record("no-meas-1", provider="98000003", bsn=make_bsn(random.Random(3)), measurements=[])
    resp = post(cluster, "provider-98000003", "nm-1", [rec])
    assert resp.json()["counts"]["accepted"] == 1
    engine = create_engine(cluster.settings.database_url("aggregate").replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(Measurement).where(Measurement.record_id == "no-meas-1")
        ).scalar_one()
    engine.dispose()
    assert n == 0 and store_count(cluster, "98000003") >= 1


def test_a_faulty_measurement_is_a_warning_and_the_trajectory_is_stored(cluster: Cluster) -> None:
    """SPEC (seed 001): "A fault in a measurement rejects that measurement (a warning in the
    receipt, by record and field), not the trajectory: the trajectory still counts for uitval
    and 3.2." Such a record used to be rejected whole, and its trajectory lost for 3.2."""
    rec = valid_record("warn-meas-1", provider="98000003", bsn=make_bsn(random.Random(11)))
    rec["measurements"][1]["satisfaction"] = 11
    resp = post(cluster, "provider-98000003", "warn-1", [rec])
    assert resp.status_code == 200, resp.text
    receipt = resp.json()
    assert receipt["counts"]["accepted"] == 1 and receipt["rejected"] == []
    assert receipt["status"] == "accepted"
    assert [(w["index"], w["recordId"], [(p["name"], p["code"]) for p in w["problems"]])
            for w in receipt["warnings"]] == [
        (0, "warn-meas-1", [("/records/0/measurements/1/satisfaction", "satisfaction-range")]),
    ]
    engine = create_engine(cluster.settings.database_url("aggregate").replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        kept = conn.execute(
            select(Measurement.informant).where(Measurement.record_id == "warn-meas-1")
        ).scalars().all()
        stored = conn.execute(
            select(func.count()).select_from(Trajectory).where(Trajectory.record_id == "warn-meas-1")
        ).scalar_one()
    engine.dispose()
    assert (stored, kept) == (1, ["jeugdige"])
    with cluster.client("provider-98000003") as c:
        assert c.get("/batches/warn-1").json()["warnings"] == receipt["warnings"]


def test_no_client_certificate_fails_the_handshake(cluster: Cluster) -> None:
    ctx = ssl.create_default_context(cafile=str(cluster.home / "pki" / "ca.pem"))
    for service in ("ingest", "pseudonymise", "aggregate", "report", "audit"):
        with httpx.Client(base_url=cluster.base_url(service), verify=ctx) as c, pytest.raises(httpx.HTTPError):
            c.get("/health")


def test_gemeente_may_not_post_a_batch(cluster: Cluster) -> None:
    resp = post(cluster, "gemeente-GM0363", "gm-1", [valid_record("x-1")])
    assert resp.status_code == 403
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == 403


def test_provider_posting_for_another_provider_gets_each_record_rejected(cluster: Cluster) -> None:
    rng = random.Random(11)
    records = [valid_record(f"other-{i}", provider="98000004", bsn=make_bsn(rng)) for i in range(3)]
    resp = post(cluster, "provider-98000001", "other-1", records)
    assert resp.status_code == 200
    receipt = resp.json()
    assert receipt["counts"]["rejected"] == 3 and receipt["counts"]["accepted"] == 0
    for i, rej in enumerate(receipt["rejected"]):
        assert rej["index"] == i
        assert rej["recordId"] == f"other-{i}"
        assert any(p["code"] == "provider-mismatch" and p["name"] == f"/records/{i}/providerAgb"
                   for p in rej["problems"])
    assert store_count(cluster, "98000004") == 0


def test_malformed_envelope_is_400_for_the_whole_batch(cluster: Cluster) -> None:
    with cluster.client("provider-98000001") as c:
        r1 = c.post("/batches", content=b"{not json", headers={"content-type": "application/json"})
        r2 = c.post("/batches", json={"records": [valid_record("e-1")]})
        r3 = c.post("/batches", json={"batchId": "b", "records": "nope"})
    for r in (r1, r2, r3):
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")
    assert any(p["name"] == "/batchId" for p in r2.json()["invalidParams"])


def test_resend_duplicate_and_correction_give_exact_counts(cluster: Cluster) -> None:
    rng = random.Random(21)
    records = [valid_record(f"idem-{i}", provider="98000001", bsn=make_bsn(rng)) for i in range(5)]
    first = post(cluster, "provider-98000001", "idem-a", records).json()
    assert first["counts"]["accepted"] == 5
    before = store_count(cluster, "98000001")
    # the same batch again: the same receipt, nothing added
    again = post(cluster, "provider-98000001", "idem-a", records).json()
    assert again["counts"] == first["counts"]
    # the same records in a new batch: duplicates
    dup = post(cluster, "provider-98000001", "idem-b", records).json()
    assert dup["counts"]["duplicates"] == 5 and dup["counts"]["accepted"] == 0
    # one record with new content: a correction, replaced
    changed = [dict(records[0], terminationReason="03")]
    corr = post(cluster, "provider-98000001", "idem-c", changed).json()
    assert corr["counts"]["corrections"] == 1
    assert store_count(cluster, "98000001") == before
    engine = create_engine(cluster.settings.database_url("aggregate").replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        reason = conn.execute(
            text("SELECT termination_reason FROM trajectories WHERE provider_agb='98000001' AND record_id='idem-0'")
        ).scalar_one()
    engine.dispose()
    assert reason == "03"
    # a batchId reused for other records is a conflict, not a silent overwrite
    clash = post(cluster, "provider-98000001", "idem-a", records[:2])
    assert clash.status_code == 409


@pytest.mark.parametrize("victim", ["pseudonymise", "aggregate", "audit"])
def test_downstream_killed_then_resend_counts_exactly_once(cluster: Cluster, victim: str) -> None:
    rng = random.Random(hash(victim) % 1000)
    records = [valid_record(f"kill-{victim}-{i}", provider="98000001", bsn=make_bsn(rng)) for i in range(50)]
    before = store_count(cluster, "98000001")
    cluster.kill(victim)
    try:
        resp = post(cluster, "provider-98000001", f"kill-{victim}", records)
        assert resp.status_code == 503
        assert resp.headers["retry-after"]
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert store_count(cluster, "98000001") == before if victim != "aggregate" else True
    finally:
        cluster.start(victim)
    resp = post(cluster, "provider-98000001", f"kill-{victim}", records)
    assert resp.status_code == 200, resp.text
    assert resp.json()["counts"]["accepted"] == 50
    assert store_count(cluster, "98000001") == before + 50
    again = post(cluster, "provider-98000001", f"kill-{victim}", records).json()
    assert again["counts"]["accepted"] == 50
    assert store_count(cluster, "98000001") == before + 50


def test_consent_withdrawal_removes_rows_and_blocks_resend_without_new_basis(cluster: Cluster) -> None:
    rng = random.Random(77)
    bsn = make_bsn(rng)
    first = valid_record("wd-1", provider="98000003", bsn=bsn)
    second = valid_record("wd-2", provider="98000003", bsn=bsn, trajectoryId="T-wd-2")
    other = valid_record("wd-3", provider="98000003", bsn=make_bsn(rng))
    assert post(cluster, "provider-98000003", "wd-a", [first, second, other]).json()["counts"]["accepted"] == 3
    before = store_count(cluster, "98000003")
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    with cluster.client("provider-98000003") as c:
        resp = c.post("/consent-withdrawals", json={"bsn": bsn, "withdrawnOn": yesterday})
        assert resp.status_code == 200, resp.text
        body = resp.json()
    # another provider's withdrawal for the same person removes nothing of provider 3
    with cluster.client("provider-98000004") as c4:
        other_provider = c4.post("/consent-withdrawals", json={"bsn": other["bsn"], "withdrawnOn": yesterday})
    assert body["removed"] == 2 and sorted(body["recordIds"]) == ["wd-1", "wd-2"]
    assert body["audit"]["leafIndexes"]
    assert other_provider.json()["removed"] == 0
    assert store_count(cluster, "98000003") == before - 2
    # the same record again, under the withdrawn consent: refused, per record
    again = post(cluster, "provider-98000003", "wd-b", [first]).json()
    assert again["counts"]["rejected"] == 1
    assert again["rejected"][0]["problems"][0]["code"] == "consent-withdrawn"
    # with consent given after the withdrawal, or under a legal obligation, it may come back
    renewed = dict(first, consent={"givenBy": "beide", "givenOn": dt.date.today().isoformat()})
    legal = dict(second, legalBasis="wettelijke-verplichting", consent=None)
    legal.pop("consent")
    back = post(cluster, "provider-98000003", "wd-c", [renewed, legal]).json()
    assert back["counts"]["accepted"] == 2, back
    assert store_count(cluster, "98000003") == before


def test_ttp_submit_file_twice_counts_nothing_twice(cluster: Cluster, tmp_path: Path) -> None:
    """The provider's command: a file with some invalid records, submitted, then submitted again."""
    records = generated(600, seed=5, invalid_share=0.1)
    path = tmp_path / "delivery.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    env = {**os.environ, "TTP_HOME": str(cluster.home), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "ttp", "submit", str(path), "--url", cluster.base_url("ingest"), "--batch-size", "250"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stdout + second.stderr

    def summary(text: str) -> list[str]:
        row = next(line for line in text.splitlines() if re.match(r"^│\s+\d", line))
        return [c.strip().replace(",", "") for c in row.strip("│").split("│")]

    _batches, received, accepted, duplicates, corrections, rejected, _retries = summary(first.stdout)
    assert int(received) == 600 and int(rejected) > 0 and int(accepted) + int(rejected) == 600
    again = summary(second.stdout)
    # the same batches again: the same receipts (stable batch ids), nothing stored twice
    assert again[1:6] == [received, accepted, duplicates, corrections, rejected]
