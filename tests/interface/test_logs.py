"""A log capture of a full run: structured JSON, one request id across services, no identifier of a person.

A provider delivers a batch (valid records with real-looking BSNs, a record
without BSN that uses the fallback key, a record failing the 11-proef) with a
request id of its own, reads its receipt and withdraws consent for one client;
then every line every service wrote (files and stderr, including the fuzzer's
traffic earlier in this package) is read back. Each line is written once, to the
service's log file; its stderr stays empty. The request id must be in the
logs of ingest and of the services ingest called; no BSN, birth date, 6-position
postcode, fallback key or pseudonym of those people may appear in any log or in
any service's Prometheus metrics, whose labels must be route templates only.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.pseudonymise.keyring import Keyring
from tests.helpers.cluster import Cluster
from tests.helpers.hashed_forms import hashed_identifiers, old_content_hash
from tests.helpers.records import make_bsn, valid_record
from tests.interface.conftest import MAIN_CALLER, require_app
from ttp.openapi_export import document_path, services_with_app
from ttp.settings import SERVICES

LOG_KEYS = {"time", "level", "service", "logger", "message", "requestId"}
#: Services that handle part of a provider's delivery, after ingest.
DOWNSTREAM = ("pseudonymise", "aggregate", "audit")
POSTCODE6 = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{3} ?[A-Z]{2}(?![0-9A-Za-z])")
NINE_DIGITS = re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])")


def passes_11_proef(digits: str) -> bool:
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0 and digits != "000000000"


def read_logs(cluster: Cluster) -> dict[Path, list[str]]:
    return {p: p.read_text(encoding="utf-8", errors="replace").splitlines()
            for p in sorted((cluster.home / "log").iterdir()) if p.suffix in (".log", ".stderr")}


@pytest.fixture(scope="module")
def delivery(live: Cluster) -> dict[str, Any]:
    """One full delivery by a provider with a request id of its own; what was sent and answered."""
    for name in ("ingest", *DOWNSTREAM):
        require_app(name)
    rng = random.Random(7)
    end = dt.date.today() - dt.timedelta(days=40)
    records = [valid_record(f"logs-{i}", bsn=make_bsn(rng), end=end, age=rng.choice([12, 13, 14, 15]),
                            postcode=f"{rng.randint(1000, 9999)}{rng.choice('ABCDEFGH')}{rng.choice('KLMNPRT')}")
               for i in range(12)]
    no_bsn = valid_record("logs-nobsn", bsn="000000000", end=end, postcode="3512JK")
    bad_bsn = valid_record("logs-badbsn", bsn="123456789", end=end, postcode="9711AB")
    records += [no_bsn, bad_bsn]
    rid = str(uuid.uuid4())
    with live.client(MAIN_CALLER["ingest"], "ingest") as client:
        batch = client.post("/batches", json={"batchId": f"logs-{rid[:8]}", "records": records},
                            headers={"X-Request-ID": rid})
        assert batch.status_code == 200, batch.text
        again = client.get(f"/batches/logs-{rid[:8]}")
        withdrawal = client.post("/consent-withdrawals", json={
            "bsn": records[0]["bsn"], "trajectoryId": records[0]["trajectoryId"],
            "withdrawnOn": dt.date.today().isoformat()})
    time.sleep(0.5)  # let the services' last log lines reach their files
    return {"records": records, "rid": rid, "receipt": batch.json(), "batch": batch, "again": again,
            "withdrawal": withdrawal}


def identifiers(cluster: Cluster, records: list[dict[str, Any]]) -> set[str]:
    """Everything that identifies the people in ``records``: BSN, birth date, postcode, fallback key, pseudonyms,
    and the SHA-256 of BSN, fallback key and canonical record."""
    ring = Keyring.load(cluster.home / "keys")
    found: set[str] = set()
    for rec in records:
        pc = rec["postcode"]
        found |= {rec["birthDate"], pc, f"{pc[:4]} {pc[4:]}", rec["birthDate"].replace("-", "")}
        fallback = f"{rec['gender']}|{rec['birthDate']}|{pc}"
        found.add(fallback)
        found |= set(ring.pseudonymise("fallback", fallback))
        if rec["bsn"] != "000000000":
            found.add(rec["bsn"])
            found |= set(ring.pseudonymise("bsn", rec["bsn"]))
    return found | hashed_identifiers(records)  # and their SHA-256, hex and base64


def test_the_delivery_itself_worked(delivery: dict[str, Any]) -> None:
    counts = delivery["receipt"]["counts"]
    assert counts["received"] == len(delivery["records"])
    assert counts["accepted"] >= len(delivery["records"]) - 2 and counts["rejected"] >= 1  # the 11-proef one
    assert delivery["batch"].headers["x-request-id"] == delivery["rid"]
    assert delivery["again"].status_code == 200
    assert delivery["withdrawal"].status_code == 200, delivery["withdrawal"].text


def test_every_log_line_is_structured_json(live: Cluster, delivery: dict[str, Any]) -> None:
    logs = read_logs(live)
    assert {p.stem for p in logs} >= set(services_with_app())
    for path, lines in logs.items():
        if path.suffix == ".stderr":  # only what a service writes before its logging starts (a crash)
            assert not lines, f"{path.name}: {lines[:3]}"
            continue
        assert lines, f"{path.name} is empty"
        for number, line in enumerate(lines, 1):
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"{path.name}:{number} is not JSON: {line[:200]}")
            assert set(doc) >= LOG_KEYS, f"{path.name}:{number} lacks {LOG_KEYS - set(doc)}"
            assert doc["service"] == path.stem
            assert "Traceback" not in line


def test_the_request_id_follows_the_delivery_through_the_services(live: Cluster, delivery: dict[str, Any]) -> None:
    rid = delivery["rid"]
    for service in ("ingest", *DOWNSTREAM):
        lines = [json.loads(line) for line in read_logs(live)[live.home / "log" / f"{service}.log"]]
        mine = [d for d in lines if d["requestId"] == rid]
        assert mine, f"{service} logged nothing under request id {rid}"
        assert any(d["logger"] == "ttp.access" and d["status"] < 500 for d in mine), (service, mine)
    ingest = [json.loads(line) for line in read_logs(live)[live.home / "log" / "ingest.log"]]
    access = [d for d in ingest if d["requestId"] == rid and d["logger"] == "ttp.access"]
    assert [(d["method"], d["route"], d["status"]) for d in access] == [("POST", "/v1/batches", 200)]


def test_each_line_is_written_once(live: Cluster, delivery: dict[str, Any]) -> None:
    """The batch's access line at ingest is in the log directory once (not also in a stderr copy)."""
    rid = delivery["rid"]
    copies = [(path.name, line) for path, lines in read_logs(live).items() for line in lines
              if rid in line and '"ttp.access"' in line and '"/v1/batches"' in line]
    assert [name for name, _ in copies] == ["ingest.log"], copies


