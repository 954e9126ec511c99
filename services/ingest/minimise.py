"""Minimisation: what of a valid record may leave ingest, and in which form.

Ingest keeps nothing it received. Of a record it passes on only

* to pseudonymise: the person identifier (:func:`person_identifier`), and
* to aggregate: first the key of each minimised row (:func:`classification_key`,
  ``services.aggregate.wire.WireKey``) to classify it, then, once the audit
  entries are durable, the minimised row itself (:func:`minimise`), which
  matches ``WireTrajectory`` field for field: the postcode cut to PC4, the
  birth date turned into age at endDate and an age band, the BSN replaced by
  pseudonyms, and no gender at all.

:func:`canonical_content` is the record's *normalised* content as canonical
JSON, so the same trajectory sent twice (keys in another order, ``"1234 ab"``
instead of ``"1234AB"``, an answer as ``null`` or left out) has the same
form, and any real change another. Ingest never hashes it itself: it goes to
pseudonymise with the person identifier, which answers a digest keyed with
the HMAC key (``contentHashes``, one per key version). An unkeyed hash of a
record that holds the BSN, birth date and postcode, stored beside everything
else of it, gives those back by brute force; the keyed one cannot be
recomputed by anyone who stores it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from services.ingest.models import RECORD_ADAPTER, Measurement, Record
from ttp.periods import age_at, age_band, period_of

#: Domain tags of the two identifier kinds; pseudonymise keys them apart so a
#: BSN and a fallback key can never produce the same pseudonym.
KIND_BSN: Final = "bsn"
KIND_FALLBACK: Final = "fallback"


#: The fields of a minimised row aggregate classifies a record by: identity and
#: keyed content hashes, and what a consent withdrawal is matched on.
KEY_FIELDS: Final = ("recordId", "contentHashes", "pseudonyms", "trajectoryRef", "legalBasis", "consentOn")


def classification_key(row: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a minimised row that aggregate needs to classify it (``WireKey``)."""
    return {name: row[name] for name in KEY_FIELDS}


def person_identifier(rec: Record) -> tuple[str, str]:
    """(domain tag, normalised identifier) of the person, for pseudonymisation.

    The BSN when known. Otherwise (the protocol's codes 000000000, no or unknown
    BSN, and 999999999, unborn child), as in the CBS Informatieprotocol, gender +
    birth date + postcode; without the protocol's startDate and hulpvorm,
    because this key must identify the *person* (indicator 3.2 links a person's
    trajectories across providers), not one trajectory.
    """
    if rec.bsn_known:
        return KIND_BSN, rec.bsn
    return KIND_FALLBACK, f"{rec.gender}|{rec.birthDate.isoformat()}|{rec.postcode}"


def _measurement_dict(m: Measurement) -> dict[str, Any]:
    out: dict[str, Any] = {"informant": m.informant, "measuredOn": m.measuredOn.isoformat()}
    if m.satisfaction is not None:
        out["satisfaction"] = m.satisfaction
    if m.withoutHelp is not None:
        out["withoutHelp"] = m.withoutHelp
    if m.problemChange is not None:
        out["problemChange"] = m.problemChange
    goals = m.goalAttainment
    if goals is not None:
        g: dict[str, Any] = {}
        if goals.overall is not None:
            g["overall"] = goals.overall
        if goals.perGoal is not None:
            g["perGoal"] = list(goals.perGoal)
        out["goalAttainment"] = g
    return out


def normalised(rec: Record) -> dict[str, Any]:
    """The record as canonical JSON data: absent and null answers alike are left out,
    dates are ISO strings, the postcode is in its normalised form, and
    ``measurements`` is always present (possibly empty).

    Written out by hand rather than with pydantic's dump because it runs once
    per accepted record and this is several times faster.
    """
    out: dict[str, Any] = {
        "recordId": rec.recordId,
        "providerAgb": rec.providerAgb,
        "bsn": rec.bsn,
        "birthDate": rec.birthDate.isoformat(),
        "gender": rec.gender,
        "postcode": rec.postcode,
        "gemeente": rec.gemeente,
        "trajectoryId": rec.trajectoryId,
        "startDate": rec.startDate.isoformat(),
        "endDate": rec.endDate.isoformat(),
        "sector": rec.sector,
        "freelyAccessible": rec.freelyAccessible,
        "hulpvorm": rec.hulpvorm,
        "referrer": rec.referrer,
        "startedInCrisis": rec.startedInCrisis,
        "terminationReason": rec.terminationReason,
        "legalBasis": rec.legalBasis,
        "measurements": [_measurement_dict(m) for m in rec.measurements],
    }
    if rec.consent is not None:
        out["consent"] = {
            "givenBy": rec.consent.givenBy,
            "givenOn": rec.consent.givenOn.isoformat(),
        }
    return out


