"""Wire models of the report API: annotations, shares and the report document itself.

The report document is the JSON variant of a mirror report and the single
source every other format (CSV, HTML, PDF) is rendered from, so the four
formats can never disagree.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from ttp.bsn import elfproef
from ttp.outcomes import INDICATORS, Cell
from ttp.periods import PeriodStatus
from ttp.timestamps import UtcDatetime

IndicatorName = Literal[
    "uitval",
    "tevredenheid",
    "zonderHulpVerder",
    "geenNieuweStart",
    "afnameProblematiek",
    "doelrealisatie",
]
assert get_args(IndicatorName) == INDICATORS

ReportVariant = Literal["intern", "deelbaar"]

AGB_PATTERN = r"^\d{8}$"
PERIOD_PATTERN = r"^20\d{2}-H[12]$"
GEMEENTE_PATTERN = r"^GM\d{4}$"

MAX_TEXT = 4000

#: Nine digits passing the 11-proef: a BSN. Annotations are free text a gemeente
#: may read; a BSN typed into one would land on disk and in a shared document.
_NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")
#: A 6-position postcode (``1234AB`` / ``1234 AB``), which the TTP never stores.
_POSTCODE6 = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{3} ?[A-Z]{2}(?![0-9A-Za-z])")


def personal_data_found(text: str) -> str | None:
    """Why ``text`` looks like it holds a BSN or full postcode, or None."""
    if any(elfproef(m.group(0)) for m in _NINE_DIGITS.finditer(text)):
        return "contains a nine-digit number that passes the 11-proef (a BSN); remove it"
    if _POSTCODE6.search(text):
        return "contains a six-position postcode; use at most the four digits"
    return None


class AnnotationIn(BaseModel):
    """The provider's story behind one indicator, and its answers to the four questions."""

    model_config = ConfigDict(extra="forbid")

    indicator: IndicatorName
    story: str | None = Field(
        default=None, max_length=MAX_TEXT, description="Het verhaal achter de cijfers"
    )
    recognition: str | None = Field(
        default=None, max_length=MAX_TEXT, description="Herkennen we het?"
    )
    explanation: str | None = Field(
        default=None, max_length=MAX_TEXT, description="Hoe verklaren we het?"
    )
    appraisal: str | None = Field(
        default=None, max_length=MAX_TEXT, description="Wat vinden we ervan?"
    )
    needs: str | None = Field(default=None, max_length=MAX_TEXT, description="Wat is nodig?")

    @field_validator("story", "recognition", "explanation", "appraisal", "needs")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.replace("\r\n", "\n").strip()
        if not value:
            return None
        reason = personal_data_found(value)
        if reason:
            raise ValueError(reason)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> AnnotationIn:
        if not any((self.story, self.recognition, self.explanation, self.appraisal, self.needs)):
            raise ValueError(
                "an annotation needs at least one non-empty text; leave the indicator out instead"
            )
        return self

    def texts(self) -> dict[str, str | None]:
        return {
            "story": self.story,
            "recognition": self.recognition,
            "explanation": self.explanation,
            "appraisal": self.appraisal,
            "needs": self.needs,
        }


EXAMPLE_ANNOTATIONS: JsonDict = {
    "annotations": [
        {
            "indicator": "tevredenheid",
            "story": "Sinds maart vragen we de tevredenheid digitaal uit; de respons bij ouders "
            "steeg daardoor van 45% naar 64%.",
            "recognition": "Ja, de teams herkennen het lagere cijfer bij pleegzorg.",
            "explanation": "Veel wisselingen van gezinsvoogd in het voorjaar.",
            "appraisal": "We willen dit verbeteren; het cijfer past niet bij onze ambitie.",
            "needs": "Een vaste contactpersoon per gezin, samen met de gemeente.",
        }
    ]
}


