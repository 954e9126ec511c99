"""CSV and XLSX deliveries and period re-delivery, end to end over real processes and real mTLS.

What a provider's data officer checks: the spreadsheet they already make for
CBS gives the same receipt and the same figures as our JSON; a problem is
named by row and column of their file; a broken file is refused whole with a
reason; and a re-delivery of a period withdraws exactly the records it leaves
out, which the audit log then shows.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, select

from services.aggregate.models import Trajectory
from services.ingest.redelivery import replaceable_periods
from tests.helpers.cluster import START_ORDER, Cluster
from tests.helpers.files import zip_bomb
from tests.helpers.records import generated, valid_record
from ttp.delivery_layout import COLUMNS, CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, csv_lines, write_xlsx
from ttp.periods import period_bounds, period_of, previous_period

#: A small body limit, so the limit can be tested with a file of a megabyte.
BODY_LIMIT = 1_000_000
JSON_AGB, CSV_AGB, XLSX_AGB, REDELIVERY_AGB = "98000001", "98000002", "98000003", "98000004"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home: Path = tmp_path_factory.mktemp(f"ttp-files-{request.param}")
    c = Cluster(home, backend=request.param, extra_env={"TTP_MAX_BODY_BYTES": str(BODY_LIMIT)})
    try:
        for service in START_ORDER:  # one by one: each gets the whole start-up wait on a loaded machine
            c.start(service)
        yield c
    finally:
        c.destroy()


def csv_bytes(records: list[dict[str, Any]]) -> bytes:
    return "".join(csv_lines(records)).encode()


def xlsx_bytes(records: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    write_xlsx(records, buf)
    return buf.getvalue()


def deliver(cluster: Cluster, agb: str, body: bytes, media: str, batch_id: str | None,
            replace: str | None = None) -> httpx.Response:
    params = {k: v for k, v in (("batchId", batch_id), ("replacePeriod", replace)) if v}
    with cluster.client(f"provider-{agb}") as c:
        return c.post("/batches", content=body, params=params, headers={"content-type": media})


def for_provider(records: list[dict[str, Any]], agb: str) -> list[dict[str, Any]]:
    out = copy.deepcopy(records)
    for r in out:
        r["providerAgb"] = agb
    return out


def comparable(receipt: dict[str, Any]) -> dict[str, Any]:
    """A receipt without what names the delivery (batch, provider, time, audit leaves) or the file row."""
    doc = {k: v for k, v in receipt.items() if k not in ("batchId", "provider", "receivedAt", "audit")}
    for key, items in doc.items():
        if isinstance(items, list) and items and isinstance(items[0], dict) and "problems" in items[0]:
            doc[key] = [{**{k: v for k, v in item.items() if k != "row"},
                         "problems": [{k: v for k, v in p.items() if k != "location"} for p in item["problems"]]}
                        for item in items]
    return doc


def record_problems(receipt: dict[str, Any]) -> list[dict[str, Any]]:
    """Every per-record problem of a receipt: rejections, and warnings where the receipt has them."""
    out = []
    for items in receipt.values():
        if isinstance(items, list):
            out += [item for item in items if isinstance(item, dict) and "problems" in item]
    return out


def stored_ids(cluster: Cluster, agb: str) -> set[str]:
    engine = create_engine(cluster.settings.database_url("aggregate").replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        ids = set(conn.execute(select(Trajectory.record_id).where(Trajectory.provider_agb == agb)).scalars())
    engine.dispose()
    return ids


def provider_figures(cluster: Cluster, agb: str, period: str) -> dict[str, Any]:
    """The provider's intern figures from aggregate, as the report service reads them."""
    deadline = time.monotonic() + 240
    with cluster.client("service-report", "aggregate") as c:
        while True:
            resp = c.get(f"/providers/{agb}/outcomes", params={"period": period, "variant": "intern"})
            if resp.status_code != 503 or time.monotonic() > deadline:
                assert resp.status_code == 200, resp.text
                doc: dict[str, Any] = resp.json()
                return doc
            time.sleep(float(resp.headers.get("retry-after", "2")))


def audit_entries(cluster: Cluster, kind: str, agb: str) -> list[dict[str, Any]]:
    """The provider's log entries of one kind, each with its leaf index."""
    with cluster.client("auditor", "audit") as c:
        resp = c.get("/audit/entries", params={"kind": kind, "provider": agb})
    assert resp.status_code == 200, resp.text
    return [{"index": e["index"], **e["entry"]} for e in resp.json()["entries"]]


