"""Reporting periods and age bands, shared by every service.

The CBS Informatieprotocol Beleidsinformatie Jeugd reports jeugdhulp and
jeugdbescherming per half year, and a trajectory belongs to the half year in
which it *ended*. Periods are written ``YYYY-H1`` (January to June) and
``YYYY-H2`` (July to December). Keeping the arithmetic in one module means
ingest, aggregate and report can never disagree on which period or age band a
trajectory falls in.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final, Literal

#: Half years of this century: the Jeugdwet dates from 2015, and year 0000 is no date at all.
PERIOD_PATTERN: Final = r"^(20\d{2})-H([12])$"
PERIOD_RE: Final = re.compile(PERIOD_PATTERN)

#: Age bands of the outputs, by completed years at the end of the trajectory.
#: Youth care runs to 18, extended to 23 (verlengde jeugdhulp).
AGE_BANDS: Final[tuple[tuple[str, int, int], ...]] = (
    ("0-3", 0, 3),
    ("4-11", 4, 11),
    ("12-15", 12, 15),
    ("16-17", 16, 17),
    ("18-23", 18, 23),
)
MAX_AGE: Final = 23

#: Providers deliver a half year within 3 weeks after it ends (CBS Informatieprotocol).
DELIVERY_TERM: Final = dt.timedelta(weeks=3)

#: As CBS labels its figures: "voorlopig" while deliveries can still come in, else "definitief".
PeriodStatus = Literal["voorlopig", "definitief"]

_BAND_BY_AGE: Final[tuple[str, ...]] = tuple(
    label for label, low, high in AGE_BANDS for _ in range(low, high + 1)
)


def _parse(period: str) -> tuple[int, int]:
    """``"2026-H1"`` -> ``(2026, 1)``; ValueError on anything else."""
    m = PERIOD_RE.match(period)
    if m is None:
        raise ValueError("period must look like 2026-H1 or 2026-H2")
    return int(m.group(1)), int(m.group(2))


def period_of(day: dt.date) -> str:
    """The half year a date falls in: Jan-Jun is H1, Jul-Dec is H2."""
    return f"{day.year:04d}-H{1 if day.month <= 6 else 2}"


def period_bounds(period: str) -> tuple[dt.date, dt.date]:
    """First and last day of a period, both inclusive (so ``BETWEEN`` works in SQL)."""
    year, half = _parse(period)
    if half == 1:
        return dt.date(year, 1, 1), dt.date(year, 6, 30)
    return dt.date(year, 7, 1), dt.date(year, 12, 31)


def next_period(period: str) -> str:
    """The half year after ``period`` (the 3.2 follow-up window ends with it)."""
    year, half = _parse(period)
    return f"{year:04d}-H2" if half == 1 else f"{year + 1:04d}-H1"


def previous_period(period: str) -> str:
    """The half year before ``period`` (trend lines)."""
    year, half = _parse(period)
    return f"{year - 1:04d}-H2" if half == 1 else f"{year:04d}-H1"


def is_period(value: str) -> bool:
    """True when ``value`` is a well-formed period."""
    return PERIOD_RE.match(value) is not None


def age_at(birth: dt.date, on: dt.date) -> int:
    """Completed years on a day (negative when ``on`` is before the birth).

    Someone born on 29 February turns a year older on 1 March in a common year.
    """
    years = on.year - birth.year
    if (on.month, on.day) < (birth.month, birth.day):
        years -= 1
    return years


def age_band(age: int) -> str:
    """The output age band of an age in completed years (0..23)."""
    if not 0 <= age <= MAX_AGE:
        raise ValueError(f"age must be 0..{MAX_AGE} for youth care")
    return _BAND_BY_AGE[age]


def delivery_deadline(period: str) -> dt.date:
    """The last day a provider may deliver the period: its last day plus the delivery term."""
    return period_bounds(period)[1] + DELIVERY_TERM


def period_status(period: str, as_of: dt.date) -> PeriodStatus:
    """``voorlopig`` while the half year runs or its delivery term has not passed, else ``definitief``.

    As CBS does with voorlopige and definitieve cijfers: until every provider
    could have delivered, a figure may still move, and every output says so.
    """
    return "voorlopig" if as_of <= delivery_deadline(period) else "definitief"
