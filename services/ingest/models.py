# ruff: noqa: N815 - attribute names are the camelCase JSON names of the NL API Design Rules
"""The record contract a provider posts, the batch envelope around it and the receipt.

Attribute names are the JSON names (camelCase, NL API Design Rules) so that what
the OpenAPI document shows, what a provider sends, what a pydantic error
location says and what the code reads are one and the same name; there is no
alias layer that could make a dump come out in the wrong case.

The models check *form*: types, code lists, lengths and patterns. Rules that
relate fields to each other or to the calendar (11-proef, date order, the
informant and consent rules by age, the measurement window) live in
:mod:`services.ingest.rules`, because they need the caller's AGB code and
today's date and must each yield their own stable problem code.

Strictness is deliberate. The body arrives as JSON and is parsed into plain
Python objects before validation, so pydantic runs in Python mode, whose lax
rules would quietly turn ``"7"`` into ``7``, ``1`` into ``True`` and a Unix
timestamp into a date. A data officer expects the contract to mean what it says:
numbers and booleans are strict, code lists are literals (never coerced), and
date fields accept only an ISO ``YYYY-MM-DD`` string (or a ``datetime.date``
from Python callers).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import field
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
)
from pydantic.dataclasses import dataclass

from ttp.problems import InvalidParam
from ttp.timestamps import UtcDatetime

#: Largest number of records in one batch (the envelope is refused above it).
MAX_BATCH_RECORDS: Final = 10_000

#: Identifier characters for recordId and batchId: safe in URLs, logs and file names.
ID_PATTERN: Final = r"^[A-Za-z0-9._:-]{1,64}$"

#: Said of every identifier field in the contract (``services.ingest.identifier_screen`` enforces it).
NO_PERSONAL_DATA: Final = (
    " Must not carry personal data: it is stored and logged, so a value that is, or contains as a "
    "separate run of digits, a 9-digit number passing the 11-proef (a BSN), or that contains the "
    "client's birth date (YYYY-MM-DD or YYYYMMDD), is refused. Other dates are allowed."
)

#: A Dutch postcode after normalisation: 4 digits not starting with 0, then 2 letters.
#: PostNL never issues the letter pairs SA, SD and SS, so they are refused too.
POSTCODE_PATTERN: Final = r"^[1-9][0-9]{3}(?:[A-RT-Z][A-Z]|S[BCE-RT-Z])$"

#: The two BSN codes of the CBS Informatieprotocol that are not a BSN: no or unknown BSN,
#: and an unborn child (who has none yet). Both are keyed on the fallback key and counted
#: apart in the outputs.
BSN_NONE: Final = "000000000"
BSN_UNBORN: Final = "999999999"
FALLBACK_BSNS: Final = frozenset({BSN_NONE, BSN_UNBORN})

Sector = Literal["jeugdhulp", "jeugdbescherming", "jeugdreclassering"]
Gender = Literal["V", "M", "O"]
#: CBS hulpvorm: 01-04 without stay, 11-14 with stay (verblijf).
Hulpvorm = Literal["01", "02", "03", "04", "11", "12", "13", "14"]
#: CBS verwijzer; 07 is not in the code list.
Referrer = Literal["01", "02", "03", "04", "05", "06", "08"]
TerminationReason = Literal["01", "02", "03", "04", "05"]
LegalBasis = Literal["wettelijke-verplichting", "toestemming"]
Informant = Literal["jeugdige", "ouder"]
ConsentBy = Literal["jeugdige", "ouder", "beide"]
ProblemChange = Literal[
    "sterke-verbetering",
    "matige-verbetering",
    "stabilisatie",
    "matige-verslechtering",
    "sterke-verslechtering",
]

SECTORS: Final[tuple[str, ...]] = ("jeugdhulp", "jeugdbescherming", "jeugdreclassering")
HULPVORMEN: Final[tuple[str, ...]] = ("01", "02", "03", "04", "11", "12", "13", "14")
REFERRERS: Final[tuple[str, ...]] = ("01", "02", "03", "04", "05", "06", "08")
TERMINATION_REASONS: Final[tuple[str, ...]] = ("01", "02", "03", "04", "05")
PROBLEM_CHANGES: Final[tuple[str, ...]] = (
    "sterke-verbetering",
    "matige-verbetering",
    "stabilisatie",
    "matige-verslechtering",
    "sterke-verslechtering",
)


def _iso_date_only(value: Any) -> Any:
    """Let only ``YYYY-MM-DD`` strings (and real dates) through to the date parser.

    pydantic's lax date parsing would also take Unix timestamps and datetime
    strings; those are not what the contract says, and accepting them would hide
    a mapping error in the provider's export.
    """
    if type(value) is str:
        if len(value) != 10:
            raise ValueError("expected a date as YYYY-MM-DD")
        return value
    if type(value) is dt.date:
        return value
    raise ValueError("expected a date as YYYY-MM-DD")


def _normalise_postcode(value: Any) -> Any:
    """``"1234 ab"`` and ``"1234AB"`` are the same address; store one form."""
    if type(value) is str:
        return "".join(value.split()).upper()
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_only)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
Postcode = Annotated[
    str, BeforeValidator(_normalise_postcode), StringConstraints(pattern=POSTCODE_PATTERN)
]
GoalScore = Annotated[StrictInt, Field(ge=-1, le=2)]

EXAMPLE_RECORD: Final[dict[str, Any]] = {
    "recordId": "HZN-2026-000123",
    "providerAgb": "98000001",
    "bsn": "123456782",
    "birthDate": "2012-03-14",
    "gender": "V",
    "postcode": "1011AB",
    "gemeente": "GM0363",
    "trajectoryId": "TR-88412",
    "startDate": "2025-09-01",
    "endDate": "2026-03-20",
    "sector": "jeugdhulp",
    "freelyAccessible": False,
    "hulpvorm": "02",
    "referrer": "02",
    "startedInCrisis": False,
    "terminationReason": "01",
    "legalBasis": "toestemming",
    "consent": {"givenBy": "beide", "givenOn": "2025-09-01"},
    "measurements": [
        {
            "informant": "jeugdige",
            "measuredOn": "2026-03-13",
            "satisfaction": 8,
            "withoutHelp": 3,
            "problemChange": "matige-verbetering",
            "goalAttainment": {"perGoal": [2, 1, 2]},
        },
        {
            "informant": "ouder",
            "measuredOn": "2026-03-16",
            "satisfaction": 7,
            "withoutHelp": 3,
            "problemChange": "stabilisatie",
            "goalAttainment": {"overall": 1},
        },
    ],
}


# The record and its parts are (frozen, slotted) pydantic dataclasses rather than
# BaseModels: on the ingest hot path, creating BaseModel instances for a record,
# its consent, measurements and goal scores cost about three times the
# validation itself (20 us against 7 us per record on a 2-core box), while a
# dataclass gives the same validation, JSON Schema and attribute access.

#: Shared by the record's parts: unknown fields are refused.
_CONTRACT = ConfigDict(extra="forbid")
#: Frozen, slotted, keyword-only: a validated record cannot drift after the rules ran.
_DATACLASS: Final[dict[str, Any]] = {"slots": True, "frozen": True, "kw_only": True}


@dataclass(config=_CONTRACT, **_DATACLASS)
class GoalAttainment:
    """Indicator 3.4: one overall score, a score per agreed goal, or both.

    Scale: -1 not reached and worse than at start, 0 not reached, 1 partly
    reached, 2 reached. The professional chooses overall or per goal.
    """

    overall: GoalScore | None = None
    perGoal: Annotated[list[GoalScore], Field(min_length=1, max_length=20)] | None = None


@dataclass(config=_CONTRACT, **_DATACLASS)
class Measurement:
    """One informant's answers at the end of the trajectory.

    Every answer is optional (an informant may skip a question), but a
    measurement with no answer at all is refused by the rules: leave it out.
    """

    informant: Informant
    measuredOn: Annotated[
        IsoDate, Field(description="At most 3 weeks (21 days) before or after endDate")
    ]
    satisfaction: Annotated[StrictInt | None, Field(ge=1, le=10, description="Indicator 2, 1..10")] = (
        None
    )
    withoutHelp: Annotated[StrictInt | None, Field(ge=1, le=4, description="Indicator 3.1, 1..4")] = (
        None
    )
    problemChange: Annotated[
        ProblemChange | None, Field(description="Indicator 3.3, niet-vrij-toegankelijke hulp only")
    ] = None
    goalAttainment: Annotated[
        GoalAttainment | None, Field(description="Indicator 3.4, niet-vrij-toegankelijke hulp only")
    ] = None


@dataclass(config=_CONTRACT, **_DATACLASS)
class Consent:
    """Who consented to delivery (legal basis ``toestemming``) and when."""

    givenBy: ConsentBy
    givenOn: IsoDate


@dataclass(
    config=ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_RECORD]}),
    **_DATACLASS,
)
class Record:
    """One ended trajectory (hulptraject) of one client, as the provider's system exports it."""

    recordId: Annotated[
        Identifier,
        Field(description="Provider's own unique id of this record (idempotency key)." + NO_PERSONAL_DATA),
    ]
    providerAgb: Annotated[
        str, Field(pattern=r"^[0-9]{8}$", description="AGB code of the provider the record is for")
    ]
    bsn: Annotated[
        str,
        Field(
            pattern=r"^[0-9]{9}$",
            description="Burgerservicenummer, passes the 11-proef; 000000000 when there is no "
            "or no known BSN, 999999999 for an unborn child (CBS Informatieprotocol): both "
            "are linked by the fallback key (gender, birth date, postcode)",
        ),
    ]
    birthDate: IsoDate
    gender: Gender
    postcode: Annotated[
        Postcode, Field(description="6-position postcode, e.g. 1234AB (spaces and case normalised)")
    ]
    gemeente: Annotated[
        str,
        Field(pattern=r"^GM[0-9]{4}$", description="CBS code of the responsible municipality"),
    ]
    trajectoryId: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="Provider's id of the trajectory." + NO_PERSONAL_DATA,
        ),
    ]
    startDate: IsoDate
    endDate: IsoDate
    sector: Sector
    freelyAccessible: Annotated[
        StrictBool,
        Field(description="true: vrij-toegankelijke hulp; false: individuele voorziening"),
    ]
    hulpvorm: Hulpvorm
    referrer: Referrer
    startedInCrisis: StrictBool
    terminationReason: TerminationReason
    legalBasis: LegalBasis
    consent: Annotated[
        Consent | None, Field(description="Required when legalBasis is toestemming")
    ] = None
    measurements: Annotated[
        list[Measurement],
        Field(max_length=2, description="Zero, one or two; one per informant"),
    ] = field(default_factory=list)

    @property
    def bsn_known(self) -> bool:
        """False when the provider sent one of the protocol's no-BSN codes (fallback key)."""
        return self.bsn not in FALLBACK_BSNS

    @property
    def unborn(self) -> bool:
        """True for the protocol's unborn-child code 999999999."""
        return self.bsn == BSN_UNBORN


