"""Which periods a provider may re-deliver, as at CBS: the current one and the one before it.

CBS asks, with the delivery of a half year, a "herlevering" of the previous
one ("Verslagperiode jan t/m jun 2023" beside "Verslagperiode jul t/m dec 2022
(herlevering)", cbs.nl/jeugdzorg), within the delivery term of 3 weeks after
the period (Informatieprotocol, Aanlevertermijnen).
"""

from __future__ import annotations

import datetime as dt

import pytest

from services.ingest.redelivery import check_replace_period, replaceable_periods
from ttp.problems import Problem


@pytest.mark.parametrize(
    ("today", "periods"),
    [
        (dt.date(2026, 12, 8), ("2026-H2", "2026-H1")),
        # within the delivery term of 2026-H2, it is still the period being delivered
        (dt.date(2027, 1, 10), ("2027-H1", "2026-H2", "2026-H1")),
        (dt.date(2027, 1, 21), ("2027-H1", "2026-H2", "2026-H1")),
        (dt.date(2027, 1, 22), ("2027-H1", "2026-H2")),
        (dt.date(2027, 7, 1), ("2027-H2", "2027-H1", "2026-H2")),
    ],
)
def test_the_current_and_the_previous_period_can_be_replaced(today: dt.date, periods: tuple[str, ...]) -> None:
    assert replaceable_periods(today) == periods
    assert all(check_replace_period(p, today) == p for p in periods)


@pytest.mark.parametrize(
    ("value", "status", "code"),
    [("2025-H2", 409, "period-closed"), ("2027-H1", 400, "period-future"), ("2026-H3", 400, "period-format"),
     ("2026H1", 400, "period-format")],
)
def test_any_other_period_is_refused_with_why(value: str, status: int, code: str) -> None:
    with pytest.raises(Problem) as info:
        check_replace_period(value, dt.date(2026, 12, 8))
    assert info.value.status == status
    assert [(p.name, p.code) for p in info.value.invalid_params or []] == [("replacePeriod", code)]


def test_no_replace_period_is_an_ordinary_delivery() -> None:
    assert check_replace_period(None, dt.date(2026, 12, 8)) is None
