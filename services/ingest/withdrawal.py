"""Consent withdrawal: a provider tells the TTP that a client withdrew consent.

The person is identified the way records identify them (BSN, or the fallback
key when the BSN is unknown), pseudonymised, and every trajectory of that
person from this provider (or only the named trajectory) is removed from the
store. The audit log records what was removed, by recordId, never the person.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.ingest.models import FALLBACK_BSNS
from ttp.bsn import elfproef


class ConsentWithdrawal(BaseModel):
    """Body of ``POST /v1/consent-withdrawals``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"bsn": "111222333", "trajectoryId": "TR-2026-0042", "withdrawnOn": "2026-05-02"},
                {"bsn": "999999999", "gender": "V", "birthDate": "2013-02-01", "postcode": "1234AB",
                 "withdrawnOn": "2026-05-02"},
            ]
        },
    )
    bsn: str = Field(
        pattern=r"^[0-9]{9}$",
        description="BSN; 000000000 when there is no (known) BSN, 999999999 for an unborn child "
        "(then the fallback key, as in the record)",
    )
    gender: Literal["V", "M", "O"] | None = None
    birthDate: dt.date | None = None  # noqa: N815
    postcode: str | None = Field(default=None, pattern=r"^[1-9][0-9]{3} ?[A-Za-z]{2}$")
    trajectoryId: str | None = Field(  # noqa: N815
        default=None, min_length=1, max_length=64,
        description="Only this trajectory. Must not carry personal data (a BSN-shaped number or the client's "
        "birth date): it is logged, so such a value gets 400.",
    )
    withdrawnOn: dt.date  # noqa: N815

    @model_validator(mode="after")
    def _identifiable(self) -> ConsentWithdrawal:
        if self.bsn in FALLBACK_BSNS:
            if not (self.gender and self.birthDate and self.postcode):
                raise ValueError("without a BSN, gender, birthDate and postcode are required")
        elif not elfproef(self.bsn):
            raise ValueError("bsn does not pass the 11-proef")
        return self

    def identifier(self) -> tuple[str, str]:
        """(kind, value) for pseudonymise, the same as for a record of this person."""
        if self.bsn not in FALLBACK_BSNS:
            return "bsn", self.bsn
        assert self.gender and self.birthDate and self.postcode
        postcode = self.postcode.replace(" ", "").upper()
        return "fallback", f"{self.gender}|{self.birthDate.isoformat()}|{postcode}"


class WithdrawalReceipt(BaseModel):
    removed: int = Field(description="Trajectories removed from the store")
    recordIds: list[str] = Field(description="The provider's recordIds that were removed")  # noqa: N815
    periods: list[str] = Field(description="Periods whose figures were recomputed")
    audit: dict[str, object] | None = None
