"""Every basisset indicator on a hand-made store whose right answers are worked out here.

The store holds the trajectories of seven people in gemeente GM0363 at two
providers. Six trajectories end in 2026-H1 (the period under test); the
others are later trajectories of the same people, the "new starts" of 3.2.
Each expected number below is derived by hand in the comment beside it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from services.aggregate import columnar
from services.aggregate.cells import GEMEENTE_VIEWS, INTERN_VIEWS
from services.aggregate.disclosure import Protection
from services.aggregate.feeds import Output, build_table, window_end
from services.aggregate.indicators import Facts, add_months_py, compute_facts
from services.aggregate.recompute import recompute
from tests.aggregate.factory import M, Row, dense_rows, insert_rows, store_engine
from ttp.outcomes import Cell, OutcomeTable

PERIOD = "2026-H1"
A, B = "98000001", "98000002"
D = dt.date
LATER = D(2028, 1, 1)  # every 3.2 window of 2026-H1 has passed

ROWS = [
    # person 1: drops out (03) at A; starts again at B on 15 July, inside every window.
    Row("t1", 1, D(2026, 2, 10), provider=A, reason="03", age=14, measurements=[
        M("jeugdige", satisfaction=8, without_help=3, problem_change="matige-verbetering", goal_overall=1),
        M("ouder", satisfaction=6, without_help=2),
    ]),
    Row("t4", 1, D(2026, 12, 1), start=D(2026, 7, 15), provider=B),
    # person 2: ends per plan at A on 31 March; new start at B on 15 November: after the
    # 6-month window (ends 30 September) but inside the next half year and 12 months.
    Row("t2", 2, D(2026, 3, 31), provider=A, reason="01", age=16, measurements=[
        M("jeugdige", satisfaction=10, without_help=4, problem_change="sterke-verbetering", goals=(2, 1, -1)),
    ]),
    Row("t5", 2, D(2027, 1, 20), start=D(2026, 11, 15), provider=B),
    # person 3: vrij toegankelijk (wijkteam) per plan at B on 30 June, no measurement. A
    # trajectory starting that same day is not a *new* start (strictly after); the next
    # one starts 1 July 2027, one day after the 12-month window.
    Row("t3", 3, D(2026, 6, 30), provider=B, free=True, hulpvorm="01", reason="01", age=9),
    Row("t6", 3, D(2026, 9, 1), start=D(2026, 6, 30), provider=A),
    Row("t7", 3, D(2027, 8, 1), start=D(2027, 7, 1), provider=A),
    # person 4: ends early by agreement (02), BSN unknown; no new jeugdhulp, but a
    # jeugdbescherming trajectory starts on 1 June: not a new start of jeugdhulp (3.2).
    Row("t8", 4, D(2026, 5, 5), provider=A, reason="02", bsn_known=False, age=17),
    Row("t13", 4, D(2026, 12, 1), start=D(2026, 6, 1), provider=B, sector="jeugdbescherming"),
    # person 5: per plan on 31 March; new start on 30 September, the last day of the
    # 6-month window (31 March + 6 months = 30 September: month ends are clamped).
    Row("t9", 5, D(2026, 3, 31), provider=B, reason="01", age=4),
    Row("t10", 5, D(2026, 12, 31), start=D(2026, 9, 30), provider=A),
    # person 6: ends 31 March; new start on 1 October, one day too late for 6 months.
    Row("t11", 6, D(2026, 3, 31), provider=A, reason="05", age=4),
    Row("t12", 6, D(2026, 12, 31), start=D(2026, 10, 1), provider=B),
]


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = store_engine(db_url)
    insert_rows(eng, ROWS)
    recompute(eng, PERIOD, Protection(), force=True)
    return eng


def table(engine: Engine, views: tuple[tuple[int, int, int, int], ...], kind: str = "gemeente",
          code: str = "GM0363", as_of: dt.date = LATER) -> OutcomeTable:
    """The internal (unsuppressed) table: small hand-made numbers would all be hidden otherwise."""
    with engine.connect() as conn:
        return build_table(conn, PERIOD, Output(kind, code, "intern", views), threshold=10,
                           as_of=as_of, generated_at=dt.datetime.now(dt.UTC))


def cell(t: OutcomeTable, indicator: str, variant: str | None = None, **breakdown: str) -> Cell:
    found = [c for c in t.cells if c.indicator == indicator and c.variant == variant
             and c.breakdown == breakdown]
    assert len(found) == 1, (indicator, variant, breakdown, len(found))
    return found[0]


def test_uitval_counts_reason_03_among_all_ended(engine: Engine) -> None:
    t = table(engine, GEMEENTE_VIEWS)
    # Ended in 2026-H1: t1, t2, t3, t8, t9, t11 = 6; reason 03 only t1.
    c = cell(t, "uitval")
    # Registered for every trajectory, not asked: no response count (SPEC: "uitval and 3.2
    # have no response rate"; it used to carry responses = n, shown as "respons 100%").
    assert (c.n, c.responses, c.eligible) == (6, None, None)
    assert c.value == pytest.approx(1 / 6, abs=1e-4)
    assert c.distribution == {"01": 3, "02": 1, "03": 1, "04": 0, "05": 1}
    assert t.trajectories == 6 and t.withoutBsn == 1


def test_no_bsn_and_unborn_child_are_counted_apart(db_url: str) -> None:
    """SPEC, after the CBS Informatieprotocol: "000000000 = no or unknown BSN, 999999999 =
    unborn child; both use the fallback key ... and are counted apart"."""
    eng = store_engine(db_url)
    insert_rows(eng, [
        Row("k1", 1, D(2026, 3, 1)),
        Row("n1", 2, D(2026, 3, 1), bsn_known=False),
        Row("n2", 3, D(2026, 4, 1), bsn_known=False),
        Row("u1", 4, D(2026, 5, 1), bsn_known=False, unborn=True, age=0),
    ])
    recompute(eng, PERIOD, Protection(), force=True)
    t = table(eng, GEMEENTE_VIEWS)
    assert (t.trajectories, t.withoutBsn, t.unborn) == (4, 2, 1)


