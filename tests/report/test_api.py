"""The report API as each party sees it, on SQLite and PostgreSQL: formats by Accept,
who may read which variant, sharing and revoking, annotations, and the audit trail."""

from __future__ import annotations

import io

import pypdf

from tests.report.conftest import AGB, PERIOD, ReportEnv
from tests.report.factory import provider_tables
from ttp.outcomes import OutcomeTable

REPORT = f"/v1/providers/{AGB}/reports/{PERIOD}"
OWNER = f"provider-{AGB}"


def _share(env: ReportEnv, gemeente: str = "GM0363") -> int:
    status: int = env.client(OWNER).put(f"{REPORT}/shares/{gemeente}").status_code
    return status


def test_provider_reads_its_intern_report_equal_to_the_computation(report_env: ReportEnv) -> None:
    resp = report_env.client(OWNER).get(f"{REPORT}/intern")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["api-version"]
    assert resp.headers["cache-control"] == "private, no-store"
    doc = resp.json()
    table: OutcomeTable = report_env.figures.provider[(AGB, PERIOD, "intern")]
    assert doc["cells"] == [c.model_dump(mode="json") for c in table.cells]
    assert doc["trajectories"] == table.trajectories
    assert doc["providerName"] == "Jeugdzorg De Horizon"
    read = [e for e in report_env.sink.durable if e.kind == "report-read"]
    assert read and read[-1].subject["variant"] == "intern" and read[-1].subject["access"] == "own"


