"""Half-year periods and age bands, the shared arithmetic of every output."""

from __future__ import annotations

import datetime as dt

import pytest

from ttp.periods import (
    AGE_BANDS,
    age_at,
    age_band,
    delivery_deadline,
    is_period,
    next_period,
    period_bounds,
    period_of,
    period_status,
    previous_period,
)


@pytest.mark.parametrize(
    ("day", "period"),
    [(dt.date(2026, 1, 1), "2026-H1"), (dt.date(2026, 6, 30), "2026-H1"),
     (dt.date(2026, 7, 1), "2026-H2"), (dt.date(2026, 12, 31), "2026-H2")],
)
def test_period_of(day: dt.date, period: str) -> None:
    assert period_of(day) == period


def test_period_bounds_are_inclusive_and_contain_exactly_their_days() -> None:
    assert period_bounds("2026-H1") == (dt.date(2026, 1, 1), dt.date(2026, 6, 30))
    assert period_bounds("2026-H2") == (dt.date(2026, 7, 1), dt.date(2026, 12, 31))
    start, end = period_bounds("2024-H1")
    assert {period_of(start + dt.timedelta(days=i)) for i in range((end - start).days + 1)} == {
        "2024-H1"
    }
    assert period_of(end + dt.timedelta(days=1)) == "2024-H2"


def test_next_and_previous_period_cross_the_year() -> None:
    assert next_period("2026-H1") == "2026-H2"
    assert next_period("2026-H2") == "2027-H1"
    assert previous_period("2026-H1") == "2025-H2"
    assert previous_period(next_period("2025-H2")) == "2025-H2"


@pytest.mark.parametrize("bad", ["2026-H3", "2026H1", "26-H1", "2026-h1", "", "2026-H1 "])
def test_malformed_period_is_refused(bad: str) -> None:
    assert not is_period(bad)
    with pytest.raises(ValueError):
        period_bounds(bad)
    with pytest.raises(ValueError):
        next_period(bad)


def test_age_at_counts_completed_years() -> None:
    birth = dt.date(2010, 6, 20)
    assert age_at(birth, dt.date(2026, 6, 19)) == 15
    assert age_at(birth, dt.date(2026, 6, 20)) == 16
    assert age_at(birth, dt.date(2010, 6, 20)) == 0
    assert age_at(birth, dt.date(2010, 6, 19)) == -1


def test_leap_day_birthday_is_1_march_in_a_common_year() -> None:
    birth = dt.date(2012, 2, 29)
    assert age_at(birth, dt.date(2025, 2, 28)) == 12
    assert age_at(birth, dt.date(2025, 3, 1)) == 13
    assert age_at(birth, dt.date(2024, 2, 29)) == 12


def test_age_bands_cover_0_to_23_without_gaps() -> None:
    assert [age_band(a) for a in range(24)] == (
        ["0-3"] * 4 + ["4-11"] * 8 + ["12-15"] * 4 + ["16-17"] * 2 + ["18-23"] * 6
    )
    assert [label for label, _, _ in AGE_BANDS] == ["0-3", "4-11", "12-15", "16-17", "18-23"]


@pytest.mark.parametrize("age", [-1, 24, 40])
def test_age_outside_youth_care_has_no_band(age: int) -> None:
    with pytest.raises(ValueError):
        age_band(age)


def test_a_half_year_is_voorlopig_until_its_delivery_term_has_passed() -> None:
    """SPEC: "A half year that is still running, or whose delivery term has not passed, is
    'voorlopig' in every output (as CBS's voorlopig / definitief)"; delivery is "within 3
    weeks after the period" (CBS Informatieprotocol)."""
    assert delivery_deadline("2026-H1") == dt.date(2026, 7, 21)
    assert period_status("2026-H1", dt.date(2026, 3, 1)) == "voorlopig"  # still running
    assert period_status("2026-H1", dt.date(2026, 7, 21)) == "voorlopig"  # last delivery day
    assert period_status("2026-H1", dt.date(2026, 7, 22)) == "definitief"
    assert period_status("2026-H2", dt.date(2027, 1, 21)) == "voorlopig"
    assert period_status("2026-H2", dt.date(2027, 1, 22)) == "definitief"
