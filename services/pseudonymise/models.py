"""Request and response of ``POST /v1/pseudonyms``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Identifier(BaseModel):
    """A person identifier: a BSN, or the CBS fallback key ``gender|birthDate|postcode``."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["bsn", "fallback"]
    value: str = Field(min_length=9, max_length=64, pattern=r"^[0-9A-Za-z|\- ]+$")


class PseudonymRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"identifiers": [{"kind": "bsn", "value": "111222333"},
                                          {"kind": "fallback", "value": "V|2012-03-04|1234AB"}]}]
        },
    )
    identifiers: list[Identifier] = Field(min_length=1, max_length=20_000)


class PseudonymResponse(BaseModel):
    """``pseudonyms[i][j]`` is identifier ``i`` under key version ``keyVersions[j]`` (newest first)."""

    keyVersions: list[int]  # noqa: N815
    pseudonyms: list[list[str]]
