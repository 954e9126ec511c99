"""From stored cell counts to the ``OutcomeTable`` each recipient receives.

One builder serves every output: a gemeente's feed (its own residents per
PC4 and in total, per care type, per age band), the Rijk's (national and per
gemeente), a provider's internal and shareable report figures, and the
national reference. Third-party outputs show the disclosure pattern stored
with the cells; a provider's internal table shows everything.

Hidden cells say so (status ``suppressed``, every figure null) and are never
shown as zero. Whether a cell was hidden for being small itself or to protect
another is deliberately not said: that would tell the reader which hidden
cells hold fewer than ``threshold`` trajectories.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Final, cast

import numpy as np
import orjson
from sqlalchemy import Connection, Table, and_, select

from services.aggregate.aggregate_models import OutcomeCell
from services.aggregate.cells import (
    DEELBAAR_VIEWS,
    GEMEENTE_VIEWS,
    GEO,
    INTERN_VIEWS,
    NATIONAL_VIEWS,
    PROV,
    RIJK_VIEWS,
    VIEW_NAMES,
    CellKey,
    View,
    breakdown_of,
    grid,
    parse_key,
)
from services.aggregate.disclosure import FAMILY_BIT
from services.aggregate.indicators import (
    GOAL_SCORES,
    IDX,
    INFORMANTS,
    LAYOUT,
    PROBLEM_CHANGE,
    SATISFACTION,
    TERMINATION_REASONS,
    WINDOWS,
    WITHOUT_HELP,
    add_months_py,
)
from services.aggregate.recompute import Domains, load_domains
from ttp.outcomes import Cell, CellStatus, OutcomeTable, Scope
from ttp.periods import DELIVERY_TERM, next_period, period_bounds, period_status

OC = cast(Table, OutcomeCell.__table__)

NOTES_3_2: Final = (
    "Geen nieuwe start (3.2): een nieuwe start telt als een ander jeugdhulptraject van dezelfde "
    "persoon, bij welke aanbieder ook, dat na de einddatum begint (strikt erna) en uiterlijk op "
    "de laatste dag van het venster. Een nieuw traject jeugdbescherming of jeugdreclassering is "
    "geen nieuwe start jeugdhulp en staat apart (varianten 'jbJr...'). Een traject dat nog loopt, "
    "is pas zichtbaar als het is beëindigd en aangeleverd: tot dan is het aandeel zonder nieuwe "
    "start een bovengrens. Een venster telt pas als waarneembaar wanneer het is verstreken én de "
    "aanlevertermijn van 3 weken daarna; tot dan staat het als 'not-yet-observable'."
)
NOTE_SUPPRESSION: Final = (
    "Cellen met minder dan {t} trajecten zijn afgeschermd, net als cellen die nodig zijn om die "
    "niet terug te kunnen rekenen uit totalen of andere overzichten (status 'suppressed', zonder "
    "cijfers). Een waarde over minder dan {t} metingen staat als 'too-few-responses'."
)


@dataclass(frozen=True)
class Output:
    """What one output shows: its views, scope and whether disclosure control applies."""

    kind: str  # gemeente | rijk | provider | national
    code: str | None
    variant: str  # feed | intern | deelbaar
    views: tuple[View, ...]

    @property
    def third_party(self) -> bool:
        return self.variant != "intern"

    @property
    def scope_dims(self) -> tuple[int, ...]:
        return (GEO,) if self.kind == "gemeente" else (PROV,) if self.kind == "provider" else ()


def gemeente_output(code: str) -> Output:
    return Output("gemeente", code, "feed", GEMEENTE_VIEWS)


def rijk_output() -> Output:
    return Output("rijk", None, "feed", RIJK_VIEWS)


def national_output() -> Output:
    return Output("national", None, "feed", NATIONAL_VIEWS)


def provider_output(agb: str, variant: str) -> Output:
    return Output("provider", agb, variant, INTERN_VIEWS if variant == "intern" else DEELBAAR_VIEWS)


@dataclass
class StoredCell:
    counts: np.ndarray
    suppressed: bool
    withheld: int


def load_cells(conn: Connection, period: str, output: Output) -> dict[CellKey, StoredCell]:
    """The stored cells of an output's views (only cells with trajectories are stored)."""
    names = [VIEW_NAMES[v] for v in output.views]
    cond = and_(OC.c.period == period, OC.c.view.in_(names))
    if output.kind == "gemeente":
        cond = and_(cond, OC.c.gemeente == output.code)
    elif output.kind == "provider":
        cond = and_(cond, OC.c.provider_agb == output.code)
    rows = conn.execute(select(OC.c.cell_key, OC.c.counts, OC.c.suppressed, OC.c.withheld).where(cond))
    return {
        parse_key(key): StoredCell(np.array(orjson.loads(counts), dtype=np.int64), bool(s), int(w))
        for key, counts, s, w in rows
    }