class AnnotationsIn(BaseModel):
    """The complete set of annotations of one report period; indicators left out are cleared."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_ANNOTATIONS]})

    annotations: list[AnnotationIn] = Field(max_length=len(INDICATORS))

    @field_validator("annotations")
    @classmethod
    def _unique(cls, value: list[AnnotationIn]) -> list[AnnotationIn]:
        seen = [a.indicator for a in value]
        if len(seen) != len(set(seen)):
            raise ValueError("each indicator may appear only once")
        return value


class AnnotationOut(AnnotationIn):
    updatedAt: UtcDatetime  # noqa: N815


class AnnotationsOut(BaseModel):
    providerId: str  # noqa: N815
    period: str
    annotations: list[AnnotationOut]


class ShareOut(BaseModel):
    """One share of a shareable report with one gemeente."""

    providerId: str  # noqa: N815
    providerName: str  # noqa: N815
    period: str
    variant: Literal["deelbaar"] = "deelbaar"
    gemeenteCode: str  # noqa: N815
    firstGrantedAt: UtcDatetime  # noqa: N815
    grantedAt: UtcDatetime  # noqa: N815
    revokedAt: UtcDatetime | None = None  # noqa: N815
    active: bool
    href: str = Field(description="Path of the shared report")


class DisclosedVersion(BaseModel):
    dataVersion: str  # noqa: N815
    firstServedAt: UtcDatetime  # noqa: N815
    href: str = Field(description="Path of the figures exactly as served (service role)")


class ShareRecord(ShareOut):
    """A share as the disclosure check sees it: with every figure version that was served."""

    disclosedVersions: list[DisclosedVersion]  # noqa: N815


class ShareList(BaseModel):
    shares: list[ShareOut]


class ShareRecordList(BaseModel):
    shares: list[ShareRecord]


class CellRef(BaseModel):
    indicator: str
    variant: str | None = None
    breakdown: dict[str, str] = Field(default_factory=dict)


class NationalReference(BaseModel):
    """National figures beside the provider's own; a reference, never a norm or a rank."""

    period: str
    generatedAt: UtcDatetime  # noqa: N815
    cells: list[Cell]
    withheld: list[CellRef] = Field(
        default_factory=list,
        description="National cells not shown because too few trajectories of other providers are "
        "in them: beside the provider's own figure they would give those away by subtraction.",
    )


class TrendPeriod(BaseModel):
    """The provider's headline figures of one earlier (or the current) period."""

    period: str
    available: bool = Field(description="False when there are no figures for this period")
    trajectories: int | None
    cells: list[Cell]
    national: NationalReference | None


class ReportDocument(BaseModel):
    """One mirror report: one provider, one half year, one variant."""

    providerId: str  # noqa: N815
    providerName: str  # noqa: N815
    period: str
    variant: ReportVariant
    threshold: int = Field(description="Smallest n shown in the deelbaar variant")
    generatedAt: UtcDatetime = Field(description="When aggregate computed the figures")  # noqa: N815
    dataVersion: str = Field(description="Fingerprint of the figures this document was built from")  # noqa: N815
    trajectories: int | None
    withoutBsn: int | None  # noqa: N815
    unborn: int | None = Field(
        default=None, description="Trajectories of an unborn child (BSN code 999999999), apart"
    )
    periodStatus: PeriodStatus = Field(  # noqa: N815
        default="voorlopig",
        description="'voorlopig' while the half year runs or its 3-week delivery term has not "
        "passed, else 'definitief'; the report shows it as a banner",
    )
    notes: list[str]
    cells: list[Cell] = Field(
        description="Every figure of the period, exactly as aggregate computed it"
    )
    national: NationalReference | None
    trend: list[TrendPeriod] = Field(
        description="Headline figures of up to four periods, oldest first"
    )
    annotations: list[AnnotationOut]

    def figures_only(self) -> dict[str, object]:
        """The document without the provider's texts: what the disclosure check reasons over."""
        return self.model_dump(mode="json", exclude={"annotations"})