def ttp_submit(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TTP_HOME": str(cluster.home), "COLUMNS": "250"}
    cmd = [sys.executable, "-m", "ttp", "submit", *args, "--url", cluster.base_url("ingest")]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def faulty_records(end: dt.date) -> list[dict[str, Any]]:
    """Records with faults a spreadsheet can carry: a BSN failing the 11-proef, dates out of order,
    a satisfaction of 11 in the second measurement."""
    bad_bsn = valid_record("FAULT-BSN", bsn="123456789", end=end)
    bad_dates = valid_record("FAULT-DATES", bsn="111222333", end=end)
    bad_dates["startDate"] = (end + dt.timedelta(days=1)).isoformat()
    bad_score = valid_record("FAULT-SCORE", bsn="123456782", end=end)
    bad_score["measurements"][1]["satisfaction"] = 11
    return [bad_bsn, bad_dates, bad_score]


def test_csv_xlsx_and_json_of_the_same_records_give_identical_receipts_and_figures(cluster: Cluster) -> None:
    today = dt.date.today()
    records = [r for r in generated(120, seed=18, providers=(JSON_AGB,)) if r["providerAgb"] == JSON_AGB]
    period = period_of(dt.date.fromisoformat(records[0]["endDate"]))
    records += faulty_records(period_bounds(period)[1] if period_bounds(period)[1] < today else today)

    as_json = deliver(cluster, JSON_AGB, orjson.dumps(
        {"batchId": "same-records", "records": for_provider(records, JSON_AGB)}), "application/json", None)
    as_csv = deliver(cluster, CSV_AGB, csv_bytes(for_provider(records, CSV_AGB)), CSV_MEDIA_TYPE, "same-records")
    as_xlsx = deliver(cluster, XLSX_AGB, xlsx_bytes(for_provider(records, XLSX_AGB)), XLSX_MEDIA_TYPE,
                      "same-records")
    receipts = [r.json() for r in (as_json, as_csv, as_xlsx)]
    assert [r.status_code for r in (as_json, as_csv, as_xlsx)] == [200, 200, 200], as_csv.text
    assert receipts[0]["counts"]["accepted"] >= 100 and record_problems(receipts[0])
    assert comparable(receipts[1]) == comparable(receipts[0])
    assert comparable(receipts[2]) == comparable(receipts[0])
    # the file receipts place every problem in the file; the JSON one has no rows to name
    assert all(item["row"] == item["index"] + 2 for r in receipts[1:] for item in record_problems(r))
    assert all(item.get("row") is None for item in record_problems(receipts[0]))

    figures = [provider_figures(cluster, agb, period) for agb in (JSON_AGB, CSV_AGB, XLSX_AGB)]
    assert figures[0]["trajectories"] > 0
    for other in figures[1:]:
        assert other["trajectories"] == figures[0]["trajectories"]
        assert other["cells"] == figures[0]["cells"]


def test_a_rejection_names_the_row_and_column_of_the_file(cluster: Cluster, tmp_path: Path) -> None:
    end = dt.date.today() - dt.timedelta(days=10)
    good = [valid_record(f"RC-{i}", bsn="111222333", end=end, provider=JSON_AGB) for i in range(3)]
    text = "".join(csv_lines(good)).replace("Geboortedatum", "geboortedatum", 1)
    lines = text.split("\r\n")
    cells = lines[2].split(";")
    cells[[c.heading for c in COLUMNS].index("Geboortedatum")] = "31-02-2012"  # no such day
    lines[2] = ";".join(cells)
    path = tmp_path / "levering-fout.csv"
    path.write_text("\r\n".join(lines), encoding="utf-8")

    resp = deliver(cluster, JSON_AGB, path.read_bytes(), CSV_MEDIA_TYPE, "row-column")
    assert resp.status_code == 200, resp.text
    (rejected,) = resp.json()["rejected"]
    assert rejected["index"] == 1 and rejected["row"] == 3 and rejected["recordId"] == "RC-1"
    assert [p["location"] for p in rejected["problems"]] == ["rij 3, kolom 'geboortedatum'"]
    assert rejected["problems"][0]["name"] == "/records/1/birthDate"
    # the receipt fetched again says the same
    with cluster.client(f"provider-{JSON_AGB}") as c:
        assert c.get("/batches/row-column").json()["rejected"] == [rejected]

    # ... and so does ttp submit, to the data officer at the terminal
    done = ttp_submit(cluster, str(path), "--provider", JSON_AGB)
    assert done.returncode == 0, done.stderr
    assert "rij 3, kolom 'geboortedatum'" in done.stdout

    # a measurement fault in an XLSX: the column of that measurement, whatever the receipt calls it
    faulty = [valid_record("RC-X", bsn="111222333", end=end, provider=JSON_AGB)]
    faulty[0]["measurements"][1]["withoutHelp"] = 7
    receipt = deliver(cluster, JSON_AGB, xlsx_bytes(faulty), XLSX_MEDIA_TYPE, "row-column-x").json()
    locations = [p.get("location") for item in record_problems(receipt) for p in item["problems"]]
    assert locations == ["rij 2, kolom 'Zonder hulp verder meting 2'"]


@pytest.mark.parametrize(
    ("media", "body", "batch_id", "code", "says"),
    [
        (CSV_MEDIA_TYPE, csv_bytes([valid_record("M-1")]).replace(b"Geboortedatum;", b"", 1), "m", "heading-missing",
         "'Geboortedatum'"),
        (CSV_MEDIA_TYPE, csv_bytes([valid_record("M-1")]).replace(b"Postcode;", b"Postcode;Naam client;", 1), "m",
         "heading-unknown", "'Naam client'"),
        (CSV_MEDIA_TYPE, csv_bytes([valid_record("M-1")]).split(b"\r\n", 1)[1], "m", "heading-row-missing",
         "not a heading row"),
        (CSV_MEDIA_TYPE, "Recordnummer;Geboortedatum\r\nM-1;1-1-2012\r\n".encode("cp1252").replace(b"1-1", b"\xe9"),
         "m", "charset-mismatch", "windows-1252"),
        (XLSX_MEDIA_TYPE, b"PK\x03\x04 this is no workbook", "m", "file-unreadable", "not a readable XLSX"),
        (XLSX_MEDIA_TYPE, zip_bomb(), "m", "file-too-large", "unpacks to more than"),
        (CSV_MEDIA_TYPE, csv_bytes([valid_record("M-1")]), None, "required", "batchId"),
    ],
    ids=["missing-heading", "unknown-heading", "no-heading-row", "not-utf8", "not-xlsx", "zip-bomb", "no-batch-id"],
)
def test_a_file_malformed_as_a_whole_is_400_naming_what_is_wrong(
    cluster: Cluster, media: str, body: bytes, batch_id: str | None, code: str, says: str
) -> None:
    before = stored_ids(cluster, XLSX_AGB)
    resp = deliver(cluster, XLSX_AGB, body, media, batch_id)
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert says in problem["detail"]
    assert [p["code"] for p in problem["invalidParams"]] == [code]
    assert "111222333" not in resp.text  # no cell value is ever repeated
    assert stored_ids(cluster, XLSX_AGB) == before


def test_a_first_row_of_data_is_not_echoed_as_headings(cluster: Cluster) -> None:
    """A file without a heading row would make every BSN and birth date a 'heading': none comes back."""
    row = csv_bytes([valid_record("E-1", bsn="111222333")]).split(b"\r\n")[1]
    resp = deliver(cluster, JSON_AGB, row.replace(b"jeugdhulp", b"Hulpvorm") + b"\r\n" + row, CSV_MEDIA_TYPE, "echo")
    assert resp.status_code == 400
    assert "111222333" not in resp.text and "1234AB" not in resp.text
    assert "naam niet herhaald" in resp.json()["detail"]


def test_the_body_limit_holds_for_files_declared_or_streamed(cluster: Cluster) -> None:
    big = csv_bytes([valid_record(f"B-{i}") for i in range(6000)])
    assert len(big) > BODY_LIMIT
    declared = deliver(cluster, JSON_AGB, big, CSV_MEDIA_TYPE, "big")
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    with cluster.client(f"provider-{JSON_AGB}") as c:
        streamed = c.post("/batches", content=chunks(), params={"batchId": "big"},
                          headers={"content-type": CSV_MEDIA_TYPE})
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"
    with cluster.client(f"provider-{JSON_AGB}") as c:
        assert c.get("/batches/big").status_code == 404


def test_a_redelivery_of_a_period_withdraws_exactly_the_record_left_out_and_logs_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    today = dt.date.today()
    period = replaceable_periods(today)[-1]  # the previous period: CBS's "herlevering"
    end = min(period_bounds(period)[1], today - dt.timedelta(days=1))
    older = previous_period(period)
    first = [valid_record(f"P-{i}", bsn=b, end=end, provider=REDELIVERY_AGB)
             for i, b in enumerate(("111222333", "123456782", "100000009", "100000010", "100000022"), start=1)]
    outside = valid_record("P-OLD", bsn="111222333", end=period_bounds(older)[1], provider=REDELIVERY_AGB)
    with cluster.client(f"provider-{REDELIVERY_AGB}") as c:
        resp = c.post("/batches", json={"batchId": "first-delivery", "records": [*first, outside]})
    assert resp.status_code == 200 and resp.json()["counts"]["accepted"] == 6, resp.text

    # The re-delivery: P-4 left out, P-2 corrected, P-5 present but now rejected (its stored version stays).
    again = copy.deepcopy([r for r in first if r["recordId"] != "P-4"])
    again[1]["measurements"][0]["satisfaction"] = 4
    again[3]["bsn"] = "123456789"
    path = tmp_path / f"herlevering-{period}.csv"
    path.write_bytes(csv_bytes(again))
    # negative control: the same file as an ordinary delivery withdraws nothing
    plain = deliver(cluster, REDELIVERY_AGB, path.read_bytes(), CSV_MEDIA_TYPE, "plain-delivery")
    assert plain.status_code == 200 and plain.json()["withdrawn"] == [], plain.text
    assert "P-4" in stored_ids(cluster, REDELIVERY_AGB)

    done = ttp_submit(cluster, str(path), "--provider", REDELIVERY_AGB, "--replace-period", period)
    assert done.returncode == 0, done.stderr
    assert "P-4" in done.stdout

    assert stored_ids(cluster, REDELIVERY_AGB) == {"P-1", "P-2", "P-3", "P-5", "P-OLD"}
    withdrawn = audit_entries(cluster, "record-withdrawn", REDELIVERY_AGB)
    assert [(e["subject"]["recordId"], e["subject"]["reason"], e["subject"]["period"]) for e in withdrawn] == [
        ("P-4", "period-redelivery", period)
    ]
    # logged with the batch that left it out, before that batch's own (proven) entry
    (batch,) = [b for b in audit_entries(cluster, "batch-received", REDELIVERY_AGB)
                if b["subject"]["batchId"] == withdrawn[0]["subject"]["batchId"]]
    assert withdrawn[0]["index"] < batch["index"]

    # the same file again: a no-op, nothing withdrawn twice, nothing logged twice
    done = ttp_submit(cluster, str(path), "--provider", REDELIVERY_AGB, "--replace-period", period)
    assert done.returncode == 0, done.stderr
    assert stored_ids(cluster, REDELIVERY_AGB) == {"P-1", "P-2", "P-3", "P-5", "P-OLD"}
    assert len(audit_entries(cluster, "record-withdrawn", REDELIVERY_AGB)) == 1


def test_a_period_older_than_the_previous_one_cannot_be_replaced(cluster: Cluster) -> None:
    today = dt.date.today()
    closed = previous_period(replaceable_periods(today)[-1])
    before = stored_ids(cluster, REDELIVERY_AGB)
    body = csv_bytes([valid_record("OLD-1", provider=REDELIVERY_AGB, end=period_bounds(closed)[1])])
    resp = deliver(cluster, REDELIVERY_AGB, body, CSV_MEDIA_TYPE, "too-old", replace=closed)
    assert resp.status_code == 409, resp.text
    problem = resp.json()
    assert problem["invalidParams"][0] == {"name": "replacePeriod", "code": "period-closed",
                                           "reason": "Only the current and the previous period can be re-delivered."}
    assert closed in problem["detail"] and "CBS" in problem["detail"]
    future = f"{today.year + 1}-H1"
    assert deliver(cluster, REDELIVERY_AGB, body, CSV_MEDIA_TYPE, "future", replace=future).status_code == 400
    assert deliver(cluster, REDELIVERY_AGB, body, CSV_MEDIA_TYPE, "bad", replace="2026-H3").status_code == 400
    assert stored_ids(cluster, REDELIVERY_AGB) == before
