"""Outcome tables built by hand for the report tests, in the OutcomeTable contract.

The report service must not depend on aggregate's implementation, so these
tables come from a small, independent computation over synthetic trajectories:
every cell is counted from the same rows, so margins add up the way they do in
aggregate's output, and the shareable variant is suppressed (primary and a
simple secondary rule) so the report's own checks have realistic input.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ttp.outcomes import Cell, OutcomeTable, Scope

GENERATED_AT = dt.datetime(2026, 7, 20, 9, 30, tzinfo=dt.UTC)
DIMENSIONS = ("sector", "freelyAccessible", "hulpvorm", "ageBand")
CHANGE = ("sterke-verbetering", "matige-verbetering", "stabilisatie", "matige-verslechtering",
          "sterke-verslechtering")


@dataclass
class Trajectory:
    sector: str
    freely: bool
    hulpvorm: str
    age_band: str
    reason: str
    informants: tuple[str, ...]
    answers: dict[str, dict[str, object]] = field(default_factory=dict)
    no_new_start: dict[str, bool] = field(default_factory=dict)

    def dims(self) -> dict[str, str]:
        return {"sector": self.sector, "freelyAccessible": str(self.freely).lower(),
                "hulpvorm": self.hulpvorm, "ageBand": self.age_band}


def trajectories(count: int, seed: int, response_rate: float = 0.6) -> list[Trajectory]:
    """Synthetic ended trajectories of one provider in one period."""
    rnd = random.Random(seed)
    out: list[Trajectory] = []
    for _ in range(count):
        age_band = rnd.choices(["0-3", "4-11", "12-15", "16-17", "18-23"], [1, 4, 4, 3, 1])[0]
        informants = {"0-3": ("ouder",), "4-11": ("ouder",), "12-15": ("jeugdige", "ouder")}.get(
            age_band, ("jeugdige",))
        t = Trajectory(
            sector=rnd.choices(["jeugdhulp", "jeugdbescherming", "jeugdreclassering"], [8, 2, 1])[0],
            freely=rnd.random() < 0.3,
            hulpvorm=rnd.choices(["01", "02", "03", "04", "11", "12", "13", "14"],
                                 [2, 8, 3, 2, 2, 1, 0.3, 0.7])[0],
            age_band=age_band,
            reason=rnd.choices(["01", "02", "03", "04", "05"], [12, 3, 2, 1, 1])[0],
            informants=informants,
        )
        for informant in informants:
            if rnd.random() < response_rate:
                t.answers[informant] = {
                    "satisfaction": min(10, max(1, round(rnd.gauss(7.3, 1.5)))),
                    "withoutHelp": rnd.choices([1, 2, 3, 4], [1, 3, 4, 3])[0],
                    "problemChange": None if t.freely else rnd.choices(CHANGE, [3, 4, 3, 1, 0.5])[0],
                    "goal": rnd.choices([-1, 0, 1, 2], [1, 2, 4, 5])[0],
                }
        for window, p in (("volgendHalfjaar", 0.82), ("6m", 0.86), ("12m", 0.78),
                          ("volgensPlan6m", 0.9)):
            t.no_new_start[window] = rnd.random() < p
        out.append(t)
    return out


def _groups(rows: list[Trajectory]) -> Iterable[tuple[dict[str, str], list[Trajectory]]]:
    yield {}, rows
    for dim in DIMENSIONS:
        by: dict[str, list[Trajectory]] = {}
        for t in rows:
            by.setdefault(t.dims()[dim], []).append(t)
        for code in sorted(by):
            yield {dim: code}, by[code]


def _mean(answers: list[object]) -> float:
    return sum(int(str(a)) for a in answers) / len(answers)


def _cell(indicator: str, breakdown: dict[str, str], n: int, responses: int | None,
          value: float | None,
          distribution: dict[str, int] | None, variant: str | None = None,
          status: str | None = None) -> Cell:
    if status is None:
        status = "ok" if responses or n == 0 else "no-responses"
    return Cell(indicator=indicator, variant=variant, breakdown=breakdown, n=n, responses=responses,
                value=value if status == "ok" else None, distribution=distribution,
                status=status)


def _answer_cells(indicator: str, rows: list[Trajectory], per_informant: bool,
                  pick: Callable[[dict[str, object]], object | None],
                  categories: list[str], value: Callable[[list[object]], float],
                  variant: str | None = None,
                  population: Callable[[Trajectory], bool] = lambda t: True) -> list[Cell]:
    cells: list[Cell] = []
    for breakdown, group in _groups([t for t in rows if population(t)]):
        informants: list[str | None] = ["jeugdige", "ouder"] if per_informant else [None]
        for informant in informants:
            if informant is None:
                members = group
                answers = [pick(a) for t in members for a in list(t.answers.values())[:1]]
            else:
                members = [t for t in group if informant in t.informants]
                answers = [pick(t.answers[informant]) for t in members if informant in t.answers]
            answers = [a for a in answers if a is not None]
            if informant is not None and not members:
                continue
            dist = {c: sum(1 for a in answers if str(a) == c) for c in categories}
            bd = dict(breakdown, **({"informant": informant} if informant else {}))
            cells.append(_cell(indicator, bd, len(members), len(answers),
                               value(answers) if answers else None, dist, variant))
    return cells


def intern_cells(rows: list[Trajectory], observable: bool = True) -> list[Cell]:
    """Every indicator of the basisset over ``rows``, unsuppressed."""
    cells: list[Cell] = []
    for breakdown, group in _groups(rows):
        dist = {c: sum(1 for t in group if t.reason == c) for c in ("01", "02", "03", "04", "05")}
        cells.append(_cell("uitval", breakdown, len(group), len(group),
                           dist["03"] / len(group), dist))
    cells += _answer_cells("tevredenheid", rows, True, lambda a: a["satisfaction"],
                           [str(i) for i in range(1, 11)], _mean)
    cells += _answer_cells("zonderHulpVerder", rows, True, lambda a: a["withoutHelp"],
                           ["1", "2", "3", "4"],
                           lambda xs: sum(1 for x in xs if x in (3, 4)) / len(xs))
    for window in ("volgendHalfjaar", "6m", "12m", "volgensPlan6m"):
        for breakdown, group in _groups(rows):
            if window != "volgendHalfjaar" and breakdown:
                continue
            members = [t for t in group if t.reason == "01"] if window.startswith("volgensPlan") \
                else group
            if observable:
                ok = sum(1 for t in members if t.no_new_start[window])
                cells.append(_cell("geenNieuweStart", breakdown, len(members), len(members),
                                   ok / len(members) if members else None, None, window))
            else:
                cells.append(_cell("geenNieuweStart", breakdown, len(members), None, None, None,
                                   window, status="not-yet-observable"))
    cells += _answer_cells("afnameProblematiek", rows, False, lambda a: a["problemChange"],
                           list(CHANGE), lambda xs: sum(1 for x in xs if x in CHANGE[:2]) / len(xs),
                           population=lambda t: not t.freely)
    for variant in ("overall", "perDoel"):
        cells += [c for c in _answer_cells(
            "doelrealisatie", rows, False, lambda a: a["goal"], ["-1", "0", "1", "2"], _mean, variant)
            if variant == "overall" or not c.breakdown]
    return cells


def suppress(cells: list[Cell], threshold: int) -> list[Cell]:
    """Primary suppression below ``threshold`` and one complementary cell per dimension group."""
    out = [c.model_copy(deep=True) for c in cells]

    def hide(c: Cell, status: str) -> None:
        c.status = status  # type: ignore[assignment]
        c.n = c.responses = None
        c.value = None
        c.distribution = None

    for c in out:
        if c.n is not None and 0 < c.n < threshold:
            hide(c, "suppressed-primary")
    groups: dict[tuple[object, ...], list[Cell]] = {}
    for c in out:
        dims = [k for k in c.breakdown if k != "informant"]
        if len(dims) == 1:
            key = (c.indicator, c.variant, c.breakdown.get("informant"), dims[0])
            groups.setdefault(key, []).append(c)
    for members in groups.values():
        hidden = [c for c in members if c.status == "suppressed-primary"]
        if len(hidden) == 1:
            rest = sorted((c for c in members if c.n is not None), key=lambda c: c.n or 0)
            if rest:
                hide(rest[0], "suppressed-secondary")
    return out


def provider_tables(agb: str, period: str, *, count: int = 160, seed: int = 1,
                    threshold: int = 10, observable: bool = True,
                    response_rate: float = 0.6) -> tuple[OutcomeTable, OutcomeTable]:
    """The intern and deelbaar table of one provider and period."""
    rows = trajectories(count, seed, response_rate)
    cells = intern_cells(rows, observable)
    common: dict[str, Any] = dict(period=period, scope=Scope(kind="provider", code=agb), threshold=threshold,
                  generatedAt=GENERATED_AT, withoutBsn=count // 20)
    intern = OutcomeTable(variant="intern", trajectories=count, cells=cells, **common)
    deelbaar = OutcomeTable(variant="deelbaar", trajectories=count if count >= threshold else None,
                            cells=suppress(cells, threshold), **common)
    return intern, deelbaar


def national_table(period: str, *, seed: int = 99, count: int = 6000, threshold: int = 10,
                   observable: bool = True) -> OutcomeTable:
    rows = trajectories(count, seed, 0.45)
    return OutcomeTable(
        period=period, scope=Scope(kind="national"), variant="feed", threshold=threshold,
        generatedAt=GENERATED_AT, trajectories=count, withoutBsn=count // 25,
        cells=suppress(intern_cells(rows, observable), threshold),
    )


class FakeFigures:
    """A ``FigureSource`` over tables held in memory; counts calls so caching can be tested."""

    def __init__(self) -> None:
        self.provider: dict[tuple[str, str, str], OutcomeTable] = {}
        self.national: dict[str, OutcomeTable] = {}
        self.calls = 0

    def add_provider(self, agb: str, period: str, **kwargs: object) -> tuple[OutcomeTable, OutcomeTable]:
        intern, deelbaar = provider_tables(agb, period, **kwargs)  # type: ignore[arg-type]
        self.provider[(agb, period, "intern")] = intern
        self.provider[(agb, period, "deelbaar")] = deelbaar
        return intern, deelbaar

    async def provider_outcomes(self, agb: str, period: str, variant: str) -> OutcomeTable | None:
        self.calls += 1
        return self.provider.get((agb, period, variant))

    async def national_outcomes(self, period: str) -> OutcomeTable | None:
        self.calls += 1
        return self.national.get(period)

    async def aclose(self) -> None:
        return None


def standard_figures(agb: str = "98000001", period: str = "2026-H1") -> FakeFigures:
    """Four periods of one provider and the nation: the current one's 3.2 not yet observable."""
    from services.report.figures import trend_periods

    fake = FakeFigures()
    periods = trend_periods(period)
    for i, p in enumerate(periods):
        current = p == period
        fake.add_provider(agb, p, count=140 + 15 * i, seed=10 + i, observable=not current,
                          response_rate=0.45 + 0.07 * i)
        fake.national[p] = national_table(p, seed=100 + i, observable=not current)
    return fake