def canonical_content(record: Record | Mapping[str, Any]) -> str:
    """The canonical JSON of the record's normalised form: what its keyed content digest is over.

    Canonical: keys sorted, no whitespace (orjson ``OPT_SORT_KEYS``). It holds
    the BSN, birth date and postcode, so it only ever goes to pseudonymise
    (in memory, over mTLS) and is never stored, logged or hashed unkeyed. A
    raw mapping is validated first (``pydantic.ValidationError`` if it does
    not fit the contract); pass the validated :class:`Record` when you have it.
    """
    rec = record if isinstance(record, Record) else RECORD_ADAPTER.validate_python(record)
    return orjson.dumps(normalised(rec), option=orjson.OPT_SORT_KEYS).decode()


def minimise(
    rec: Record,
    pseudonyms: Sequence[Mapping[str, Any]],
    key_version: int,
    batch_id: str | None = None,
    *,
    content_hashes: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The wire row aggregate stores for one valid record (``WireTrajectory``).

    ``pseudonyms`` are the person's pseudonyms under every live key version
    (``{"keyVersion", "value"}``), as pseudonymise returned them; one must be
    under ``key_version``, the current key, or the row could not be linked to
    rows delivered from now on. They are passed on as they are (aggregate's
    strict wire model refuses a key version that is not an integer).
    ``content_hashes`` are the keyed digests of the record's
    :func:`canonical_content` under the same versions, in the same form.
    ``batch_id`` has no column in the row (the batch travels in the
    surrounding request) and only labels the error.

    Dates are ISO strings so the row is plain JSON for any encoder.
    """
    pseudo = list(pseudonyms)
    digests = list(content_hashes)
    for name, values in (("pseudonym", pseudo), ("content hash", digests)):
        if not any(p["keyVersion"] == key_version for p in values):
            where = f" in batch {batch_id}" if batch_id else ""
            raise ValueError(f"no {name} under the current key version {key_version}{where}")
    # An unborn child (CBS code 999999999) whose care ended before the expected birth is 0.
    age = max(age_at(rec.birthDate, rec.endDate), 0)
    consent = rec.consent
    measurements: list[dict[str, Any]] = []
    for m in rec.measurements:
        goals = m.goalAttainment
        measurements.append(
            {
                "informant": m.informant,
                "satisfaction": m.satisfaction,
                "withoutHelp": m.withoutHelp,
                "problemChange": m.problemChange,
                "goalOverall": goals.overall if goals is not None else None,
                "goals": list(goals.perGoal) if goals is not None and goals.perGoal else [],
            }
        )
    return {
        "recordId": rec.recordId,
        "contentHashes": digests,
        "pseudonyms": pseudo,
        "bsnKnown": rec.bsn_known,
        "unborn": rec.unborn,
        "trajectoryRef": rec.trajectoryId,
        "pc4": rec.postcode[:4],
        "gemeente": rec.gemeente,
        "ageAtEnd": age,
        "ageBand": age_band(age),
        "sector": rec.sector,
        "freelyAccessible": rec.freelyAccessible,
        "hulpvorm": rec.hulpvorm,
        "referrer": rec.referrer,
        "startedInCrisis": rec.startedInCrisis,
        "startDate": rec.startDate.isoformat(),
        "endDate": rec.endDate.isoformat(),
        "period": period_of(rec.endDate),
        "terminationReason": rec.terminationReason,
        "legalBasis": rec.legalBasis,
        "consentBy": consent.givenBy if consent is not None else None,
        "consentOn": consent.givenOn.isoformat() if consent is not None else None,
        "measurements": measurements,
    }
