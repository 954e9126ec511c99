"""Every count a third party sees is protected, on the sample data, against the attacks an
outside auditor ran: small counts shown, differencing of releases, the informant rule with the
age bands, and the national reference. Each attack is also run on the earlier behaviour
(``legacy_table``: the stored suppression pattern, every other count exact), where it succeeds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Table, delete, update

from services.aggregate.cell_key import CellKeyMethod
from services.aggregate.disclosure import Protection
from services.aggregate.feeds import (
    Output,
    build_table,
    gemeente_output,
    load_cells,
    national_output,
    provider_output,
    rijk_output,
    to_csv,
)
from services.aggregate.informant_audit import age_band_bounds
from services.aggregate.models import GoalScore, Measurement, Trajectory
from services.aggregate.recompute import load_domains, mark_dirty, recompute
from services.report.document import reference_allowed
from tests.aggregate.factory import Row, dense_rows, insert_rows, store_engine, synthetic_rows
from tests.helpers.asgi import party_client
from tests.helpers.disclosure_attacks import (
    LEGACY,
    cell_key_reading,
    differencing_pins,
    legacy_table,
    shown_counts,
)
from tests.report.conftest import make_env
from tests.report.factory import FakeFigures
from ttp.outcomes import Cell, OutcomeTable
from ttp.settings import Settings

PERIOD = "2026-H1"
AS_OF = dt.date(2026, 9, 1)
THRESHOLD = 10
METHOD = CellKeyMethod(b"test cell-key secret, 32 bytes.." * 2, THRESHOLD)
PROTECTION = Protection(THRESHOLD, 0.5)
T: Table = Trajectory.__table__  # type: ignore[assignment]
M: Table = Measurement.__table__  # type: ignore[assignment]
G: Table = GoalScore.__table__  # type: ignore[assignment]


def small(table: OutcomeTable) -> list[tuple[str, int]]:
    return [(where, v) for where, v in shown_counts(table) if 0 < v < THRESHOLD]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The sample data of the README (20,000 generated records, seed 1), as ingest stores it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sample') / 'aggregate.sqlite3'}"
    engine = store_engine(url)
    insert_rows(engine, synthetic_rows(20000, seed=1, period=PERIOD, today=AS_OF))
    recompute(engine, PERIOD, PROTECTION, force=True)
    yield engine
    engine.dispose()


def third_party_outputs(engine: Engine) -> list[Output]:
    with engine.connect() as conn:
        domains = load_domains(conn, PERIOD)
    return [*(gemeente_output(g) for g in domains.gemeenten), rijk_output(), national_output(),
            *(provider_output(v, "deelbaar") for v in domains.providers)]


def test_no_feed_shows_a_count_from_1_to_9_and_the_earlier_feeds_did(sample: Engine) -> None:
    now = dt.datetime.now(dt.UTC)
    outputs = third_party_outputs(sample)
    shown = 0
    with sample.connect() as conn:
        for output in outputs:
            table = build_table(conn, PERIOD, output, threshold=THRESHOLD, as_of=AS_OF, generated_at=now,
                                method=METHOD)
            assert not small(table), (output, small(table)[:5])
            # The CSV a gemeente downloads carries the same counts, and nothing small either.
            for row in csv.DictReader(io.StringIO(to_csv(table))):
                values = [row["n"], row["responses"]] + [p.split("=")[1] for p in row["distribution"].split(";") if p]
                assert not [v for v in values if v and 0 < int(v) < THRESHOLD], row
            shown += len(shown_counts(table))
        assert shown > 50_000  # plenty was published
        before = legacy_table(conn, PERIOD, gemeente_output("GM0363"), threshold=THRESHOLD, as_of=AS_OF)
    # Negative control: the earlier GM0363 feed showed hundreds of exact counts from 1 to 9.
    assert len(small(before)) > 300
    assert any("pc4" in where for where, _ in small(before))


def test_shared_reports_show_no_count_from_1_to_9_in_json_csv_or_html(sample: Engine, dev_pki: Path,
                                                                       tmp_path: Path) -> None:
    agb = "98000001"
    now = dt.datetime.now(dt.UTC)
    figures = FakeFigures()
    with sample.connect() as conn:
        def table(output: Output) -> OutcomeTable:
            return build_table(conn, PERIOD, output, threshold=THRESHOLD, as_of=AS_OF, generated_at=now,
                               method=METHOD if output.third_party else None)

        figures.provider[(agb, PERIOD, "intern")] = table(provider_output(agb, "intern"))
        figures.provider[(agb, PERIOD, "deelbaar")] = table(provider_output(agb, "deelbaar"))
        figures.national[PERIOD] = table(national_output())
        legacy = legacy_table(conn, PERIOD, provider_output(agb, "deelbaar"), threshold=THRESHOLD, as_of=AS_OF)
    assert len(small(legacy)) > 50  # negative control: the earlier shareable figures did show them
    app, _ = make_env(Settings(home=tmp_path, pki_dir=dev_pki,
                               report_database_url=f"sqlite:///{tmp_path / 'report.sqlite3'}"), dev_pki, figures)
    report = f"/v1/providers/{agb}/reports/{PERIOD}/deelbaar"
    with TestClient(app):
        assert party_client(app, dev_pki, f"provider-{agb}").put(
            f"/v1/providers/{agb}/reports/{PERIOD}/shares/GM0363").status_code in (200, 201, 204)
        gemeente = party_client(app, dev_pki, "gemeente-GM0363")
        doc = gemeente.get(report, headers={"Accept": "application/json"})
        text = gemeente.get(report, headers={"Accept": "text/csv"})
        html = gemeente.get(report, headers={"Accept": "text/html"})
    assert doc.status_code == text.status_code == html.status_code == 200, doc.text
    body = doc.json()
    cells = [Cell.model_validate(c) for c in body["cells"] + (body["national"] or {}).get("cells", [])]
    counts = [v for c in cells for v in (c.n, c.responses, *(c.distribution or {}).values()) if v is not None]
    assert counts and not [v for v in counts if 0 < v < THRESHOLD]
    assert body["trajectories"] is None or body["trajectories"] >= THRESHOLD
    rows = list(csv.DictReader(io.StringIO(text.text.lstrip("\ufeff"))))
    numbers = [int(v) for row in rows for k, v in row.items()
               if v and (k in ("n", "responses", "nationalN", "nationalResponses") or k.startswith("count_"))]
    assert numbers and not [v for v in numbers if 0 < v < THRESHOLD]
    # HTML prints counts as "respons 12 van 40" and "N trajecten".
    printed = re.findall(r"(\d+) van (\d+)|(\d+) trajecten", html.text.replace("\u202f", "").replace(".", ""))
    values = [int(v) for group in printed for v in group if v]
    assert values and not [v for v in values if 0 < v < THRESHOLD]


# --- differencing -------------------------------------------------------------------------------

PC4S = {"GM0363": [f"10{i:02d}" for i in range(11, 23)], "GM0599": [f"30{i:02d}" for i in range(11, 19)]}


def _seen_by_gemeente(engine: Engine, *, legacy: bool) -> list[OutcomeTable]:
    """Everything GM0363 sees of the period: its feed, every shareable report, the national reference."""
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        providers = load_domains(conn, PERIOD).providers
        outputs = [gemeente_output("GM0363"), national_output(), *(provider_output(v, "deelbaar") for v in providers)]
        if legacy:
            return [legacy_table(conn, PERIOD, o, threshold=THRESHOLD, as_of=AS_OF) for o in outputs]
        return [build_table(conn, PERIOD, o, threshold=THRESHOLD, as_of=AS_OF, generated_at=now, method=METHOD)
                for o in outputs]


def _release(engine: Engine) -> tuple[list[OutcomeTable], list[OutcomeTable]]:
    with engine.begin() as conn:
        mark_dirty(conn, {PERIOD})
    recompute(engine, PERIOD, PROTECTION, force=True)
    return _seen_by_gemeente(engine, legacy=False), _seen_by_gemeente(engine, legacy=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    """A small store of its own (the method does not depend on the backend: it reads stored cells)."""
    engine = store_engine(f"sqlite:///{tmp_path / 'aggregate.sqlite3'}")
    insert_rows(engine, dense_rows(1500, seed=5, period=PERIOD, pc4s=PC4S))
    yield engine
    engine.dispose()


def _client(engine: Engine) -> tuple[str, str]:
    """A GM0363 client with a measurement: the one whose record changes."""
    with engine.connect() as conn:
        row = conn.execute(
            T.select().where(T.c.gemeente == "GM0363", T.c.period == PERIOD,
                             T.c.record_id.in_(M.select().with_only_columns(M.c.record_id)))
            .order_by(T.c.record_id).limit(1)
        ).mappings().one()
    return str(row["provider_agb"]), str(row["record_id"])


def test_withdrawing_one_client_between_releases_pins_none_of_their_attributes(store: Engine) -> None:
    first, first_legacy = _release(store)
    provider, record = _client(store)
    with store.begin() as conn:
        for table in (G, M, T):
            conn.execute(delete(table).where(table.c.provider_agb == provider, table.c.record_id == record))
    second, second_legacy = _release(store)
    pins = differencing_pins(first, second, cell_key_reading(METHOD), change=(0, 1))
    assert not pins, [p.describe() for p in pins[:5]]
    # Negative control: the earlier outputs give the client's cells away, category by category.
    legacy = differencing_pins(first_legacy, second_legacy, LEGACY, change=(0, 1))
    assert len(legacy) > 10
    assert any("pc4" in dict(p.figure[3]) for p in legacy)


def test_correcting_one_record_between_releases_pins_nothing(store: Engine) -> None:
    first, first_legacy = _release(store)
    provider, record = _client(store)
    with store.begin() as conn:
        conn.execute(update(T).where(T.c.provider_agb == provider, T.c.record_id == record)
                     .values(termination_reason="03"))
        conn.execute(update(M).where(M.c.provider_agb == provider, M.c.record_id == record)
                     .values(satisfaction=1))
    second, second_legacy = _release(store)
    assert not differencing_pins(first, second, cell_key_reading(METHOD), change=(-1, 1))
    assert differencing_pins(first_legacy, second_legacy, LEGACY, change=(-1, 1))


def test_one_late_record_between_releases_pins_nothing(store: Engine) -> None:
    first, first_legacy = _release(store)
    insert_rows(store, [Row("late-1", 999_999, dt.date(2026, 5, 2), gemeente="GM0363", pc4="1015", age=9,
                            hulpvorm="04", reason="02")])
    second, second_legacy = _release(store)
    assert not differencing_pins(first, second, cell_key_reading(METHOD), change=(-1, 0))
    assert differencing_pins(first_legacy, second_legacy, LEGACY, change=(-1, 0))


# --- the informant rule and the age bands ---------------------------------------------------------


def test_informant_rule_and_responses_pin_no_hidden_age_band_of_the_rijk(sample: Engine) -> None:
    now = dt.datetime.now(dt.UTC)
    with sample.connect() as conn:
        rijk = build_table(conn, PERIOD, rijk_output(), threshold=THRESHOLD, as_of=AS_OF, generated_at=now,
                           method=METHOD)
    bounds = age_band_bounds(rijk, cell_key_reading(METHOD))
    assert bounds  # there are hidden age bands to attack
    assert not [b for b in bounds if b.low == b.high], "a hidden age band is pinned"


@pytest.mark.xfail(reason="Since issue 18 a parent may answer at 16+, so the informant rule constrains the "
                          "legacy Rijk table less and this control no longer finds a narrowed band on the "
                          "sample; it must be re-derived on data where the earlier attack succeeds "
                          "(see the issue 16 note).", strict=False)
def test_negative_control_exact_responses_let_the_informant_rule_narrow_a_hidden_age_band(sample: Engine) -> None:
    with sample.connect() as conn:
        before = legacy_table(conn, PERIOD, rijk_output(), threshold=THRESHOLD, as_of=AS_OF)
        counts = {k: int(s.counts[0]) for k, s in load_cells(conn, PERIOD, rijk_output()).items()}
    # With exact responses the rule narrows hidden bands below the protection
    # interval [v/2, max(1.5v, 10)] of their true value.
    narrowed = []
    for b in age_band_bounds(before, LEGACY):
        v = counts.get(((b.gemeente,), (), (b.band,), ()), 0)
        if PROTECTION.sensitive(v) and (b.low > PROTECTION.lower(v) or b.high < PROTECTION.upper(v)):
            narrowed.append(b)
    assert narrowed


# --- the national reference ---------------------------------------------------------------------


def _legacy_reference_allowed(national: Cell, own: Cell | None, threshold: int) -> bool:
    """The earlier rule: withheld when national n minus the provider's own true n is small."""
    if national.status != "ok" or own is None or own.n is None or own.n == 0:
        return False
    return national.n is not None and national.n - own.n >= threshold


def test_whether_a_national_reference_is_shown_does_not_depend_on_the_providers_own_counts() -> None:
    national = Cell(indicator="uitval", breakdown={"sector": "jeugdhulp"}, n=23, responses=23, value=0.1,
                    distribution={"01": 13, "03": 10}, status="ok")
    # The provider's own (hidden in the shared report) count is 7 or 15: a gemeente reading the
    # shared report must not be able to tell which from whether the reference is printed.
    owns = [Cell(indicator="uitval", breakdown={"sector": "jeugdhulp"}, n=v, responses=v, value=None, status="ok")
            for v in (7, 15)]
    assert len({reference_allowed(national, own, THRESHOLD) for own in owns}) == 1
    # Negative control: the earlier rule printed it for 7 and withheld it for 15, so a withheld
    # reference told the reader that the hidden own count was above 23 - 10.
    assert [_legacy_reference_allowed(national, own, THRESHOLD) for own in owns] == [True, False]
