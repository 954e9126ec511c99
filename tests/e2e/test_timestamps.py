"""Every timestamp a party receives says its time zone: RFC 3339 with ``Z`` or an offset.

``generatedAt`` in the feeds and reports used to leave as ``2026-07-01T12:00:00``
(SQLite hands timestamps back without their zone), which a gemeente's analyst
reads as Dutch local time. Here one provider delivers, annotates and shares, a
gemeente and the Rijk read their feeds, the provider reads its report as JSON,
HTML, PDF and CSV, and an auditor reads the log; every timestamp in every answer
(on both backends) must carry its offset.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pypdf
import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.records import generated, valid_record
from ttp.periods import period_of

AGB = "98000001"
#: Looks like a date and a time of day; anything like that must be RFC 3339 with an offset.
TIMESTAMP_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
#: A whole timestamp token, offset included if there is one (to check what a text document carries).
TIMESTAMP_TOKEN = re.compile(r"\d{4}-\d{2}-\d{2}[T ][0-9:.]+(?:Z|[+-]\d{2}:\d{2})?")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def timestamps(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(JSON path, value) of every string that looks like a timestamp, and of every ``...At`` field."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("At") and value is not None:
                yield f"{where}/{key}", str(value)
            elif key == "timestamp" and isinstance(value, str):
                yield f"{where}/{key}", value
            else:
                yield from timestamps(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from timestamps(value, f"{where}/{i}")
    elif isinstance(node, str) and TIMESTAMP_LIKE.match(node):
        yield where, node


def zoneless(doc: Any) -> list[tuple[str, str]]:
    return [(where, value) for where, value in timestamps(doc) if not RFC3339.match(value)]


def test_the_check_catches_the_old_zoneless_form() -> None:
    """Control: what ``generatedAt`` looked like before is caught; what it looks like now passes."""
    assert zoneless({"generatedAt": "2026-07-01T12:00:00.123456"})
    assert zoneless({"cells": [{"note": "2026-07-01 12:00:00"}]})
    assert not RFC3339.match(TIMESTAMP_TOKEN.findall("berekend 2026-07-01T12:00:00.5 in")[0])
    assert RFC3339.match(TIMESTAMP_TOKEN.findall('datetime="2026-07-01T12:00:00Z"')[0])
    assert not zoneless({"generatedAt": "2026-07-01T12:00:00.123456Z", "b": "2026-07-01T14:00:00+02:00"})
    assert not zoneless({"endDate": "2026-07-01", "revokedAt": None})


def _get(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
    """GET, waiting out the 503 of a half year aggregate is still computing."""
    deadline = time.monotonic() + 240
    while True:
        resp = client.get(url, **kwargs)
        if resp.status_code != 503 or time.monotonic() > deadline:
            assert resp.status_code == 200, f"{url}: {resp.status_code} {resp.text[:300]}"
            return resp
        time.sleep(float(resp.headers.get("retry-after", "2")))


@pytest.fixture(scope="module")
def answers(cluster: Cluster) -> dict[str, Any]:
    """What each party received in one round of normal use, by a name for each answer."""
    records = [r for r in generated(400, seed=57, providers=(AGB,)) if r["providerAgb"] == AGB]
    period = Counter(period_of(dt.date.fromisoformat(r["endDate"])) for r in records).most_common(1)[0][0]
    out: dict[str, Any] = {}
    with cluster.client(f"provider-{AGB}", "ingest") as c:
        posted = c.post("/batches", json={"batchId": "ts-1", "records": records})
        assert posted.status_code == 200, posted.text
        out["batch receipt"] = posted.json()
        out["receipt read again"] = _get(c, "/batches/ts-1").json()
        one = valid_record("ts-withdrawn", bsn="111222333")
        assert c.post("/batches", json={"batchId": "ts-2", "records": [one]}).status_code == 200
        withdrawal = c.post("/consent-withdrawals", json={
            "bsn": one["bsn"], "trajectoryId": one["trajectoryId"], "withdrawnOn": dt.date.today().isoformat()})
        assert withdrawal.status_code == 200, withdrawal.text
        out["withdrawal receipt"] = withdrawal.json()
    base = f"/providers/{AGB}/reports/{period}"
    with cluster.client(f"provider-{AGB}", "report") as c:
        put = c.put(f"{base}/annotations", json={"annotations": [
            {"indicator": "uitval", "story": "Minder uitval na de nieuwe intake."}]})
        assert put.status_code == 200, put.text
        out["annotations saved"] = put.json()
        out["annotations"] = _get(c, f"{base}/annotations").json()
        assert c.put(f"{base}/shares/GM0363").status_code == 201
        out["shares"] = _get(c, f"{base}/shares").json()
        out["report json"] = _get(c, f"{base}/intern").json()
        out["report html"] = _get(c, f"{base}/intern", headers={"Accept": "text/html"}).text
        out["report pdf"] = _get(c, f"{base}/deelbaar", headers={"Accept": "application/pdf"}).content
        out["report csv"] = _get(c, f"{base}/intern", headers={"Accept": "text/csv"}).text
    with cluster.client("gemeente-GM0363", "report") as c:
        out["shared with the gemeente"] = _get(c, "/gemeenten/GM0363/shared-reports").json()
    with cluster.client("gemeente-GM0363", "aggregate") as c:
        out["gemeente feed"] = _get(c, "/gemeenten/GM0363/outcomes", params={"period": period}).json()
    with cluster.client("rijk", "aggregate") as c:
        out["rijk feed"] = _get(c, "/rijk/outcomes", params={"period": period}).json()
    with cluster.client("auditor", "audit") as c:
        out["audit entries"] = _get(c, "/audit/entries").json()
        out["checkpoint"] = _get(c, "/audit/checkpoint").text
        out["inclusion proof"] = _get(c, "/audit/proofs/inclusion", params={"leafIndex": 0}).json()
        out["consent report"] = _get(c, "/audit/consent-report", params={"provider": AGB}).json()
    return out


JSON_ANSWERS = ("batch receipt", "receipt read again", "withdrawal receipt", "annotations saved", "annotations",
                "shares", "report json", "shared with the gemeente", "gemeente feed", "rijk feed",
                "audit entries", "inclusion proof", "consent report")


@pytest.mark.parametrize("name", JSON_ANSWERS)
def test_every_timestamp_in_a_json_answer_has_an_offset(answers: dict[str, Any], name: str) -> None:
    bad = zoneless(answers[name])
    assert not bad, f"{name}: timestamps without a time zone: {bad[:5]}"


def test_the_timestamps_people_ask_about_are_all_there(answers: dict[str, Any]) -> None:
    """Not vacuous: the fields the parties read are among those checked, each with a zone."""
    seen = {where.rsplit("/", 1)[-1] for name in JSON_ANSWERS for where, _ in timestamps(answers[name])}
    assert {"generatedAt", "receivedAt", "updatedAt", "grantedAt", "firstGrantedAt"} <= seen, seen
    for name in ("gemeente feed", "rijk feed", "report json"):
        assert RFC3339.match(answers[name]["generatedAt"]), answers[name]["generatedAt"]


def test_the_checkpoint_time_line_is_utc(answers: dict[str, Any]) -> None:
    lines = [line for line in answers["checkpoint"].splitlines() if line.startswith("time ")]
    assert len(lines) == 1 and RFC3339.match(lines[0].removeprefix("time ")), answers["checkpoint"]
    assert lines[0].endswith("Z")


def test_the_html_report_gives_each_time_in_rfc3339_and_its_offset(answers: dict[str, Any]) -> None:
    html: str = answers["report html"]
    machine = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', html)
    assert len(machine) >= 2, "generatedAt and the annotation's updatedAt"  # both are in the intern report
    for stamp, text in machine:
        assert RFC3339.match(stamp) and stamp.endswith("Z"), stamp
        assert re.search(r"\(UTC[+-]\d{2}:\d{2}\)$", text), text
    assert not [s for s in TIMESTAMP_TOKEN.findall(html) if not RFC3339.match(s)]


def test_the_pdf_report_says_the_offset_of_its_times(answers: dict[str, Any]) -> None:
    reader = pypdf.PdfReader(io.BytesIO(answers["report pdf"]))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Cijfers berekend op" in text
    # The label and its value are two table cells; the value may wrap before its offset.
    assert re.search(r"\d{1,2} \w+ \d{4}, \d{2}:\d{2}\s*\(UTC[+-]\d{2}:\d{2}\)", text), text[:800]
    created = str(reader.metadata.get("/CreationDate", "")) if reader.metadata else ""
    assert re.match(r"^D:\d{14}(Z|[+-]\d{2}'\d{2}'?)", created), created


def test_the_csv_report_carries_no_zoneless_time(answers: dict[str, Any]) -> None:
    csv_text: str = answers["report csv"]
    assert csv_text.count("\n") > 10
    assert not [s for s in TIMESTAMP_TOKEN.findall(csv_text) if not RFC3339.match(s)]
