"""The minimised, pseudonymised rows ingest hands to aggregate (the wire format).

Validated here with pydantic so the store never accepts a row with a field it
must not hold: extra fields are forbidden, so a BSN, birth date or full
postcode sent by mistake is refused, not stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WirePseudonym(BaseModel):
    """A keyed value (hex HMAC-SHA256) and the key version it is under: a pseudonym or a content hash."""

    model_config = ConfigDict(extra="forbid", strict=True)
    #: At most what the store's SMALLINT column holds: a larger version used to reach the database and fail there (500).
    keyVersion: int = Field(ge=1, le=32767)  # noqa: N815
    value: str = Field(pattern=r"^[0-9a-f]{64}$")


class WireMeasurement(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    informant: Literal["jeugdige", "ouder"]
    satisfaction: int | None = Field(default=None, ge=1, le=10)
    withoutHelp: int | None = Field(default=None, ge=1, le=4)  # noqa: N815
    problemChange: str | None = None  # noqa: N815
    goalOverall: int | None = Field(default=None, ge=-1, le=2)  # noqa: N815
    #: Per-goal scores on the same -1..2 scale as goalOverall (a score out of range, or beyond a 64-bit
    #: integer, used to be stored or to fail in the database driver with a 500).
    goals: list[Annotated[int, Field(ge=-1, le=2)]] = Field(default_factory=list)


class WireKey(BaseModel):
    """What classifying a record needs: its identity and content hashes, and what a withdrawal is matched on.

    ``contentHashes`` are the record's content digests keyed by pseudonymise
    under every live key version, like ``pseudonyms``: the store keeps the
    one under the row's key version, and a record resent after a rotation is
    compared under the version it was stored with.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    recordId: str = Field(min_length=1, max_length=64)  # noqa: N815
    contentHashes: list[WirePseudonym] = Field(min_length=1)  # noqa: N815
    pseudonyms: list[WirePseudonym] = Field(min_length=1)
    trajectoryRef: str = Field(min_length=1, max_length=64)  # noqa: N815
    legalBasis: Literal["wettelijke-verplichting", "toestemming"]  # noqa: N815
    consentOn: dt.date | None = None  # noqa: N815


class WireTrajectory(WireKey):
    """One minimised trajectory: no BSN, no birth date, no 6-position postcode, no gender."""

    bsnKnown: bool  # noqa: N815
    unborn: bool = False
    pc4: str = Field(pattern=r"^[1-9][0-9]{3}$")
    gemeente: str = Field(pattern=r"^GM[0-9]{4}$")
    ageAtEnd: int = Field(ge=0, le=30)  # noqa: N815
    ageBand: str  # noqa: N815
    sector: str
    freelyAccessible: bool  # noqa: N815
    hulpvorm: str
    referrer: str
    startedInCrisis: bool  # noqa: N815
    startDate: dt.date  # noqa: N815
    endDate: dt.date  # noqa: N815
    period: str = Field(pattern=r"^20\d{2}-H[12]$")
    terminationReason: str  # noqa: N815
    consentBy: str | None = None  # noqa: N815
    measurements: list[WireMeasurement] = Field(default_factory=list, max_length=2)


_PSEUDONYM: dict[str, Any] = {"keyVersion": 1, "value": "3f" * 32}

EXAMPLE_TRAJECTORY: dict[str, Any] = {
    "recordId": "HZN-2026-000123", "contentHashes": [{"keyVersion": 1, "value": "9c" * 32}],
    "pseudonyms": [_PSEUDONYM], "bsnKnown": True,
    "trajectoryRef": "TR-88812", "pc4": "1055", "gemeente": "GM0363", "ageAtEnd": 14, "ageBand": "12-15",
    "sector": "jeugdhulp", "freelyAccessible": False, "hulpvorm": "02", "referrer": "01",
    "startedInCrisis": False, "startDate": "2025-09-01", "endDate": "2026-03-20", "period": "2026-H1",
    "terminationReason": "01", "legalBasis": "toestemming", "consentBy": "beide", "consentOn": "2025-09-01",
    "measurements": [{"informant": "jeugdige", "satisfaction": 8, "withoutHelp": 3,
                      "problemChange": "matige-verbetering", "goalOverall": 1, "goals": []}],
}


