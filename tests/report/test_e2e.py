"""The report service in the running system: real processes, real mTLS, real aggregate.

Records go in through ingest; the report service fetches its figures from
aggregate with its own certificate; every read, share and revoke reaches the
audit log.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.records import generated
from ttp.periods import period_of

AGB = "98000001"
THRESHOLD = 10


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home: Path = tmp_path_factory.mktemp(f"ttp-report-{request.param}")
    c = Cluster(home, backend=request.param)
    try:
        c.start()
        yield c
    finally:
        c.destroy()


@pytest.fixture(scope="module")
def period(cluster: Cluster) -> str:
    """Load a provider's records through ingest; the half year most of them ended in."""
    import datetime as dt

    records = [r for r in generated(900, seed=31, providers=(AGB, "98000002")) if r["providerAgb"] == AGB]
    with cluster.client(f"provider-{AGB}") as c:
        resp = c.post("/batches", json={"batchId": "report-e2e", "records": records})
    assert resp.status_code == 200, resp.text
    assert resp.json()["counts"]["accepted"] > 0.9 * len(records)
    ends = Counter(period_of(dt.date.fromisoformat(r["endDate"])) for r in records)
    return ends.most_common(1)[0][0]


def _report(cluster: Cluster, slug: str, period: str, variant: str, accept: str = "application/json") -> Any:
    """Read a report as a client should: on 503, wait Retry-After and ask again.

    The first read of a freshly loaded half year makes aggregate compute it, which can
    take longer than the report service waits for it.
    """
    deadline = time.monotonic() + 240
    with cluster.client(slug, "report") as c:
        while True:
            resp = c.get(f"/providers/{AGB}/reports/{period}/{variant}", headers={"Accept": accept})
            if resp.status_code != 503 or time.monotonic() > deadline:
                return resp
            time.sleep(float(resp.headers.get("retry-after", "5")))


def test_intern_report_is_aggregates_computation(cluster: Cluster, period: str) -> None:
    resp = _report(cluster, f"provider-{AGB}", period, "intern")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    with cluster.client("service-report", "aggregate") as c:
        table = c.get(f"/providers/{AGB}/outcomes", params={"period": period, "variant": "intern"})
    assert table.status_code == 200
    assert doc["cells"] == table.json()["cells"]
    assert doc["trajectories"] == table.json()["trajectories"] > 0
    assert [t["period"] for t in doc["trend"]][-1] == period


def test_deelbaar_report_shows_no_small_number(cluster: Cluster, period: str) -> None:
    resp = _report(cluster, f"provider-{AGB}", period, "deelbaar")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    cells = doc["cells"] + [c for t in doc["trend"] for c in t["cells"]]
    cells += doc["national"]["cells"] if doc["national"] else []
    assert cells
    for cell in cells:
        assert cell["n"] is None or cell["n"] == 0 or cell["n"] >= THRESHOLD, cell
    pdf = _report(cluster, f"provider-{AGB}", period, "deelbaar", "application/pdf")
    assert pdf.status_code == 200
    reader = pypdf.PdfReader(io.BytesIO(pdf.content))
    assert len(reader.pages) == 8
    assert "Jeugdzorg De Horizon" in reader.pages[0].extract_text()


def test_sharing_over_mtls_and_its_audit_trail(cluster: Cluster, period: str) -> None:
    gemeente = "gemeente-GM0363"
    assert _report(cluster, gemeente, period, "deelbaar").status_code == 403
    assert _report(cluster, "rijk", period, "deelbaar").status_code == 403
    assert _report(cluster, "provider-98000002", period, "intern").status_code == 403
    with cluster.client(f"provider-{AGB}", "report") as c:
        assert c.put(f"/providers/{AGB}/reports/{period}/shares/GM0363").status_code == 201
    html = _report(cluster, gemeente, period, "deelbaar", "text/html")
    assert html.status_code == 200 and html.text.count('class="chart"') == 6
    assert _report(cluster, gemeente, period, "intern").status_code == 403
    with cluster.client(f"provider-{AGB}", "report") as c:
        assert c.delete(f"/providers/{AGB}/reports/{period}/shares/GM0363").status_code == 204
    assert _report(cluster, gemeente, period, "deelbaar").status_code == 403

    wanted = {"share-granted", "share-revoked", "report-read"}
    found: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with cluster.client("auditor", "audit") as c:
            entries = c.get("/audit/entries", params={"provider": AGB, "period": period}).json()["entries"]
        found = {}
        for e in entries:
            found.setdefault(e["entry"]["kind"], []).append(e["entry"])
        if wanted <= set(found):
            break
        time.sleep(0.5)
    assert wanted <= set(found), sorted(found)
    reads = found["report-read"]
    assert any(r["subject"]["access"] == "share" and r["subject"]["variant"] == "deelbaar" for r in reads)
    assert found["share-granted"][0]["subject"]["gemeenteCode"] == "GM0363"