def leaks(line: str, secret: set[str]) -> list[str]:
    """What in one JSON log line identifies a person: a known identifier, a BSN-like number, a PC6."""
    found = sorted(v for v in secret if v in line)
    values = json.dumps({k: v for k, v in json.loads(line).items() if k not in ("time", "requestId")})
    found += [n for n in NINE_DIGITS.findall(values) if passes_11_proef(n)]
    found += POSTCODE6.findall(values)
    return found


def test_the_privacy_grep_finds_what_it_looks_for(live: Cluster, delivery: dict[str, Any]) -> None:
    """Control: the checks below are not vacuous."""
    secret = identifiers(live, delivery["records"])
    rec = delivery["records"][0]
    assert len(secret) > 5 * len(delivery["records"])
    for planted in (rec["bsn"], rec["postcode"], rec["birthDate"], "user 111222333", "at 1011 AB",
                    old_content_hash(rec)):
        line = json.dumps({"message": f"oops {planted}", "requestId": "-"})
        assert leaks(line, secret), planted
    assert not leaks(json.dumps({"message": "request", "status": 200, "durationMs": 12.5}), secret)


def test_no_identifier_of_a_person_in_any_log(live: Cluster, delivery: dict[str, Any]) -> None:
    secret = identifiers(live, delivery["records"])
    for path, lines in read_logs(live).items():
        for line in lines:
            found = leaks(line, secret)
            assert not found, f"{path.name} identifies a person ({found[:3]}): {line[:200]}"


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_count_requests_and_carry_no_identifier(live: Cluster, delivery: dict[str, Any], service: str) -> None:
    require_app(service)
    with live.client("operator", service) as client:
        response = client.get("/metrics")
    for slug in ("provider-98000001", f"service-{'aggregate' if service == 'ingest' else 'ingest'}"):
        with live.client(slug, service) as client:
            refused = client.get("/metrics")
        assert refused.status_code == 403  # delivery volumes are for TTP monitoring only
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert f'ttp_requests_total{{method="GET",route="/v1/health",service="{service}",status="200"}}' in text
    assert "ttp_request_seconds_bucket" in text
    documented = {"/v1" + p for p in json.loads(document_path(service).read_text())["paths"]}
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert routes <= documented | {"unmatched", "/v1/metrics", "/v1/openapi.json"}, routes - documented
    leaked = sorted(v for v in identifiers(live, delivery["records"]) if v in text)
    assert not leaked, f"{service} metrics contain identifiers: {leaked[:5]}"
    if service == "ingest":
        accepted = re.search(r'^ttp_records_total\{outcome="accepted"\} ([0-9.e+]+)$', text, re.MULTILINE)
        rejected = re.search(r'^ttp_records_total\{outcome="rejected"\} ([0-9.e+]+)$', text, re.MULTILINE)
        assert accepted and float(accepted.group(1)) >= delivery["receipt"]["counts"]["accepted"]
        assert rejected and float(rejected.group(1)) >= delivery["receipt"]["counts"]["rejected"]
