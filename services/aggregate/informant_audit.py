"""The informant rule as an attacker's constraint: hidden age bands of the Rijk's feed, bounded.

The validation rules are public, and so is who may answer at which age
(``services.ingest.rules.allowed_informants``: under 12 only a parent, 12 to
15 both, 16 and over the young person, and per issue 18 a parent too). With
the responses per informant published per gemeente and per age band, a
reader knows, per gemeente: the bands' n sum to the gemeente's n, per
informant the bands' responses sum to the gemeente's, responses never exceed
n, and an informant who may not answer at any age of a band has no responses
there. Under exact counts that integer program narrowed hidden age bands
below their protection interval (issue 16: GM0375 18-23, true 6, to 2..8).
Here every shown count is read as the range the cell-key method gives it, and
the check asks whether any hidden band is pinned to one value.

The rule is read from its one place in ingest, so a change there is followed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from services.aggregate.cells import BANDS
from services.ingest.rules import allowed_informants
from ttp.outcomes import Cell, OutcomeTable
from ttp.periods import AGE_BANDS

#: A shown value -> the true counts it can stand for (low, high); None: nothing is known.
Reading = Callable[[int | None], tuple[int, int] | None]
BIG = 10**6
INFORMANTS = ("jeugdige", "ouder")
FigureKey = tuple[str, str, tuple[tuple[str, str], ...]]


def informants_of_band(band: str) -> frozenset[str]:
    """Who may answer for some age in the band."""
    low, high = next((lo, hi) for label, lo, hi in AGE_BANDS if label == band)
    out: frozenset[str] = frozenset()
    for age in range(low, high + 1):
        out |= allowed_informants(age)
    return out


@dataclass(frozen=True)
class BandBound:
    gemeente: str
    band: str
    low: int
    high: int

    @property
    def pinned(self) -> bool:
        return self.low == self.high


def age_band_bounds(rijk: OutcomeTable, reading: Reading) -> list[BandBound]:
    """Bounds on every hidden gemeente x age-band cell of a Rijk table (an integer program each)."""
    figures: dict[FigureKey, Cell] = {
        (c.indicator, c.variant or "", tuple(sorted(c.breakdown.items()))): c for c in rijk.cells
    }
    gemeenten = sorted({dict(k[2])["gemeente"] for k in figures if "gemeente" in dict(k[2])})
    out: list[BandBound] = []
    for g in gemeenten:
        out += _gemeente_bounds(figures, g, reading)
    return out


def _gemeente_bounds(figures: dict[FigureKey, Cell], g: str, reading: Reading) -> list[BandBound]:
    def get(indicator: str, **b: str) -> Cell | None:
        return figures.get((indicator, "", tuple(sorted({"gemeente": g, **b}.items()))))

    bands = [band for band in BANDS if (c := get("uitval", ageBand=band)) is not None and c.n is None]
    total = get("uitval")
    if not bands or total is None or total.n is None:
        return []
    nb, ni = len(BANDS), len(INFORMANTS)
    size = nb + nb * ni  # n per band, then responses per band per informant
    lo = np.zeros(size)
    hi = np.full(size, float(BIG))

    def bound(index: int, shown: int | None) -> None:
        r = reading(shown)
        if r is not None:
            lo[index], hi[index] = max(lo[index], r[0]), min(hi[index], r[1])

    rows: list[np.ndarray] = []
    row_lo: list[float] = []
    row_hi: list[float] = []

    def constrain(row: np.ndarray, r: tuple[int, int] | None, default: tuple[float, float]) -> None:
        rows.append(row)
        row_lo.append(r[0] if r else default[0])
        row_hi.append(r[1] if r else default[1])

    for b, band in enumerate(BANDS):
        cell = get("uitval", ageBand=band)
        bound(b, cell.n if cell else None)
        for k, informant in enumerate(INFORMANTS):
            v = nb + b * ni + k
            if informant not in informants_of_band(band):
                hi[v] = 0
            sat = get("tevredenheid", ageBand=band, informant=informant)
            if sat is not None and sat.status == "ok":
                bound(v, sat.responses)
            row = np.zeros(size)
            row[v], row[b] = 1, -1
            constrain(row, None, (-BIG, 0))  # responses never exceed n
    row = np.zeros(size)
    row[:nb] = 1
    constrain(row, reading(total.n), (0, BIG))
    for k, informant in enumerate(INFORMANTS):
        sat = get("tevredenheid", informant=informant)
        if sat is None or sat.status != "ok":
            continue
        row = np.zeros(size)
        row[[nb + b * ni + k for b in range(nb)]] = 1
        constrain(row, reading(sat.responses), (0, BIG))
    constraint = optimize.LinearConstraint(np.array(rows), np.array(row_lo), np.array(row_hi))
    out = []
    for band in bands:
        b = BANDS.index(band)
        ends: list[int] = []
        for sense in (1.0, -1.0):
            cost = np.zeros(size)
            cost[b] = sense
            res = optimize.milp(cost, constraints=constraint, bounds=optimize.Bounds(lo, hi),
                                integrality=np.ones(size))
            if res.x is None:
                break
            ends.append(round(float(res.x[b])))
        if len(ends) == 2:
            out.append(BandBound(g, band, ends[0], ends[1]))
    return out