EXAMPLE_KEY: dict[str, Any] = {k: EXAMPLE_TRAJECTORY[k] for k in WireKey.model_fields}


class PrepareRequest(BaseModel):
    """Phase one of a delivery: classify a batch's records against the store, store nothing of them yet.

    Only each record's key travels here; the rows themselves come with the
    commit, once their audit entries are durable. Nothing of a record is
    written before that, so a batch that is never committed leaves only its
    classification behind.
    """

    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"examples": [{"batchId": "HZN-2026-H1-0001", "providerAgb": "98000001",
                                         "trajectories": [EXAMPLE_KEY]}]},
    )
    batchId: str = Field(min_length=1, max_length=64)  # noqa: N815
    providerAgb: str = Field(pattern=r"^[0-9]{8}$")  # noqa: N815
    trajectories: list[WireKey]
    replacePeriod: str | None = Field(  # noqa: N815
        default=None, pattern=r"^20\d{2}-H[12]$",
        description="Period re-delivery: this batch replaces what the provider delivered for this period; "
        "its stored records that are neither in the batch nor in keepRecordIds are withdrawn at commit",
    )
    keepRecordIds: list[str] = Field(  # noqa: N815
        default_factory=list,
        description="Records present in the re-delivery but rejected by ingest: not absent, so not withdrawn",
    )


class CommitRequest(BaseModel):
    """Phase two: the minimised rows of a prepared batch, all of them, in the order they were prepared.

    Aggregate checks them against the prepared keys (same record ids and
    keyed content hashes, same order) and stores those classified as new or as a
    correction.
    """

    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra={"examples": [{"trajectories": [EXAMPLE_TRAJECTORY]}]})
    trajectories: list[WireTrajectory]


class RefusedRecord(BaseModel):
    recordId: str  # noqa: N815
    code: str
    reason: str


class BatchOutcome(BaseModel):
    """Per-record classification of a batch; kept so a resend gets the same answer."""

    batchId: str  # noqa: N815
    state: Literal["prepared", "committed"]
    accepted: list[str]
    duplicates: list[str]
    corrections: list[str]
    refused: list[RefusedRecord]
    replacePeriod: str | None = None  # noqa: N815
    withdrawn: list[str] = Field(
        default_factory=list, description="Period re-delivery: stored records absent from it, removed at commit"
    )


class WithdrawalRequest(BaseModel):
    """A withdrawal, phase one: a person's trajectories (pseudonymised by ingest) or named records.

    ``pseudonyms`` (optionally narrowed to one ``trajectoryRef``) is a consent
    withdrawal; ``recordIds`` removes those records (a period re-delivery
    that no longer holds them). Exactly one of the two.
    """

    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"examples": [{"providerAgb": "98000001", "pseudonyms": [_PSEUDONYM],
                                         "trajectoryRef": "TR-88812", "withdrawnOn": "2026-05-02"}]},
    )
    providerAgb: str = Field(pattern=r"^[0-9]{8}$")  # noqa: N815
    pseudonyms: list[WirePseudonym] | None = Field(default=None, min_length=1)
    trajectoryRef: str | None = Field(default=None, max_length=64)  # noqa: N815
    recordIds: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(  # noqa: N815
        default=None, min_length=1, max_length=10_000)
    withdrawnOn: dt.date  # noqa: N815

    @model_validator(mode="after")
    def _one_selection(self) -> WithdrawalRequest:
        if (self.pseudonyms is None) == (self.recordIds is None):
            raise ValueError("give either pseudonyms (a person) or recordIds, not both")
        if self.recordIds is not None and self.trajectoryRef is not None:
            raise ValueError("trajectoryRef narrows a person's withdrawal; named records need none")
        return self


class WithdrawalOutcome(BaseModel):
    """What a withdrawal removes (prepared) or removed (committed); the same on every resend."""

    withdrawalId: str  # noqa: N815
    state: Literal["prepared", "committed"]
    removed: int
    recordIds: list[str]  # noqa: N815
    periods: list[str]