def test_tevredenheid_mean_and_distribution_per_informant(engine: Engine) -> None:
    t = table(engine, GEMEENTE_VIEWS)
    young = cell(t, "tevredenheid", informant="jeugdige")
    # jeugdige answered 8 (t1) and 10 (t2): mean 9.
    assert (young.n, young.responses, young.value, young.status) == (6, 2, 9.0, "ok")
    # Seed 001: a jeugdige fills in from 12 ("<12 jaar: ouders vullen in"): of the six only
    # t1 (14), t2 (16) and t8 (17) are asked, so the jeugdige's response is 2 of 3, not of 6.
    assert young.eligible == 3
    assert young.distribution is not None
    assert {k: v for k, v in young.distribution.items() if v} == {"8": 1, "10": 1}
    parent = cell(t, "tevredenheid", informant="ouder")
    assert (parent.responses, parent.value, parent.eligible) == (1, 6.0, 6)


def test_the_jeugdige_is_not_applicable_under_12_not_zero_response(engine: Engine) -> None:
    """Seed 001: "<12 jaar: ouders vullen in". Under 12 the jeugdige is not asked: "n.v.t.",
    where it used to read "no responses" (shown as "geen metingen, 0%")."""
    t = table(engine, GEMEENTE_VIEWS)
    young = cell(t, "tevredenheid", ageBand="4-11", informant="jeugdige")
    assert (young.status, young.eligible, young.responses) == ("not-applicable", 0, 0)
    assert cell(t, "tevredenheid", ageBand="4-11", informant="ouder").status == "no-responses"


def test_zonder_hulp_verder_share_of_three_and_four(engine: Engine) -> None:
    t = table(engine, GEMEENTE_VIEWS)
    young = cell(t, "zonderHulpVerder", informant="jeugdige")
    assert (young.responses, young.value) == (2, 1.0)  # answers 3 and 4
    assert young.distribution == {"1": 0, "2": 0, "3": 1, "4": 1}
    parent = cell(t, "zonderHulpVerder", informant="ouder")
    assert (parent.responses, parent.value) == (1, 0.0)  # answer 2


