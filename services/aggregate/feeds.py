"""From stored cell counts to the ``OutcomeTable`` each recipient receives.

One builder serves every output: a gemeente's feed (its own residents per
PC4 and in total, per care type, per age band), the Rijk's (national and per
gemeente), a provider's internal and shareable report figures, and the
national reference. A provider's internal table shows everything.

Third-party outputs show every count through the cell-key method
(``cell_key.py``): n, each category of a distribution, each number of
responses, each numerator; shares and means come from those shown counts.
A hidden figure says so (status ``suppressed``, every figure null), a hidden
category is left out of its distribution; neither is shown as zero.
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
from services.aggregate.cell_key import CellKeyMethod, CountRule, exact
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
NOTE_PROTECTION: Final = (
    "Alle aantallen zijn beschermd met de cell-key-methode (zoals ABS en ONS die gebruiken): elk "
    "aantal staat er met een kleine, vaste afwijking (hoogstens 3, gemiddeld 0; dezelfde inhoud "
    "krijgt altijd dezelfde afwijking). Reden van afscherming: een aantal dat na die afwijking "
    "onder {t} uitkomt, is afgeschermd; een categorie valt dan weg uit de verdeling, een cijfer "
    "waarvan n of het aantal metingen is afgeschermd, staat als 'suppressed' (afgeschermd). Zo staat "
    "geen aantal van 1 tot {t} er zoals het is. Aandelen en gemiddelden zijn berekend uit de "
    "gepubliceerde aantallen; de onderdelen tellen daardoor niet altijd precies op tot het totaal."
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
                as_of: dt.date, generated_at: dt.datetime, method: CellKeyMethod | None = None) -> OutcomeTable:
    """The output's table for a period.

    A third-party output shows every count through the cell-key method
    (``cell_key.py``): ``method`` is required for one. The internal report shows
    the stored counts as they are.
    """
    if output.third_party and method is None:
        raise ValueError("a third-party output needs the cell-key method")
    domains = load_domains(conn, period)
    stored = load_cells(conn, period, output)
    # A new start is seen only once delivered: a window is observable after its last day
    # plus the delivery term.
    observable = {w: as_of > window_end(period, w) + DELIVERY_TERM for w in WINDOWS}
    cells: list[Cell] = []
    zero = StoredCell(np.zeros(len(LAYOUT), dtype=np.int64), False, 0)
    total_key: CellKey | None = None
    for key in output_keys(output, domains):
        if not output.third_party and key[GEO] and key not in stored:
            continue  # an internal report need not list the gemeenten a provider had no clients in
        s = stored.get(key, zero)
        rule = method.rule(s.counts) if method is not None and output.third_party else exact
        breakdown = breakdown_of(key, scope_dims=output.scope_dims)
        if not breakdown:
            total_key = key
        cells += population_cells(key, breakdown, s.counts, rule, observable, third_party=output.third_party)
    total = stored.get(total_key, zero) if total_key is not None else zero
    total_rule = method.rule(total.counts) if method is not None and output.third_party else exact

    def total_count(name: str) -> int | None:
        return total_rule(int(total.counts[IDX[name]]), name) if total_key is not None else None

    notes = [NOTES_3_2]
    if output.third_party:
        notes.append(NOTE_PROTECTION.format(t=threshold))
    return OutcomeTable(
        period=period,
        periodStatus=period_status(period, as_of),
        scope=Scope(kind=output.kind, code=output.code),
        variant=output.variant,
        threshold=threshold,
        generatedAt=generated_at,
        trajectories=total_count("n"),
        withoutBsn=total_count("bsnUnknown"),
        unborn=total_count("unborn"),
        cells=cells,
        notes=notes,
    )


def _share(part: int | None, whole: int | None) -> float | None:
    return round(part / whole, 4) if part is not None and whole else None


def _cell(indicator: str, variant: str | None, breakdown: dict[str, str], n: int | None,
          responses: int | None, value: float | None, distribution: dict[str, int | None] | None,
          status: CellStatus, eligible: int | None = None) -> Cell:
    if status == "suppressed":
        return Cell(indicator=indicator, variant=variant, breakdown=breakdown, n=None,
                    responses=None, value=None, distribution=None, status=status)
    shown: dict[str, int] | None = None
    if status in ("too-few-responses", "no-responses", "not-yet-observable", "not-applicable"):
        value = None
    elif distribution is not None:
        # An afgeschermd category is left out: the reader sees which categories are shown.
        shown = {k: v for k, v in distribution.items() if v is not None}
    return Cell(indicator=indicator, variant=variant, breakdown=breakdown, n=n, responses=responses,
                eligible=eligible, value=value, distribution=shown, status=status)


def _status(n: int | None, responses: int | None, eligible: int | None = None) -> CellStatus:
    """A figure whose n or responses are afgeschermd is ``suppressed`` (afgeschermd), whatever
    the reason; never "too few responses", which a count of 10 or 11 can be afgeschermd for too.
    The reason is in the table's notes. A jeugdige in a cell of under-12s is "n.v.t.":
    ``eligible`` 0 is structural (the age band says it), not a count."""
    if n is None or responses is None:
        return "suppressed"
    if eligible == 0:
        return "not-applicable"
    if responses == 0:
        return "no-responses"
    return "ok"


def _eligible(key: CellKey, counts: np.ndarray, informant: str, *, third_party: bool) -> int | None:
    """Trajectories in which ``informant`` answers: the response rate's denominator.

    A jeugdige answers from 12 (seed 001), a parent at any age (at 16+ as the stand-in).
    A third party sees the jeugdige's count only where the cell's age band already gives
    it (all or none of the cell): elsewhere it would be a new count of its own.
    """
    n = int(counts[IDX["n"]])
    if informant == "ouder":
        return n
    if third_party and not key[2]:
        return None
    return int(counts[IDX["jeugdigeAnswers"]])


def population_cells(key: CellKey, breakdown: dict[str, str], counts: np.ndarray, rule: CountRule,
                     observable: dict[str, bool], *, third_party: bool = False) -> list[Cell]:
    """Every indicator figure of one population cell, each count shown through ``rule``.

    Every number a reader sees is a count given by ``rule`` (n, each category,
    each number of responses, each numerator), or a share or mean computed from
    those shown counts only.

    Uitval and 3.2 are registered for every trajectory, so they carry no response count;
    a 'volgensPlan' sub-figure's ``n`` is the trajectories ended volgens plan; a new
    jeugdbescherming or jeugdreclassering trajectory is no new start jeugdhulp and is shown
    apart ('jbJr...'). 3.3 and 3.4 apply to niet-vrij-toegankelijke hulp only (seed 001: "in
    geval van een individuele voorziening"), so they are published for those cells only,
    where ``n`` counts exactly those trajectories.
    """
    c = counts

    def count(*names: str) -> int | None:
        return rule(int(sum(int(c[IDX[name]]) for name in names)), "+".join(names))

    n = count("n")
    out: list[Cell] = []
    reasons = {r: count(f"reason.{r}") for r in TERMINATION_REASONS}
    out.append(_cell("uitval", None, breakdown, n, None, _share(reasons["03"], n), reasons, _status(n, n)))
    plan = reasons["01"]
    for window in WINDOWS:
        suffix = f"{window[0].upper()}{window[1:]}"
        for prefix, variant, base_name in (
            ("gns", window, "n"),
            ("gnsPlan", f"volgensPlan{suffix}", "reason.01"),
            ("gnsJbJr", f"jbJr{suffix}", "n"),
        ):
            base = n if base_name == "n" else plan
            true_kept = int(c[IDX[f"{prefix}.{window}"]])
            kept = rule(true_kept, f"{prefix}.{window}")
            started = rule(int(c[IDX[base_name]]) - true_kept, f"{prefix}.{window}.start")
            status = _status(n, base)
            if status == "ok" and not observable[window]:
                status = "not-yet-observable"
            out.append(_cell("geenNieuweStart", variant, breakdown, base, None, _share(kept, base),
                             {"geenNieuweStart": kept, "nieuweStart": started}, status))
    individual = bool(key[1]) and key[1][0] == "false"
    for informant in INFORMANTS:
        b = {**breakdown, "informant": informant}
        true_eligible = _eligible(key, c, informant, third_party=third_party)
        eligible = None if true_eligible is None else (
            n if informant == "ouder" else rule(true_eligible, "jeugdigeAnswers"))
        if true_eligible == 0:
            eligible = 0  # structural: a cell of under-12s, given by its age band
        names = [f"{informant}.sat.{k}" for k in SATISFACTION]
        sat = {str(k): count(name) for k, name in zip(SATISFACTION, names, strict=True)}
        resp = count(*names)
        out.append(_cell("tevredenheid", None, b, n, resp, _mean(sat), sat,
                         _status(n, resp, true_eligible), eligible))
        names = [f"{informant}.wh.{k}" for k in WITHOUT_HELP]
        wh = {str(k): count(name) for k, name in zip(WITHOUT_HELP, names, strict=True)}
        resp = count(*names)
        out.append(_cell("zonderHulpVerder", None, b, n, resp,
                         _share(count(f"{informant}.wh.3", f"{informant}.wh.4"), resp), wh,
                         _status(n, resp, true_eligible), eligible))
        if not individual:
            continue
        names = [f"{informant}.pc.{k}" for k in PROBLEM_CHANGE]
        pc = {k: count(name) for k, name in zip(PROBLEM_CHANGE, names, strict=True)}
        resp = count(*names)
        improved = count(f"{informant}.pc.sterke-verbetering", f"{informant}.pc.matige-verbetering")
        out.append(_cell("afnameProblematiek", None, b, n, resp, _share(improved, resp), pc,
                         _status(n, resp, true_eligible), eligible))
        names = [f"{informant}.goal.{k}" for k in GOAL_SCORES]
        goal = {str(k): count(name) for k, name in zip(GOAL_SCORES, names, strict=True)}
        resp = count(*names)
        out.append(_cell("doelrealisatie", "overall", b, n, resp,
                         _share(count(f"{informant}.goal.1", f"{informant}.goal.2"), resp),
                         goal, _status(n, resp, true_eligible), eligible))
        names = [f"{informant}.goals.{k}" for k in GOAL_SCORES]
        goals = {str(k): count(name) for k, name in zip(GOAL_SCORES, names, strict=True)}
        resp = count(f"{informant}.goalsResp")
        out.append(_cell("doelrealisatie", "perDoel", b, n, resp,
                         _share(count(f"{informant}.goals.1", f"{informant}.goals.2"), count(*names)),
                         goals, _status(n, resp, true_eligible), eligible))
    return out


def _mean(distribution: dict[str, int | None]) -> float | None:
    """The mean of a distribution over its shown categories (None if none is shown)."""
    shown = {int(k): v for k, v in distribution.items() if v is not None}
    total = sum(shown.values())
    return round(sum(k * v for k, v in shown.items()) / total, 2) if total else None


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