#: The one validator of a record, built once (building it costs milliseconds).
RECORD_ADAPTER: Final[TypeAdapter[Record]] = TypeAdapter(Record)


def _raw_record(value: Any) -> Any:
    """Pass a record through untouched: records are validated one by one later."""
    return value


#: A record as it sits in the envelope: anything; documented in OpenAPI as a Record.
RawRecord = Annotated[Any, PlainValidator(_raw_record, json_schema_input_type=Record)]


class BatchEnvelope(BaseModel):
    """The body of ``POST /v1/batches``.

    Only the envelope is validated as a whole (a malformed envelope gets 400 for
    the entire batch); each record is then accepted or rejected on its own, so
    ``records`` holds raw objects here.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"batchId": "HZN-2026-H1-0001", "records": [EXAMPLE_RECORD]}]
        },
    )

    batchId: Identifier = Field(
        description="Provider's id of this batch; resending it is safe. Must not carry personal data: it is "
        "stored and logged, so a batchId that is, or contains as a separate run of digits, a 9-digit number "
        "passing the 11-proef (a BSN) gets 400 for the whole batch."
    )
    records: list[RawRecord] = Field(min_length=1, max_length=MAX_BATCH_RECORDS)


class RecordProblem(BaseModel):
    """Why one record of a batch was rejected, or (in ``Receipt.warnings``) which of its
    measurements were left out: the same location structure for both, so a provider's
    system (and a CSV or XLSX delivery's row and column mapping) reads them alike."""

    index: int = Field(ge=0, description="Position of the record in the batch, from 0")
    recordId: str | None = Field(description="The record's recordId; null when it could not be read")
    problems: list[InvalidParam]
    row: int | None = Field(
        default=None, description="CSV/XLSX delivery: the row of the file (row 1 is the heading row)"
    )


class ReceiptCounts(BaseModel):
    """What happened to the records of a batch; the five numbers add up.

    ``received = accepted + duplicates + corrections + rejected``: a duplicate
    (same recordId, same content) and a correction (same recordId, new content)
    are counted only in their own column.
    """

    received: int = Field(ge=0)
    accepted: int = Field(ge=0, description="New records stored")
    duplicates: int = Field(ge=0, description="Same recordId and content as before: no-op")
    corrections: int = Field(ge=0, description="Same recordId, new content: replaced and logged")
    rejected: int = Field(ge=0)


BatchStatus = Literal["accepted", "partially-accepted", "rejected"]


def batch_status(counts: ReceiptCounts) -> BatchStatus:
    """Summarise counts: every record through, some rejected, or none through."""
    if counts.rejected == 0:
        return "accepted"
    if counts.rejected >= counts.received:
        return "rejected"
    return "partially-accepted"


class Receipt(BaseModel):
    """The answer to a batch, and what ``GET /v1/batches/{batchId}`` returns again."""

    batchId: str
    provider: str = Field(pattern=r"^[0-9]{8}$", description="AGB code of the delivering provider")
    receivedAt: UtcDatetime
    status: BatchStatus
    counts: ReceiptCounts
    rejected: list[RecordProblem] = Field(default_factory=list)
    warnings: list[RecordProblem] = Field(
        default_factory=list,
        description="Accepted records with a measurement that was left out (seed 001: a fault "
        "in a measurement does not drop the trajectory, which still counts for uitval and "
        "geen nieuwe start); by index, recordId and the measurement's field",
    )
    audit: dict[str, Any] | None = Field(
        default=None,
        description="Audit log leaf indexes of this batch's entries and their inclusion proof",
    )
    replacedPeriod: str | None = Field(
        default=None, description="Period re-delivery: the period this batch replaced"
    )
    withdrawn: list[str] = Field(
        default_factory=list,
        description="Period re-delivery: recordIds of the period left out of it, withdrawn (and logged)",
    )