def test_geen_nieuwe_start_across_providers_and_windows(engine: Engine) -> None:
    """Seed 001, 3.2: "De mate waarin er na beëindiging geen nieuwe start jeugdhulp
    plaatsvindt". t8's later jeugdbescherming trajectory is no new start of jeugdhulp; it
    used to count as one (then every window below had one trajectory fewer without)."""
    t = table(engine, GEMEENTE_VIEWS)
    # New start inside the window?      next half year   6 months   12 months
    # t1  (B, 15 Jul)                    yes              yes        yes
    # t2  (B, 15 Nov)                    yes              no         yes
    # t3  (only 1 Jul 2027)              no               no         no
    # t8  (only jeugdbescherming)        no               no         no
    # t9  (30 Sep = last day of 6m)      yes              yes        yes
    # t11 (1 Oct = one day late for 6m)  yes              no         yes
    expected = {"volgendHalfjaar": 2, "6m": 4, "12m": 2}
    for window, kept in expected.items():
        c = cell(t, "geenNieuweStart", window)
        assert (c.n, c.responses, c.status) == (6, None, "ok")
        assert c.value == pytest.approx(kept / 6, abs=1e-4), window
        assert c.distribution == {"geenNieuweStart": kept, "nieuweStart": 6 - kept}
    # Volgens plan (01): t2, t3, t9.  next half year: t3; 6 months: t2, t3; 12 months: t3.
    for window, kept in {"VolgendHalfjaar": 1, "6m": 2, "12m": 1}.items():
        c = cell(t, "geenNieuweStart", f"volgensPlan{window}")
        # Its own n (the three ended volgens plan), not a "response" of 3 out of 6.
        assert (c.n, c.responses) == (3, None)
        assert c.value == pytest.approx(kept / 3, abs=1e-4), window
    # Shown apart: a new jeugdbescherming/-reclassering start, here only t8's (1 June).
    for window in ("VolgendHalfjaar", "6m", "12m"):
        c = cell(t, "geenNieuweStart", f"jbJr{window}")
        assert (c.n, c.distribution) == (6, {"geenNieuweStart": 5, "nieuweStart": 1}), window


def test_geen_nieuwe_start_not_yet_observable_before_the_window_has_passed(engine: Engine) -> None:
    assert window_end(PERIOD, "6m") == D(2026, 12, 30)  # 30 June + 6 months
    assert window_end(PERIOD, "volgendHalfjaar") == D(2026, 12, 31)
    assert window_end(PERIOD, "12m") == D(2027, 6, 30)
    # SPEC: reported only once the follow-up *and the 3-week delivery term* have passed: the
    # 6-month window (to 30 December) is observable from 21 January, not on 31 December.
    assert cell(table(engine, GEMEENTE_VIEWS, as_of=D(2026, 12, 31)), "geenNieuweStart",
                "6m").status == "not-yet-observable"
    early = table(engine, GEMEENTE_VIEWS, as_of=D(2027, 1, 21))
    assert cell(early, "geenNieuweStart", "6m").status == "ok"
    assert cell(early, "geenNieuweStart", "volgendHalfjaar").status == "not-yet-observable"
    twelve = cell(early, "geenNieuweStart", "12m")
    assert (twelve.status, twelve.value, twelve.distribution) == ("not-yet-observable", None, None)
    assert twelve.n == 6  # the population is known, the outcome is not yet


def test_afname_problematiek_only_for_individual_provisions(engine: Engine) -> None:
    t = table(engine, GEMEENTE_VIEWS)
    assert not [c for c in t.cells if c.indicator == "afnameProblematiek" and "freelyAccessible" not in c.breakdown]
    individual = cell(t, "afnameProblematiek", freelyAccessible="false", informant="jeugdige")
    # niet vrij toegankelijk: t1, t2, t8, t9, t11 (n 5); answers: matige (t1), sterke (t2).
    assert (individual.n, individual.responses, individual.value) == (5, 2, 1.0)
    assert individual.distribution == {
        "sterke-verbetering": 1, "matige-verbetering": 1, "stabilisatie": 0,
        "matige-verslechtering": 0, "sterke-verslechtering": 0,
    }
    assert not [c for c in t.cells if c.indicator == "afnameProblematiek"
                and c.breakdown.get("freelyAccessible") == "true"]


