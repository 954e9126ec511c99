"""Request and response of ``POST /v1/pseudonyms``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Longest canonical record accepted (a record with two full measurements is about 1 kB).
MAX_CONTENT_CHARS = 16_384


class Identifier(BaseModel):
    """A person identifier: a BSN, or the CBS fallback key ``gender|birthDate|postcode``.

    With ``content``, the canonical form of the record the identifier came
    from, whose keyed digest is answered beside the pseudonym.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["bsn", "fallback"]
    value: str = Field(min_length=9, max_length=64, pattern=r"^[0-9A-Za-z|\- ]+$")
    content: str | None = Field(
        default=None, min_length=2, max_length=MAX_CONTENT_CHARS,
        description="The record's canonical JSON (keys sorted, no whitespace), as ingest normalised it; "
        "keyed and discarded, never stored or logged",
    )


class PseudonymRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"identifiers": [{"kind": "bsn", "value": "111222333",
                                           "content": '{"bsn":"111222333","recordId":"R-1"}'},
                                          {"kind": "fallback", "value": "V|2012-03-04|1234AB"}]}]
        },
    )
    identifiers: list[Identifier] = Field(min_length=1, max_length=20_000)


class PseudonymResponse(BaseModel):
    """``pseudonyms[i][j]`` is identifier ``i`` under key version ``keyVersions[j]`` (newest first).

    ``contentDigests[i][j]``, likewise, is the keyed digest of identifier
    ``i``'s ``content`` (null when none was sent).
    """

    keyVersions: list[int]  # noqa: N815
    pseudonyms: list[list[str]]
    contentDigests: list[list[str] | None]  # noqa: N815
