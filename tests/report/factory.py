"""Outcome tables built by hand for the report tests, in the OutcomeTable contract.

The report service must not depend on aggregate's implementation, so these
tables come from a small, independent computation over synthetic trajectories,
shaped the way aggregate publishes them:

* care type is hierarchical: access, access x sector, access x sector x
  hulpvorm, each over the whole code-list grid (empty groups included);
* the intern table adds age bands and gemeenten; the shareable one does not;
* answer indicators are per informant (jeugdige, ouder), with ``n`` the whole
  population and ``responses`` that informant's answers; 3.3 exists only for
  niet-vrij-toegankelijke hulp; 3.2 has six windows;
* third-party tables hide every group under the threshold (zero included) and
  one sibling where a single one is hidden, all as status ``suppressed``,
  withhold values resting on fewer answers than the threshold, and leave
  categories of 1 to threshold-1 out of a distribution.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ttp.outcomes import Cell, OutcomeTable, Scope

GENERATED_AT = dt.datetime(2026, 7, 20, 9, 30, tzinfo=dt.UTC)
ACCESS = ("false", "true")
SECTORS = ("jeugdhulp", "jeugdbescherming", "jeugdreclassering")
HULPVORMEN = ("01", "02", "03", "04", "11", "12", "13", "14")
BANDS = ("0-3", "4-11", "12-15", "16-17", "18-23")
GEMEENTEN = ("GM0363", "GM0599")
INFORMANTS = ("jeugdige", "ouder")
CHANGE = ("sterke-verbetering", "matige-verbetering", "stabilisatie", "matige-verslechtering",
          "sterke-verslechtering")
WINDOWS = ("volgendHalfjaar", "6m", "12m")


@dataclass
class Trajectory:
    access: str
    sector: str
    hulpvorm: str
    band: str
    gemeente: str
    reason: str
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    no_new_start: dict[str, bool] = field(default_factory=dict)


def trajectories(count: int, seed: int, response_rate: float = 0.6,
                 offered: int | None = 4) -> list[Trajectory]:
    """Synthetic ended trajectories of one provider (offering ``offered`` hulpvormen) or, with
    ``offered=None``, of the whole country."""
    rnd = random.Random(seed)
    weights = [2, 8, 3, 2, 2, 1, 0.3, 0.7]
    if offered is not None:
        keep = set(random.Random(7).sample(range(len(HULPVORMEN)), offered))
        weights = [w if i in keep else 0 for i, w in enumerate(weights)]
    out: list[Trajectory] = []
    for _ in range(count):
        band = rnd.choices(BANDS, [1, 4, 4, 3, 1])[0]
        informants = {"0-3": ("ouder",), "4-11": ("ouder",), "12-15": INFORMANTS}.get(
            band, ("jeugdige",))
        t = Trajectory(
            access="true" if rnd.random() < 0.3 else "false",
            sector=rnd.choices(SECTORS, [8, 2, 1])[0],
            hulpvorm=rnd.choices(HULPVORMEN, weights)[0],
            band=band,
            gemeente=rnd.choices(GEMEENTEN, [3, 1])[0],
            reason=rnd.choices(["01", "02", "03", "04", "05"], [12, 3, 2, 1, 1])[0],
        )
        for informant in informants:
            if rnd.random() < response_rate:
                goals = [rnd.choices([-1, 0, 1, 2], [1, 2, 4, 5])[0] for _ in range(rnd.randint(1, 3))]
                t.answers[informant] = {
                    "satisfaction": min(10, max(1, round(rnd.gauss(7.3, 1.5)))),
                    "withoutHelp": rnd.choices([1, 2, 3, 4], [1, 3, 4, 3])[0],
                    "problemChange": None if t.access == "true" else rnd.choices(CHANGE, [3, 4, 3, 1, 0.5])[0],
                    "goal": rnd.choices([-1, 0, 1, 2], [1, 2, 4, 5])[0],
                    "goals": goals,
                }
        for window, p in (("volgendHalfjaar", 0.82), ("6m", 0.86), ("12m", 0.78)):
            t.no_new_start[window] = rnd.random() < p
        out.append(t)
    return out


def _groups(rows: list[Trajectory], intern: bool) -> Iterable[tuple[dict[str, str], list[Trajectory]]]:
    """Every population of the table, over the full grid of the code lists."""
    yield {}, rows
    for f in ACCESS:
        yield {"freelyAccessible": f}, [t for t in rows if t.access == f]
        for s in SECTORS:
            yield ({"freelyAccessible": f, "sector": s},
                   [t for t in rows if (t.access, t.sector) == (f, s)])
            for h in HULPVORMEN:
                yield ({"freelyAccessible": f, "sector": s, "hulpvorm": h},
                       [t for t in rows if (t.access, t.sector, t.hulpvorm) == (f, s, h)])
    if intern:
        for b in BANDS:
            yield {"ageBand": b}, [t for t in rows if t.band == b]
        for g in GEMEENTEN:
            yield {"gemeente": g}, [t for t in rows if t.gemeente == g]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _cell(indicator: str, variant: str | None, breakdown: dict[str, str], n: int, responses: int | None,
          value: float | None, distribution: dict[str, int] | None, eligible: int | None = None) -> Cell:
    answered = responses is None or responses > 0
    status = "not-applicable" if eligible == 0 else "ok" if answered else "no-responses"
    return Cell(indicator=indicator, variant=variant, breakdown=breakdown, n=n, responses=responses,
                eligible=eligible, value=value if status == "ok" else None, distribution=distribution,
                status=status)


#: Age bands where a jeugdige answers (seed 001: from 12).
JEUGDIGE_BANDS = ("12-15", "16-17", "18-23")


def population_cells(breakdown: dict[str, str], group: list[Trajectory],
                     observable: bool) -> list[Cell]:
    """Every indicator figure of one population, unprotected, as aggregate defines it: uitval
    and 3.2 without a response count, a volgens-plan sub-figure with its own n, the jeugdige's
    response over those aged 12 and over, and 3.3 and 3.4 for niet-vrij-toegankelijke hulp only."""
    n = len(group)
    out: list[Cell] = []
    reasons = {r: sum(1 for t in group if t.reason == r) for r in ("01", "02", "03", "04", "05")}
    out.append(_cell("uitval", None, breakdown, n, None, _share(reasons["03"], n), reasons))
    for window in WINDOWS:
        for variant, members in ((window, group),
                                 (f"volgensPlan{window[0].upper()}{window[1:]}",
                                  [t for t in group if t.reason == "01"])):
            kept = sum(1 for t in members if t.no_new_start[window])
            cell = _cell("geenNieuweStart", variant, breakdown, len(members), None,
                         _share(kept, len(members)),
                         {"geenNieuweStart": kept, "nieuweStart": len(members) - kept})
            if not members:
                cell.status, cell.value = "no-responses", None
            if not observable and cell.status == "ok":
                cell.status, cell.value, cell.distribution = "not-yet-observable", None, None
            out.append(cell)
    individual = breakdown.get("freelyAccessible") == "false"
    for informant in INFORMANTS:
        b = {**breakdown, "informant": informant}
        eligible = n if informant == "ouder" else sum(1 for t in group if t.band in JEUGDIGE_BANDS)
        answers = [t.answers[informant] for t in group if informant in t.answers]
        sat = {str(k): sum(1 for a in answers if a["satisfaction"] == k) for k in range(1, 11)}
        mean = round(sum(int(k) * v for k, v in sat.items()) / len(answers), 2) if answers else None
        out.append(_cell("tevredenheid", None, b, n, len(answers), mean, sat, eligible))
        wh = {str(k): sum(1 for a in answers if a["withoutHelp"] == k) for k in range(1, 5)}
        out.append(_cell("zonderHulpVerder", None, b, n, len(answers),
                         _share(wh["3"] + wh["4"], len(answers)), wh, eligible))
        if not individual:
            continue
        pc = {k: sum(1 for a in answers if a["problemChange"] == k) for k in CHANGE}
        resp = sum(pc.values())
        out.append(_cell("afnameProblematiek", None, b, n, resp,
                         _share(pc[CHANGE[0]] + pc[CHANGE[1]], resp), pc, eligible))
        goal = {str(k): sum(1 for a in answers if a["goal"] == k) for k in (-1, 0, 1, 2)}
        out.append(_cell("doelrealisatie", "overall", b, n, len(answers),
                         _share(goal["1"] + goal["2"], len(answers)), goal, eligible))
        goals = {str(k): sum(a["goals"].count(k) for a in answers) for k in (-1, 0, 1, 2)}
        out.append(_cell("doelrealisatie", "perDoel", b, n, len(answers),
                         _share(goals["1"] + goals["2"], sum(goals.values())), goals, eligible))
    return out


def table_cells(rows: list[Trajectory], *, intern: bool, observable: bool = True) -> list[Cell]:
    return [c for breakdown, group in _groups(rows, intern)
            for c in population_cells(breakdown, group, observable)]


def _hide(c: Cell) -> None:
    c.status = "suppressed"
    c.n = c.responses = c.eligible = None
    c.value = None
    c.distribution = None


def _population(c: Cell) -> tuple[tuple[str, str], ...]:
    """The population of a cell, care dimensions in hierarchy order (parent = key[:-1])."""
    order = ("freelyAccessible", "sector", "hulpvorm", "ageBand", "gemeente")
    return tuple((k, c.breakdown[k]) for k in order if k in c.breakdown)


def protect(cells: list[Cell], threshold: int) -> list[Cell]:
    """Third-party protection: small groups (zero included) hidden with one complementary
    sibling, all reported as ``suppressed``; values on too few answers withheld."""
    out = [c.model_copy(deep=True) for c in cells]
    populations: dict[tuple[tuple[str, str], ...], int] = {}
    for c in out:
        key = _population(c)
        populations[key] = max(populations.get(key, 0), c.n or 0)
    hidden = {k for k, n in populations.items() if n < threshold}
    siblings: dict[tuple[tuple[str, str], ...], list[tuple[tuple[str, str], ...]]] = {}
    for key in populations:
        if key:
            care = key[-1][0] in ("freelyAccessible", "sector", "hulpvorm")
            siblings.setdefault(key[:-1] if care else (("*", key[-1][0]),), []).append(key)
    for members in siblings.values():
        small = [k for k in members if k in hidden and populations[k] > 0]
        if len(small) == 1:
            rest = sorted((k for k in members if k not in hidden), key=lambda k: populations[k])
            if rest:
                hidden.add(rest[0])
    for c in out:
        if c.breakdown.get("informant") == "jeugdige" and "ageBand" not in c.breakdown:
            c.eligible = None  # a third party sees it only where the age band gives it
        if _population(c) in hidden:
            _hide(c)
        elif c.status == "ok" and c.responses is not None and c.responses < threshold:
            # the number of responses is itself a small count: not shown either
            c.status, c.value, c.distribution, c.responses = "too-few-responses", None, None, None
        elif (c.variant or "").startswith("volgensPlan") and 0 < (c.n or 0) < threshold:
            c.status, c.n, c.value, c.distribution = "too-few-responses", None, None, None
        elif c.responses is not None and 0 < c.responses < threshold:
            c.responses = None  # e.g. a window not yet observable: its small base is not shown
        elif c.distribution is not None:  # a small category is left out, as aggregate leaves it out
            c.distribution = {k: v for k, v in c.distribution.items() if not 0 < v < threshold}
    return out


def provider_tables(agb: str, period: str, *, count: int = 160, seed: int = 1,
                    threshold: int = 10, observable: bool = True,
                    response_rate: float = 0.6) -> tuple[OutcomeTable, OutcomeTable]:
    """The intern and deelbaar table of one provider and period."""
    rows = trajectories(count, seed, response_rate)
    common: dict[str, Any] = dict(period=period, scope=Scope(kind="provider", code=agb),
                                  threshold=threshold, generatedAt=GENERATED_AT)
    intern = OutcomeTable(variant="intern", trajectories=count, withoutBsn=count // 20,
                          cells=table_cells(rows, intern=True, observable=observable), **common)
    shown = count >= threshold
    deelbaar = OutcomeTable(
        variant="deelbaar", trajectories=count if shown else None,
        withoutBsn=count // 20 if shown else None,
        cells=protect(table_cells(rows, intern=False, observable=observable), threshold), **common)
    return intern, deelbaar


def national_table(period: str, *, seed: int = 99, count: int = 6000, threshold: int = 10,
                   observable: bool = True) -> OutcomeTable:
    rows = trajectories(count, seed, 0.45, offered=None)
    cells = [c for c in table_cells(rows, intern=True, observable=observable)
             if "gemeente" not in c.breakdown]
    return OutcomeTable(
        period=period, scope=Scope(kind="national"), variant="feed", threshold=threshold,
        generatedAt=GENERATED_AT, trajectories=count, withoutBsn=count // 25,
        cells=protect(cells, threshold),
    )


class FakeFigures:
    """A ``FigureSource`` over tables held in memory; counts calls so caching can be tested."""

    def __init__(self) -> None:
        self.provider: dict[tuple[str, str, str], OutcomeTable] = {}
        self.national: dict[str, OutcomeTable] = {}
        self.calls = 0

    def add_provider(self, agb: str, period: str, **kwargs: Any) -> tuple[OutcomeTable, OutcomeTable]:
        intern, deelbaar = provider_tables(agb, period, **kwargs)
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