def test_format_follows_accept(report_env: ReportEnv) -> None:
    client = report_env.client(OWNER)
    pdf = client.get(f"{REPORT}/deelbaar", headers={"Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"]
    assert len(pypdf.PdfReader(io.BytesIO(pdf.content)).pages) == 8
    html = client.get(f"{REPORT}/deelbaar",
                      headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert html.text.count('class="chart"') == 6
    csv = client.get(f"{REPORT}/deelbaar", headers={"Accept": "text/csv;q=0.9, application/pdf;q=0.1"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert client.get(f"{REPORT}/deelbaar", headers={"Accept": "*/*"}).headers[
        "content-type"] == "application/json"
    refused = client.get(f"{REPORT}/deelbaar", headers={"Accept": "image/png"})
    assert refused.status_code == 406
    assert refused.headers["content-type"] == "application/problem+json"
    assert {e.subject["format"] for e in report_env.sink.durable if e.kind == "report-read"} == {
        "pdf", "html", "csv", "json"}


def test_etag_answers_304_and_changes_with_the_figures(report_env: ReportEnv) -> None:
    client = report_env.client(OWNER)
    first = client.get(f"{REPORT}/intern")
    etag = first.headers["etag"]
    again = client.get(f"{REPORT}/intern", headers={"If-None-Match": etag})
    assert again.status_code == 304
    report_env.figures.add_provider(AGB, PERIOD, count=170, seed=77)
    report_env.app.state.figures.clear()
    changed = client.get(f"{REPORT}/intern", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["trajectories"] == 170


def test_who_may_not_read(report_env: ReportEnv) -> None:
    for slug in ("provider-98000002", "gemeente-GM0363", "rijk", "auditor", None):
        resp = report_env.client(slug).get(f"{REPORT}/deelbaar")
        assert resp.status_code == 403, slug
        assert resp.headers["content-type"] == "application/problem+json"
    assert report_env.client("provider-98000002").get(f"{REPORT}/intern").status_code == 403
    refusals = [e for e in report_env.sink.soon if e.kind == "refusal"]
    assert len(refusals) >= 6
    assert "report-read" not in report_env.sink.kinds()


def test_share_read_list_revoke(report_env: ReportEnv) -> None:
    env = report_env
    gm = env.client("gemeente-GM0363")
    assert _share(env) == 201
    granted = [e for e in env.sink.durable if e.kind == "share-granted"]
    assert len(granted) == 1 and granted[0].subject["gemeenteCode"] == "GM0363"
    assert _share(env) == 200  # idempotent: no second entry
    assert len([e for e in env.sink.durable if e.kind == "share-granted"]) == 1

    listed = gm.get("/v1/gemeenten/GM0363/shared-reports").json()["shares"]
    assert [(s["providerId"], s["period"], s["active"]) for s in listed] == [(AGB, PERIOD, True)]
    assert listed[0]["href"] == f"{REPORT}/deelbaar"

    read = gm.get(f"{REPORT}/deelbaar", headers={"Accept": "application/pdf"})
    assert read.status_code == 200
    assert gm.get(f"{REPORT}/intern").status_code == 403  # never the intern variant
    last = [e for e in env.sink.durable if e.kind == "report-read"][-1]
    assert last.actorOin != "" and last.subject["access"] == "share"

    # another gemeente sees nothing of it
    other = env.client("gemeente-GM0599")
    assert other.get("/v1/gemeenten/GM0599/shared-reports").json()["shares"] == []
    assert other.get("/v1/gemeenten/GM0363/shared-reports").status_code == 403
    assert other.get(f"{REPORT}/deelbaar").status_code == 403
    assert env.client("rijk").get("/v1/gemeenten/GM0363/shared-reports").status_code == 403

    # the provider sees its shares
    mine = env.client(OWNER).get(f"{REPORT}/shares").json()["shares"]
    assert [s["gemeenteCode"] for s in mine] == ["GM0363"]

    assert env.client(OWNER).delete(f"{REPORT}/shares/GM0363").status_code == 204
    assert [e.kind for e in env.sink.durable][-1] == "share-revoked"
    assert gm.get(f"{REPORT}/deelbaar").status_code == 403
    assert gm.get("/v1/gemeenten/GM0363/shared-reports").json()["shares"] == []
    assert env.client(OWNER).delete(f"{REPORT}/shares/GM0363").status_code == 404
    # sharing again works and is logged again
    assert _share(env) == 201
    assert len([e for e in env.sink.durable if e.kind == "share-granted"]) == 2


def test_only_the_provider_shares_and_only_with_registered_gemeenten(report_env: ReportEnv) -> None:
    env = report_env
    assert env.client("provider-98000002").put(f"{REPORT}/shares/GM0363").status_code == 403
    assert env.client("gemeente-GM0363").put(f"{REPORT}/shares/GM0363").status_code == 403
    unknown = env.client(OWNER).put(f"{REPORT}/shares/GM9999")
    assert unknown.status_code == 400
    assert unknown.json()["invalidParams"][0]["name"] == "gemeenteCode"
    assert env.client(OWNER).put(f"{REPORT}/shares/0363").status_code == 400
    assert not any(e.kind == "share-granted" for e in env.sink.durable)


def test_a_share_the_audit_log_did_not_take_is_not_made(report_env: ReportEnv) -> None:
    env = report_env
    env.sink.fail = True
    resp = env.client(OWNER).put(f"{REPORT}/shares/GM0363")
    assert resp.status_code == 503 and resp.headers["retry-after"]
    assert env.client("gemeente-GM0363").get(f"{REPORT}/deelbaar").status_code == 403
    assert env.client(OWNER).get(f"{REPORT}/shares").json()["shares"] == []
    env.sink.fail = False
    assert _share(env) == 201
    env.sink.fail = True
    assert env.client(OWNER).delete(f"{REPORT}/shares/GM0363").status_code == 503
    assert env.client("gemeente-GM0363").get(f"{REPORT}/deelbaar").status_code == 200


def test_disclosure_check_sees_every_share_and_what_was_served(report_env: ReportEnv) -> None:
    env = report_env
    _share(env, "GM0363")
    _share(env, "GM0599")
    served = env.client("gemeente-GM0363").get(f"{REPORT}/deelbaar").json()
    env.client(OWNER).delete(f"{REPORT}/shares/GM0363")
    service = env.client("service-aggregate")
    records = service.get("/v1/shares").json()["shares"]
    by_gm = {r["gemeenteCode"]: r for r in records}
    assert set(by_gm) == {"GM0363", "GM0599"}
    assert by_gm["GM0363"]["active"] is False and by_gm["GM0363"]["revokedAt"]
    assert by_gm["GM0599"]["disclosedVersions"] == []
    versions = by_gm["GM0363"]["disclosedVersions"]
    assert [v["dataVersion"] for v in versions] == [served["dataVersion"]]
    snap = service.get(versions[0]["href"])
    assert snap.status_code == 200
    figures = snap.json()
    assert figures["cells"] == served["cells"] and "annotations" not in figures
    assert service.get("/v1/shares", params={"gemeenteCode": "GM0599"}).json()["shares"][0][
        "gemeenteCode"] == "GM0599"
    # the check may read the shareable variant of a (once) shared report, never the intern one
    assert service.get(f"{REPORT}/deelbaar").status_code == 200
    assert service.get(f"{REPORT}/intern").status_code == 403
    for slug in (OWNER, "gemeente-GM0363", "rijk", "auditor"):
        assert env.client(slug).get("/v1/shares").status_code == 403
        assert env.client(slug).get(versions[0]["href"]).status_code == 403


def test_annotations_appear_in_both_variants_and_are_audited_without_text(report_env: ReportEnv) -> None:
    env = report_env
    owner = env.client(OWNER)
    body = {"annotations": [{
        "indicator": "tevredenheid",
        "story": "De respons bij ouders steeg na de digitale vragenlijst.",
        "recognition": "Ja.", "needs": "Een vaste contactpersoon per gezin.",
    }]}
    resp = owner.put(f"{REPORT}/annotations", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["annotations"][0]["story"].startswith("De respons")
    event = [e for e in env.sink.durable if e.kind == "annotation-changed"][-1]
    assert event.subject["indicators"] == ["tevredenheid"]
    assert "respons" not in str(event.subject)
    for variant in ("intern", "deelbaar"):
        doc = owner.get(f"{REPORT}/{variant}").json()
        assert doc["annotations"][0]["needs"] == "Een vaste contactpersoon per gezin."
    assert "vaste contactpersoon" in owner.get(f"{REPORT}/deelbaar",
                                               headers={"Accept": "text/html"}).text
    _share(env)
    shared = env.client("gemeente-GM0363").get(f"{REPORT}/deelbaar").json()
    assert shared["annotations"][0]["recognition"] == "Ja."
    # the same set again changes nothing and logs nothing
    count = len(env.sink.durable)
    assert owner.put(f"{REPORT}/annotations", json=body).status_code == 200
    assert len(env.sink.durable) == count
    # an empty set clears
    assert owner.put(f"{REPORT}/annotations", json={"annotations": []}).json()["annotations"] == []
    assert owner.get(f"{REPORT}/annotations").json()["annotations"] == []


def test_annotations_refuse_personal_data_and_bad_input(report_env: ReportEnv) -> None:
    owner = report_env.client(OWNER)
    bad = [
        {"indicator": "uitval", "story": "Client 123456782 stopte."},  # passes the 11-proef
        {"indicator": "uitval", "story": "Woont op 1234 AB."},
        {"indicator": "onbekend", "story": "x"},
        {"indicator": "uitval", "story": "x", "extra": "y"},
        {"indicator": "uitval", "story": "   "},
        {"indicator": "uitval", "story": "x" * 4001},
    ]
    for item in bad:
        resp = owner.put(f"{REPORT}/annotations", json={"annotations": [item]})
        assert resp.status_code == 400, item
        problem = resp.json()
        assert problem["invalidParams"]
        assert "123456782" not in resp.text and "1234 AB" not in resp.text
    twice = {"annotations": [{"indicator": "uitval", "story": "a"}, {"indicator": "uitval", "story": "b"}]}
    assert owner.put(f"{REPORT}/annotations", json=twice).status_code == 400
    # a nine-digit number that is not a BSN is fine
    ok = owner.put(f"{REPORT}/annotations",
                   json={"annotations": [{"indicator": "uitval", "story": "Ticket 123456789."}]})
    assert ok.status_code == 200
    other = report_env.client("provider-98000002")
    assert other.put(f"{REPORT}/annotations", json={"annotations": []}).status_code == 403
    assert other.get(f"{REPORT}/annotations").status_code == 403
    assert not any(e.kind == "annotation-changed" and e.actorOin == "" for e in report_env.sink.durable)


def test_errors_are_problems(report_env: ReportEnv) -> None:
    owner = report_env.client(OWNER)
    assert owner.get(f"/v1/providers/{AGB}/reports/2030-H1/intern").status_code == 404
    assert owner.get(f"/v1/providers/{AGB}/reports/2026-H3/intern").status_code == 400
    assert owner.get(f"{REPORT}/geheim").status_code == 400
    # a shareable table that breaks the small-number rule is withheld, not served
    _, deelbaar = provider_tables(AGB, PERIOD, seed=5)
    leak = next(c for c in deelbaar.cells if c.status == "suppressed")
    leak.status, leak.n, leak.responses, leak.value = "ok", 3, 3, 0.5
    report_env.figures.provider[(AGB, PERIOD, "deelbaar")] = deelbaar
    report_env.app.state.figures.clear()
    resp = owner.get(f"{REPORT}/deelbaar")
    assert resp.status_code == 502 and resp.headers["content-type"] == "application/problem+json"


def test_unavailable_aggregate_is_503(report_env: ReportEnv) -> None:
    from services.report.figures import FiguresUnavailableError

    async def down(*_args: object) -> None:
        raise FiguresUnavailableError("down")

    report_env.figures.provider_outcomes = down  # type: ignore[method-assign,assignment]
    report_env.app.state.figures.clear()
    resp = report_env.client(OWNER).get(f"{REPORT}/intern")
    assert resp.status_code == 503 and resp.headers["retry-after"]


def test_report_read_that_cannot_be_logged_answers_503_and_serves_nothing(report_env: ReportEnv) -> None:
    """Issue 15 part 4: the audit log cannot write and the local spool is full: no report leaves."""
    report_env.sink.fail = True
    spool = report_env.app.state.read_log.spool
    spool.max_entries = spool.pending
    for accept in ("application/json", "text/csv", "application/pdf"):
        resp = report_env.client(OWNER).get(f"{REPORT}/intern", headers={"Accept": accept})
        assert resp.status_code == 503, accept
        assert resp.headers["content-type"] == "application/problem+json"
        assert int(resp.headers["retry-after"]) > 0
        assert "cells" not in resp.json()
    assert "report-read" not in report_env.sink.kinds()
