"""Identifier fields must not carry personal data: the screen for recordId, trajectoryId and batchId.

These three fields are the provider's own free identifiers, and unlike the
BSN, birth date and postcode they are *kept*: in the trajectory store, in
receipts and in the append-only audit log, which can never be purged. A
provider whose export builds ids from a client's BSN or birth date would
therefore store the very data pseudonymisation removes. So a value is
refused when it

* is, or contains as a separate run of digits, a 9-digit number that passes
  the 11-proef (:func:`ttp.bsn.carries_bsn`), or
* contains the record's own birth date, as ``2012-03-04`` or ``20120304``.

Dates in general stay allowed: providers put start dates in their ids, and
a date that is not this client's birth date identifies no one. A batchId has
no record of its own, so only the BSN rule applies to it; it is refused for
the whole batch (400), a record's id for that record only.

A refused recordId is never repeated: the receipt and the ``record-rejected``
entry then carry ``recordId: null`` and the record's index.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from services.ingest.models import Record
from ttp.bsn import carries_bsn
from ttp.problems import InvalidParam, Problem

#: Problem codes of the screen and their fixed reasons (merged into ``rules.PROBLEM_CODES``).
SCREEN_CODES: Final[dict[str, str]] = {
    "identifier-bsn": "This identifier contains a number that passes the 11-proef, as a BSN does; "
    "identifiers are stored and logged, so they must not carry personal data. Use an id "
    "without the client's BSN.",
    "identifier-birth-date": "This identifier contains the client's birth date; identifiers are "
    "stored and logged, so they must not carry personal data. Use an id without it.",
}

#: The record fields screened, with their JSON names.
SCREENED_FIELDS: Final = ("recordId", "trajectoryId")


def personal_data_code(value: str, birth: dt.date | None) -> str | None:
    """The screen's problem code for ``value``, or None when it carries nothing personal."""
    if carries_bsn(value):
        return "identifier-bsn"
    if birth is not None:
        iso = birth.isoformat()
        if iso in value or iso.replace("-", "") in value:
            return "identifier-birth-date"
    return None


def record_identifier_problems(rec: Record, base: str) -> list[InvalidParam]:
    """Problems of a form-valid record's recordId and trajectoryId (``base``: ``/records/<i>``)."""
    problems: list[InvalidParam] = []
    for name in SCREENED_FIELDS:
        code = personal_data_code(getattr(rec, name), rec.birthDate)
        if code is not None:
            problems.append(InvalidParam(name=f"{base}/{name}", code=code, reason=SCREEN_CODES[code]))
    return problems


def _raw_birth_date(raw: Any) -> dt.date | None:
    """The birth date of a raw record if it is readable, so a form-invalid record is screened too."""
    value = raw.get("birthDate") if isinstance(raw, dict) else None
    if type(value) is not str or len(value) != 10:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def repeatable_record_id(record_id: str | None, raw: Any) -> str | None:
    """``record_id`` if a receipt and the log may repeat it, else None (it carries personal data)."""
    if record_id is None or personal_data_code(record_id, _raw_birth_date(raw)) is not None:
        return None
    return record_id


def refuse_personal_identifier(name: str, value: str | None, birth: dt.date | None = None) -> None:
    """Raise 400 for a whole request whose identifier field ``name`` carries personal data.

    For a batch's ``batchId`` (nothing of the batch is processed) and a
    withdrawal's ``trajectoryId``; the value itself is never repeated.
    """
    code = personal_data_code(value, birth) if value is not None else None
    if code is not None:
        raise Problem(
            400, f"{name} must not carry personal data; nothing of this request was processed.",
            invalid_params=[InvalidParam(name=f"/{name}", code=code, reason=SCREEN_CODES[code])],
        )
