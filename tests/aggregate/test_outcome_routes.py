"""The outcome routes: each output reachable only by its owner, protected, in JSON and CSV."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io

from sqlalchemy import select

from services.aggregate.aggregate_models import AggregatePeriod
from services.aggregate.recompute import mark_dirty
from tests.aggregate.conftest import PERIOD, AggregateEnv
from tests.aggregate.factory import Row, insert_rows
from ttp.outcomes import OutcomeTable

THRESHOLD = 10


def assert_protected(table: OutcomeTable) -> None:
    """No third-party figure with fewer than the threshold; hidden cells carry nothing."""
    for cell in table.cells:
        # A volgens-plan sub-figure has its own n (the trajectories ended volgens plan, seed-faithful;
        # it used to repeat the population's n): none at all, or withheld beside a withheld value.
        own_n = (cell.variant or "").startswith("volgensPlan")
        if cell.status == "suppressed":
            assert (cell.n, cell.responses, cell.value, cell.distribution) == (None, None, None, None)
        elif own_n:
            assert cell.n in (None, 0) or cell.n >= THRESHOLD, cell
            assert (cell.n is None) == (cell.status == "too-few-responses"), cell
        else:
            assert cell.n is not None and cell.n >= THRESHOLD, cell
        if cell.status == "too-few-responses":  # few answers, or withheld so those cannot be derived
            assert cell.value is None and cell.distribution is None
            assert own_n or (cell.responses is not None and cell.responses > 0)
        if cell.status == "ok" and cell.indicator != "uitval" and not cell.variant:
            assert cell.responses is not None and cell.responses >= THRESHOLD, cell
        assert cell.status not in ("suppressed-primary", "suppressed-secondary")


def test_gemeente_reads_its_own_residents_per_pc4_and_care_type(aggregate_env: AggregateEnv) -> None:
    resp = aggregate_env.client("gemeente-GM0363").get(
        "/v1/gemeenten/GM0363/outcomes", params={"period": PERIOD})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    table = OutcomeTable.model_validate_json(resp.content)
    assert (table.scope.kind, table.scope.code, table.variant) == ("gemeente", "GM0363", "feed")
    assert_protected(table)
    population = [c for c in table.cells if c.indicator == "uitval"]
    pc4s = {c.breakdown["pc4"] for c in population if "pc4" in c.breakdown}
    assert pc4s == {f"10{i:02d}" for i in range(11, 23)}  # its own PC4 areas only
    assert all("gemeente" not in c.breakdown for c in table.cells)
    total = next(c for c in population if not c.breakdown)
    assert total.n == table.trajectories and total.n is not None and total.n > 500
    assert {c.breakdown.get("hulpvorm") for c in population} >= {"01", "02", "04"}
    assert any(c.status == "suppressed" for c in population)  # a PC4 x access cell is small
    assert any(c.status == "ok" and "pc4" in c.breakdown for c in population)
    reads = aggregate_env.sink.of("feed-read")
    assert reads and reads[-1].subject == {"service": "aggregate", "feed": "gemeente",
                                           "gemeente": "GM0363", "period": PERIOD}


def test_gemeente_asking_for_another_gemeente_gets_403_and_it_is_logged(aggregate_env: AggregateEnv) -> None:
    resp = aggregate_env.client("gemeente-GM0363").get(
        "/v1/gemeenten/GM0599/outcomes", params={"period": PERIOD})
    assert resp.status_code == 403
    assert resp.headers["content-type"].startswith("application/problem+json")
    refusals = aggregate_env.sink.of("refusal")
    assert refusals and refusals[-1].subject["route"] == "/v1/gemeenten/{gemeenteCode}/outcomes"
    assert refusals[-1].subject["params"] == {"gemeenteCode": "GM0599", "period": PERIOD}
    assert not aggregate_env.sink.of("feed-read")


def test_each_feed_only_for_its_role(aggregate_env: AggregateEnv) -> None:
    wrong = [
        ("rijk", "/v1/gemeenten/GM0363/outcomes", {}),
        ("provider-98000001", "/v1/gemeenten/GM0363/outcomes", {}),
        ("gemeente-GM0363", "/v1/rijk/outcomes", {}),
        ("provider-98000001", "/v1/rijk/outcomes", {}),
        ("provider-98000001", "/v1/providers/98000001/outcomes", {"variant": "intern"}),
        ("gemeente-GM0363", "/v1/providers/98000001/outcomes", {"variant": "deelbaar"}),
        ("gemeente-GM0363", "/v1/national/outcomes", {}),
        ("auditor", "/v1/rijk/outcomes", {}),
        (None, "/v1/rijk/outcomes", {}),
    ]
    for slug, path, extra in wrong:
        resp = aggregate_env.client(slug).get(path, params={"period": PERIOD, **extra})
        assert resp.status_code == 403, (slug, path)
    ok = [
        ("rijk", "/v1/rijk/outcomes", {}),
        ("service-report", "/v1/providers/98000001/outcomes", {"variant": "intern"}),
        ("service-report", "/v1/providers/98000001/outcomes", {"variant": "deelbaar"}),
        ("service-report", "/v1/national/outcomes", {}),
    ]
    for slug, path, extra in ok:
        resp = aggregate_env.client(slug).get(path, params={"period": PERIOD, **extra})
        assert resp.status_code == 200, (slug, path, resp.text)


def test_rijk_sees_every_gemeente_and_the_national_totals(aggregate_env: AggregateEnv) -> None:
    resp = aggregate_env.client("rijk").get("/v1/rijk/outcomes", params={"period": PERIOD})
    table = OutcomeTable.model_validate_json(resp.content)
    assert_protected(table)
    population = [c for c in table.cells if c.indicator == "uitval"]
    assert {c.breakdown["gemeente"] for c in population if "gemeente" in c.breakdown} >= set(
        ["GM0363", "GM0599", "GM0344"])
    assert not any("pc4" in c.breakdown for c in population)
    national = next(c for c in population if not c.breakdown)
    assert national.n == table.trajectories
    per_gemeente = [c for c in population if set(c.breakdown) == {"gemeente"} and c.n is not None]
    # every shown count is perturbed by at most 3 (cell-key method), so the parts add up to the
    # national total within that noise, and never to more than the total plus it
    assert sum(c.n or 0 for c in per_gemeente) <= (national.n or 0) + 3 * (len(per_gemeente) + 1)
    assert aggregate_env.sink.of("feed-read")[-1].subject["feed"] == "rijk"


def test_provider_intern_has_every_number_and_deelbaar_is_protected(aggregate_env: AggregateEnv) -> None:
    client = aggregate_env.client("service-report")
    intern = OutcomeTable.model_validate_json(client.get(
        "/v1/providers/98000001/outcomes", params={"period": PERIOD, "variant": "intern"}).content)
    shared = OutcomeTable.model_validate_json(client.get(
        "/v1/providers/98000001/outcomes", params={"period": PERIOD, "variant": "deelbaar"}).content)
    assert intern.variant == "intern" and shared.variant == "deelbaar"
    small = [c for c in intern.cells if c.indicator == "uitval" and c.n is not None and 0 < c.n < THRESHOLD]
    assert small, "the internal report shows small numbers"
    assert not any(c.status == "suppressed" for c in intern.cells)
    assert any(c.breakdown.get("gemeente") for c in intern.cells)  # per gemeente, internally only
    assert not any("gemeente" in c.breakdown or "ageBand" in c.breakdown for c in shared.cells)
    assert_protected(shared)


def test_csv_by_accept_header(aggregate_env: AggregateEnv) -> None:
    resp = aggregate_env.client("gemeente-GM0363").get(
        "/v1/gemeenten/GM0363/outcomes", params={"period": PERIOD}, headers={"Accept": "text/csv"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert rows and rows[0]["period"] == PERIOD and rows[0]["scopeCode"] == "GM0363"
    hidden = [r for r in rows if r["status"] == "suppressed"]
    assert hidden and all(r["n"] == "" and r["value"] == "" for r in hidden)
    shown = [r for r in rows if r["status"] == "ok" and r["indicator"] == "uitval"]
    assert all(int(r["n"]) >= THRESHOLD for r in shown)
    bad = aggregate_env.client("gemeente-GM0363").get(
        "/v1/gemeenten/GM0363/outcomes", params={"period": PERIOD}, headers={"Accept": "application/pdf"})
    assert bad.status_code == 406


def test_period_checks(aggregate_env: AggregateEnv) -> None:
    client = aggregate_env.client("gemeente-GM0363")
    bad = client.get("/v1/gemeenten/GM0363/outcomes", params={"period": "2026-H3"})
    assert bad.status_code == 400 and bad.json()["invalidParams"]
    current = f"{dt.date.today().year}-H{1 if dt.date.today().month <= 6 else 2}"
    assert client.get("/v1/gemeenten/GM0363/outcomes", params={"period": current}).status_code == 404
    assert client.get("/v1/gemeenten/GM0363/outcomes", params={"period": "2019-H1"}).status_code == 404


def test_a_committed_batch_marks_the_period_stale_and_the_next_read_sees_it(aggregate_env: AggregateEnv) -> None:
    client = aggregate_env.client("rijk")
    before = OutcomeTable.model_validate_json(client.get("/v1/rijk/outcomes", params={"period": PERIOD}).content)
    extra = [Row(f"late-{i}", 900_000 + i, dt.date(2026, 5, 1), gemeente="GM0363", pc4="1011")
             for i in range(12)]
    insert_rows(aggregate_env.engine, extra)
    with aggregate_env.engine.begin() as conn:
        mark_dirty(conn, {PERIOD})
        state = conn.execute(select(AggregatePeriod.__table__).where(
            AggregatePeriod.__table__.c.period == PERIOD)).mappings().one()
        assert state["dirty_seq"] > state["computed_seq"]
    after = OutcomeTable.model_validate_json(client.get("/v1/rijk/outcomes", params={"period": PERIOD}).content)
    # 12 more trajectories, seen through the cell-key noise of at most 3 on each total
    assert abs((after.trajectories or 0) - (before.trajectories or 0) - 12) <= 6


def test_feed_read_with_the_log_down_and_the_spool_full_answers_503_and_serves_nothing(
    aggregate_env: AggregateEnv,
) -> None:
    """Issue 15 part 4: with the audit log unable to write, a feed read that cannot be logged is not served."""
    client = aggregate_env.client("gemeente-GM0363")
    assert client.get("/v1/gemeenten/GM0363/outcomes", params={"period": PERIOD}).status_code == 200
    aggregate_env.sink.fail = True
    spool = aggregate_env.app.state.read_log.spool
    spool.max_entries = spool.pending  # the local spool is full: neither place can take the entry
    for path in ("/v1/gemeenten/GM0363/outcomes", "/v1/rijk/outcomes"):
        slug = "gemeente-GM0363" if "gemeenten" in path else "rijk"
        resp = aggregate_env.client(slug).get(path, params={"period": PERIOD})
        assert resp.status_code == 503, path
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert int(resp.headers["retry-after"]) > 0
        assert "cells" not in resp.text and "trajectories" not in resp.json()
    assert len(aggregate_env.sink.of("feed-read")) == 1  # only the read that was served


def test_feed_read_with_the_log_down_is_served_once_spooled_and_logged_when_the_log_is_back(
    aggregate_env: AggregateEnv,
) -> None:
    aggregate_env.sink.fail = True
    gemeente = aggregate_env.client("gemeente-GM0363").get("/v1/gemeenten/GM0363/outcomes", params={"period": PERIOD})
    rijk = aggregate_env.client("rijk").get("/v1/rijk/outcomes", params={"period": PERIOD})
    assert gemeente.status_code == rijk.status_code == 200
    read_log = aggregate_env.app.state.read_log
    assert read_log.spool.pending == 2 and not aggregate_env.sink.of("feed-read")
    aggregate_env.sink.fail = False
    assert asyncio.run(read_log.flush(20.0))  # the delivery empties the spool into the log, in order
    assert [e.subject["feed"] for e in aggregate_env.sink.of("feed-read")] == ["gemeente", "rijk"]