def test_doelrealisatie_overall_and_per_goal(engine: Engine) -> None:
    """Seed 001: 3.3 and 3.4 apply "in geval van een individuele voorziening ('niet-vrij
    toegankelijke jeugdhulp')": 3.4 is published for niet-vrij-toegankelijke cells only, with
    n counting those (5, not all 6 as before, which understated its response rate)."""
    t = table(engine, GEMEENTE_VIEWS)
    assert not [c for c in t.cells if c.indicator == "doelrealisatie"
                and c.breakdown.get("freelyAccessible") != "false"]
    overall = cell(t, "doelrealisatie", "overall", freelyAccessible="false", informant="jeugdige")
    assert overall.n == 5
    assert (overall.responses, overall.value) == (1, 1.0)  # t1: overall 1 (deels behaald)
    assert overall.distribution == {"-1": 0, "0": 0, "1": 1, "2": 0}
    per_goal = cell(t, "doelrealisatie", "perDoel", freelyAccessible="false", informant="jeugdige")
    # t2: goals 2, 1, -1: one trajectory, three goals, two (partly) achieved.
    assert per_goal.responses == 1
    assert per_goal.value == pytest.approx(2 / 3, abs=1e-4)
    assert per_goal.distribution == {"-1": 1, "0": 0, "1": 1, "2": 1}
    assert cell(t, "doelrealisatie", "overall", freelyAccessible="false",
                informant="ouder").status == "no-responses"


def test_split_by_care_type_age_band_and_pc4(engine: Engine) -> None:
    t = table(engine, GEMEENTE_VIEWS)
    free = cell(t, "uitval", freelyAccessible="true", sector="jeugdhulp", hulpvorm="01")
    assert free.n == 1  # t3 only
    assert cell(t, "uitval", ageBand="4-11").n == 3  # t3 (9), t9 (4), t11 (4)
    assert cell(t, "uitval", ageBand="12-15").n == 1  # t1 (14)
    assert cell(t, "uitval", ageBand="16-17").n == 2  # t2 (16), t8 (17)
    assert cell(t, "uitval", pc4="1011").n == 6
    assert cell(t, "uitval", pc4="1011", freelyAccessible="false").n == 5


def test_provider_figures_count_only_their_own_trajectories(engine: Engine) -> None:
    a = table(engine, INTERN_VIEWS, kind="provider", code=A)
    b = table(engine, INTERN_VIEWS, kind="provider", code=B)
    assert cell(a, "uitval").n == 4 and cell(b, "uitval").n == 2  # A: t1 t2 t8 t11; B: t3 t9
    assert cell(a, "uitval", gemeente="GM0363").n == 4
    # 3.2 links across providers: within 12 months A's t1 and t2 restart at B, t11 at B;
    # only t8 has no new start. B's t9 restarts at A; t3 does not.
    assert cell(a, "geenNieuweStart", "12m").value == pytest.approx(1 / 4, abs=1e-4)
    assert cell(b, "geenNieuweStart", "12m").value == pytest.approx(1 / 2, abs=1e-4)


def test_add_months_matches_the_sql_on_month_ends() -> None:
    assert add_months_py(D(2026, 8, 31), 6) == D(2027, 2, 28)
    assert add_months_py(D(2026, 1, 31), 1) == D(2026, 2, 28)
    assert add_months_py(D(2028, 1, 31), 1) == D(2028, 2, 29)
    assert add_months_py(D(2026, 6, 30), 12) == D(2027, 6, 30)


def _facts_by_key(facts: Facts) -> dict[tuple[object, ...], list[int]]:
    return {(g, *k): c for g, k, c in zip(facts.grain, facts.keys.tolist(), facts.counts.tolist(), strict=True)}


def test_duckdb_counts_the_same_as_the_store_itself(db_url: str) -> None:
    """The recompute counts a copy of the rows in DuckDB; the store's own engine must agree
    on every count, month-end windows (ROWS) and per-goal scores included."""
    eng = store_engine(db_url)
    insert_rows(eng, ROWS)
    dense = dense_rows(600, seed=3, period=PERIOD, pc4s={"GM0363": ["1011", "1012"], "GM0599": ["3011"]})
    for i, row in enumerate(dense[:40]):
        row.measurements = [M("ouder", satisfaction=7, goals=(i % 4 - 1, 2))]
    insert_rows(eng, dense)
    with eng.connect() as conn:
        assert columnar.available(conn)
        timings: dict[str, float] = {}
        in_duckdb = compute_facts(conn, PERIOD, timings=timings)
        in_store = compute_facts(conn, PERIOD, columnar=False)
    assert "count in DuckDB" in timings
    assert in_duckdb.counts.shape[0] > 100
    assert _facts_by_key(in_duckdb) == _facts_by_key(in_store)


def test_duckdb_counts_an_empty_period(db_url: str) -> None:
    eng = store_engine(db_url)
    insert_rows(eng, ROWS)
    with eng.connect() as conn:
        facts = compute_facts(conn, "2024-H1")
    assert facts.counts.shape[0] == 0
