"""The shape of computed outcome figures, shared by aggregate (which computes
them) and report (which renders them), and by every feed a recipient reads.

A figure is a *cell*: one indicator for one population (a breakdown such as
care type x age band, within a scope such as a gemeente or a provider), with
``n`` and ``responses`` always beside the value, and an explicit status so a
suppressed cell is never shown as zero.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ttp.periods import PeriodStatus
from ttp.timestamps import UtcDatetime

INDICATORS: tuple[str, ...] = (
    "uitval",  # 1
    "tevredenheid",  # 2
    "zonderHulpVerder",  # 3.1
    "geenNieuweStart",  # 3.2
    "afnameProblematiek",  # 3.3
    "doelrealisatie",  # 3.4
)

#: Dimensions a cell may be broken down by; a key absent from ``breakdown`` means "all".
BREAKDOWN_KEYS: tuple[str, ...] = (
    "gemeente", "pc4", "provider", "sector", "freelyAccessible", "hulpvorm", "ageBand", "informant",
)

#: ``suppressed`` is what third-party outputs show for every hidden cell: saying whether a
#: cell was hidden for being small itself (primary) or to protect another (secondary) would
#: tell the reader which hidden cells hold fewer than ``threshold`` trajectories. The
#: ``suppressed-primary``/``-secondary`` values stay valid for internal diagnostics.
#: ``too-few-responses``: the population is shown (``n``, ``responses``) but the value rests on
#: fewer than ``threshold`` answers and is withheld.
#: ``not-applicable``: nobody in the population is asked (a jeugdige answers from 12, seed 001):
#: "n.v.t.", not "no responses, 0%".
CellStatus = Literal[
    "ok",
    "suppressed",
    "suppressed-primary",
    "suppressed-secondary",
    "not-yet-observable",
    "no-responses",
    "too-few-responses",
    "not-applicable",
]


class Cell(BaseModel):
    """One indicator figure for one population."""

    indicator: str = Field(description="One of INDICATORS")
    variant: str | None = Field(
        default=None,
        description="Sub-figure: 3.2 window ('volgendHalfjaar', '6m', '12m', 'volgensPlan6m', ...), "
        "3.4 'overall' or 'perDoel'",
    )
    breakdown: dict[str, str] = Field(default_factory=dict)
    n: int | None = Field(
        description="Ended trajectories in the population (for a 'volgensPlan' sub-figure: those "
        "ended volgens plan; for 3.3 and 3.4: niet-vrij-toegankelijke hulp only); null when "
        "suppressed"
    )
    responses: int | None = Field(
        description="Trajectories with an answer for this indicator; null where no response rate "
        "applies (uitval and 3.2 are registered for every trajectory, not asked)"
    )
    eligible: int | None = Field(
        default=None,
        description="Trajectories in which this informant answers: the denominator of the "
        "response rate (a jeugdige from 12 years, seed 001); null where no response rate applies "
        "or, in third-party outputs, where it is not already given by the cell's age band",
    )
    value: float | None = Field(description="Share (0..1) or mean, per indicator; null when suppressed")
    distribution: dict[str, int] | None = Field(
        default=None,
        description="Count per answer category; in a third-party output every count is perturbed "
        "(cell-key method) and a category whose count is afgeschermd is left out",
    )
    status: CellStatus = "ok"


class Scope(BaseModel):
    kind: Literal["gemeente", "rijk", "provider", "national"]
    code: str | None = None


class OutcomeTable(BaseModel):
    """Everything one output shows for one period."""

    period: str = Field(pattern=r"^20\d{2}-H[12]$")
    periodStatus: PeriodStatus = Field(  # noqa: N815
        default="voorlopig",
        description="'voorlopig' while the half year runs or its 3-week delivery term has not "
        "passed, else 'definitief' (as CBS labels its figures)",
    )
    scope: Scope
    variant: Literal["feed", "intern", "deelbaar"]
    threshold: int = Field(description="Smallest published n; cells below are suppressed")
    generatedAt: UtcDatetime  # noqa: N815
    trajectories: int | None = Field(description="Ended trajectories in scope (null when suppressed)")
    withoutBsn: int | None = Field(  # noqa: N815
        description="Trajectories delivered without a (known) BSN, code 000000000 (linked by the "
        "fallback key: gender, birth date, postcode)"
    )
    unborn: int | None = Field(
        default=None,
        description="Trajectories of an unborn child, code 999999999 (linked by the fallback key "
        "too, counted apart from withoutBsn)",
    )
    cells: list[Cell]
    notes: list[str] = Field(default_factory=list)
    rounding: int | None = Field(
        default=None,
        description="When set, every published count is rounded to a multiple of this base "
        "(a disclosure audit then treats each count as the range it stands for)",
    )