def output_keys(output: Output, domains: Domains) -> list[CellKey]:
    """Every cell an output lists: the whole grid of each view, in a stable order."""
    if output.kind == "gemeente":
        gemeenten = [output.code] if output.code else []
        providers: list[str] = []
    elif output.kind == "provider":
        gemeenten = domains.gemeenten
        providers = [output.code] if output.code else []
    else:
        gemeenten = domains.gemeenten
        providers = []
    keys: list[CellKey] = []
    for view in output.views:
        keys += grid(view, gemeenten, domains.pc4s, providers)
    return keys


def window_end(period: str, window: str) -> dt.date:
    """The last day any trajectory of ``period`` can still have a new start counted in ``window``."""
    last = period_bounds(period)[1]
    months = WINDOWS[window]
    return period_bounds(next_period(period))[1] if months is None else add_months_py(last, months)


def build_table(conn: Connection, period: str, output: Output, *, threshold: int,
                as_of: dt.date, generated_at: dt.datetime) -> OutcomeTable:
    """The output's table for a period, from the stored (already protected) cells."""
    domains = load_domains(conn, period)
    stored = load_cells(conn, period, output)
    # A new start is seen only once delivered: a window is observable after its last day
    # plus the delivery term.
    observable = {w: as_of > window_end(period, w) + DELIVERY_TERM for w in WINDOWS}
    cells: list[Cell] = []
    zero = StoredCell(np.zeros(len(LAYOUT), dtype=np.int64), output.third_party, 0)
    total_key: CellKey | None = None
    for key in output_keys(output, domains):
        if not output.third_party and key[GEO] and key not in stored:
            continue  # an internal report need not list the gemeenten a provider had no clients in
        s = stored.get(key, zero)
        hidden = output.third_party and (s.suppressed or int(s.counts[0]) < threshold)
        withheld = s.withheld if output.third_party else 0
        breakdown = breakdown_of(key, scope_dims=output.scope_dims)
        if not breakdown:
            total_key = key
        cells += population_cells(key, breakdown, s.counts, hidden, withheld, observable,
                                  third_party=output.third_party)
    total = stored.get(total_key) if total_key is not None else None
    total_hidden = total is None or (output.third_party and (total.suppressed or int(total.counts[0]) < threshold))
    notes = [NOTES_3_2]
    if output.third_party:
        notes.append(NOTE_SUPPRESSION.format(t=threshold))
    return OutcomeTable(
        period=period,
        periodStatus=period_status(period, as_of),
        scope=Scope(kind=output.kind, code=output.code),
        variant=output.variant,
        threshold=threshold,
        generatedAt=generated_at,
        trajectories=None if total_hidden or total is None else int(total.counts[0]),
        withoutBsn=None if total_hidden or total is None else int(total.counts[IDX["bsnUnknown"]]),
        unborn=None if total_hidden or total is None else int(total.counts[IDX["unborn"]]),
        cells=cells,
        notes=notes,
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _cell(indicator: str, variant: str | None, breakdown: dict[str, str], n: int | None,
          responses: int | None,
          value: float | None, distribution: dict[str, int] | None, status: CellStatus,
          eligible: int | None = None) -> Cell:
    if status == "suppressed":
        return Cell(indicator=indicator, variant=variant, breakdown=breakdown, n=None,
                    responses=None, value=None, distribution=None, status=status)
    if status in ("too-few-responses", "no-responses", "not-yet-observable", "not-applicable"):
        value, distribution = None, None
    return Cell(indicator=indicator, variant=variant, breakdown=breakdown, n=n, responses=responses,
                eligible=eligible, value=value, distribution=distribution, status=status)


def _status(hidden: bool, withheld: int, family: str | None, responses: int,
            eligible: int | None = None) -> CellStatus:
    if hidden:
        return "suppressed"
    if eligible == 0:
        return "not-applicable"
    if family is not None and withheld & FAMILY_BIT[family]:
        return "too-few-responses"
    if responses == 0:
        return "no-responses"
    return "ok"


def _eligible(key: CellKey, counts: np.ndarray, informant: str, *, third_party: bool) -> int | None:
    """Trajectories in which ``informant`` answers: the response rate's denominator.

    A jeugdige answers from 12 (seed 001), a parent at any age (at 16+ as the stand-in).
    A third party sees the jeugdige's count only where the cell's age band already gives
    it (all or none of the cell): elsewhere it would be a new, unprotected count.
    """
    n = int(counts[IDX["n"]])
    if informant == "ouder":
        return n
    if third_party and not key[2]:
        return None
    return int(counts[IDX["jeugdigeAnswers"]])


def population_cells(key: CellKey, breakdown: dict[str, str], counts: np.ndarray, hidden: bool,
                     withheld: int, observable: dict[str, bool], *, third_party: bool = False) -> list[Cell]:
    """Every indicator figure of one population cell.

    Uitval and 3.2 are registered for every trajectory, so they carry no response count;
    a 'volgensPlan' sub-figure's ``n`` is the trajectories ended volgens plan. 3.3 and 3.4
    apply to niet-vrij-toegankelijke hulp only (seed 001: "in geval van een individuele
    voorziening"), so they are published for those cells only, where ``n`` counts exactly
    those trajectories.
    """
    c = counts
    n = int(c[IDX["n"]])
    out: list[Cell] = []
    reasons = {r: int(c[IDX[f"reason.{r}"]]) for r in TERMINATION_REASONS}
    out.append(_cell("uitval", None, breakdown, n, None, _share(reasons["03"], n), reasons,
                     _status(hidden, withheld, None, n)))
    plan = reasons["01"]
    for window in WINDOWS:
        suffix = f"{window[0].upper()}{window[1:]}"
        for prefix, variant, base, family in (
            ("gns", window, n, None),
            ("gnsPlan", f"volgensPlan{suffix}", plan, "geenNieuweStart.volgensPlan"),
            ("gnsJbJr", f"jbJr{suffix}", n, None),
        ):
            kept = int(c[IDX[f"{prefix}.{window}"]])
            status = _status(hidden, withheld, family, base)
            if status == "ok" and not observable[window]:
                status = "not-yet-observable"
            # A third party sees a volgens-plan n withheld beside a withheld value: below the
            # threshold it would be a small count of its own.
            shown_n = None if third_party and status == "too-few-responses" else base
            out.append(_cell("geenNieuweStart", variant, breakdown, shown_n, None, _share(kept, base),
                             {"geenNieuweStart": kept, "nieuweStart": base - kept}, status))
    individual = bool(key[1]) and key[1][0] == "false"
    for informant in INFORMANTS:
        b = {**breakdown, "informant": informant}
        eligible = _eligible(key, c, informant, third_party=third_party)
        sat = {str(k): int(c[IDX[f"{informant}.sat.{k}"]]) for k in SATISFACTION}
        resp = sum(sat.values())
        mean = round(sum(int(k) * v for k, v in sat.items()) / resp, 2) if resp else None
        out.append(_cell("tevredenheid", None, b, n, resp, mean, sat,
                         _status(hidden, withheld, f"tevredenheid.{informant}", resp, eligible), eligible))
        wh = {str(k): int(c[IDX[f"{informant}.wh.{k}"]]) for k in WITHOUT_HELP}
        resp = sum(wh.values())
        out.append(_cell("zonderHulpVerder", None, b, n, resp, _share(wh["3"] + wh["4"], resp), wh,
                         _status(hidden, withheld, f"zonderHulpVerder.{informant}", resp, eligible),
                         eligible))
        if not individual:
            continue
        pc = {k: int(c[IDX[f"{informant}.pc.{k}"]]) for k in PROBLEM_CHANGE}
        resp = sum(pc.values())
        improved = pc["sterke-verbetering"] + pc["matige-verbetering"]
        out.append(_cell("afnameProblematiek", None, b, n, resp, _share(improved, resp), pc,
                         _status(hidden, withheld, f"afnameProblematiek.{informant}", resp, eligible),
                         eligible))
        goal = {str(k): int(c[IDX[f"{informant}.goal.{k}"]]) for k in GOAL_SCORES}
        resp = sum(goal.values())
        out.append(_cell("doelrealisatie", "overall", b, n, resp, _share(goal["1"] + goal["2"], resp),
                         goal, _status(hidden, withheld, f"doelrealisatie.overall.{informant}", resp, eligible),
                         eligible))
        goals = {str(k): int(c[IDX[f"{informant}.goals.{k}"]]) for k in GOAL_SCORES}
        resp = int(c[IDX[f"{informant}.goalsResp"]])
        out.append(_cell("doelrealisatie", "perDoel", b, n, resp,
                         _share(goals["1"] + goals["2"], sum(goals.values())), goals,
                         _status(hidden, withheld, f"doelrealisatie.perDoel.{informant}", resp, eligible),
                         eligible))
    return out


CSV_COLUMNS: Final = (
    "period", "scope", "scopeCode", "indicator", "variant", "gemeente", "pc4", "provider",
    "freelyAccessible", "sector", "hulpvorm", "ageBand", "informant", "n", "responses", "value",
    "status", "distribution", "eligible", "periodStatus",
)


def to_csv(table: OutcomeTable) -> str:
    """One row per figure; the distribution as ``category=count`` pairs; empty where null."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for cell in table.cells:
        b = cell.breakdown
        writer.writerow([
            table.period, table.scope.kind, table.scope.code or "", cell.indicator, cell.variant or "",
            b.get("gemeente", ""), b.get("pc4", ""), b.get("provider", ""),
            b.get("freelyAccessible", ""), b.get("sector", ""), b.get("hulpvorm", ""),
            b.get("ageBand", ""), b.get("informant", ""),
            "" if cell.n is None else cell.n, "" if cell.responses is None else cell.responses,
            "" if cell.value is None else cell.value, cell.status,
            ";".join(f"{k}={v}" for k, v in (cell.distribution or {}).items()),
            "" if cell.eligible is None else cell.eligible, table.periodStatus,
        ])
    return buf.getvalue()

