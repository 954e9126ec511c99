"""Minimisation: the row aggregate stores holds PC4, age, period and pseudonyms, never
an identifier; the content hash is a stable fingerprint of the normalised record."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from services.aggregate.wire import WireKey, WireTrajectory
from services.ingest.minimise import (
    canonical_content,
    classification_key,
    minimise,
    normalised,
    person_identifier,
)
from services.ingest.models import RECORD_ADAPTER, Record
from tests.ingest.records import record

PSEUDO = [{"keyVersion": 2, "value": "b" * 64}, {"keyVersion": 1, "value": "a" * 64}]
HASHES = [{"keyVersion": 2, "value": "d" * 64}, {"keyVersion": 1, "value": "c" * 64}]


def validated(raw: dict[str, Any]) -> Record:
    return RECORD_ADAPTER.validate_python(raw)


def row_of(raw: dict[str, Any]) -> dict[str, Any]:
    return minimise(validated(raw), PSEUDO, 2, "batch-1", content_hashes=HASHES)


def test_row_is_exactly_the_aggregate_wire_format() -> None:
    row = row_of(record())
    wire = WireTrajectory.model_validate_json(orjson.dumps(row))  # as on the wire; extra fields forbidden
    assert set(row) == set(WireTrajectory.model_fields)
    assert wire.pseudonyms[0].keyVersion == 2


def test_row_holds_no_bsn_birth_date_full_postcode_or_gender() -> None:
    raw = record(bsn="123456782", birthDate="2012-05-21", postcode="3511 ab", gender="V")
    row = row_of(raw)
    text = orjson.dumps(row).decode()
    for secret in ("123456782", "2012-05-21", "3511AB", "3511 ab", "3511ab"):
        assert secret not in text
    assert not {"bsn", "birthDate", "postcode", "gender", "providerAgb"} & set(row)
    assert row["pc4"] == "3511"


@pytest.mark.parametrize(
    ("birth", "end", "age", "band"),
    [
        ("2023-01-01", "2026-06-20", 3, "0-3"),
        ("2022-06-20", "2026-06-20", 4, "4-11"),  # birthday on the end date counts
        ("2014-06-21", "2026-06-20", 11, "4-11"),  # 12 only tomorrow
        ("2014-06-20", "2026-06-20", 12, "12-15"),
        ("2010-06-21", "2026-06-20", 15, "12-15"),
        ("2010-06-20", "2026-06-20", 16, "16-17"),
        ("2008-06-21", "2026-06-20", 17, "16-17"),
        ("2008-06-20", "2026-06-20", 18, "18-23"),
        ("2002-06-21", "2026-06-20", 23, "18-23"),
    ],
)
def test_age_at_end_and_band(birth: str, end: str, age: int, band: str) -> None:
    raw = record(birthDate=birth, startDate="2022-12-01" if birth < "2022-12-01" else birth,
                 endDate=end, measurements=[], legalBasis="wettelijke-verplichting")
    del raw["consent"]
    row = row_of(raw)
    assert (row["ageAtEnd"], row["ageBand"]) == (age, band)


@pytest.mark.parametrize(
    ("end", "period"),
    [("2026-01-01", "2026-H1"), ("2026-06-30", "2026-H1"), ("2026-07-01", "2026-H2"),
     ("2025-12-31", "2025-H2")],
)
def test_period_is_the_half_year_of_the_end_date(end: str, period: str) -> None:
    raw = record(endDate=end, startDate="2025-06-01", measurements=[])
    assert row_of(raw)["period"] == period


def test_measurements_consent_and_care_type_are_carried() -> None:
    raw = record(14, hulpvorm="12", sector="jeugdbescherming", referrer="04",
                 startedInCrisis=True, terminationReason="03")
    raw["measurements"][0]["goalAttainment"] = {"perGoal": [2, -1, 0]}
    raw["measurements"][1]["goalAttainment"] = {"overall": 1}
    del raw["measurements"][1]["problemChange"]
    row = row_of(raw)
    assert row["measurements"] == [
        {"informant": "jeugdige", "satisfaction": 7, "withoutHelp": 3,
         "problemChange": "matige-verbetering", "goalOverall": None, "goals": [2, -1, 0]},
        {"informant": "ouder", "satisfaction": 7, "withoutHelp": 3,
         "problemChange": None, "goalOverall": 1, "goals": []},
    ]
    assert (row["consentBy"], row["consentOn"]) == ("beide", raw["consent"]["givenOn"])
    assert (row["sector"], row["hulpvorm"], row["referrer"]) == ("jeugdbescherming", "12", "04")
    assert (row["startedInCrisis"], row["terminationReason"]) == (True, "03")
    assert row["trajectoryRef"] == "traj-77" and row["bsnKnown"] is True


def test_legal_obligation_has_no_consent_in_the_row() -> None:
    raw = record(legalBasis="wettelijke-verplichting")
    del raw["consent"]
    row = row_of(raw)
    assert (row["legalBasis"], row["consentBy"], row["consentOn"]) == (
        "wettelijke-verplichting", None, None)


def test_unknown_bsn_is_flagged_in_the_row() -> None:
    # The CBS Informatieprotocol's codes: 000000000 no (known) BSN, 999999999 unborn child.
    assert row_of(record(bsn="000000000"))["bsnKnown"] is False
    assert row_of(record(bsn="000000000"))["unborn"] is False
    assert row_of(record(bsn="999999999"))["bsnKnown"] is False
    assert row_of(record(bsn="999999999"))["unborn"] is True


def test_row_without_a_pseudonym_under_the_current_key_is_refused() -> None:
    with pytest.raises(ValueError, match="current key version 3"):
        minimise(validated(record()), PSEUDO, 3, "batch-1", content_hashes=HASHES)


# --- person identifier --------------------------------------------------------------------------


def test_person_identifier_is_the_bsn_when_known() -> None:
    assert person_identifier(validated(record(bsn="111222333"))) == ("bsn", "111222333")


def test_person_identifier_falls_back_to_gender_birth_date_postcode() -> None:
    a = validated(record(bsn="999999999", gender="O", birthDate="2012-05-21", postcode="3511ab"))
    b = validated(record(bsn="999999999", gender="O", birthDate="2012-05-21",
                         postcode="3511 AB", trajectoryId="other", startDate="2025-12-01"))
    assert person_identifier(a) == ("fallback", "O|2012-05-21|3511AB")
    assert person_identifier(a) == person_identifier(b)  # person level, not trajectory level


def test_the_no_bsn_code_links_by_the_fallback_key_not_as_one_person() -> None:
    """SPEC: "000000000 = no or unknown BSN ... uses the fallback key". Keyed as a BSN, every
    client without one would be a single person, and each other's "new start" in 3.2."""
    a = validated(record(bsn="000000000", gender="V", birthDate="2012-05-21", postcode="3511AB"))
    b = validated(record(bsn="000000000", gender="M", birthDate="2013-01-02", postcode="9712CP"))
    assert person_identifier(a) == ("fallback", "V|2012-05-21|3511AB")
    assert person_identifier(a) != person_identifier(b)


# --- canonical content (what pseudonymise keys into the content hash) -------------------------


def test_canonical_content_is_independent_of_key_order_spacing_and_null_answers() -> None:
    raw = record()
    reordered = dict(reversed(list(raw.items())))
    reordered["measurements"] = [dict(reversed(list(m.items()))) for m in raw["measurements"]]
    respaced = {**raw, "postcode": "3511 ab"}
    assert canonical_content(raw) == canonical_content(reordered) == canonical_content(respaced)

    without = record()
    del without["measurements"][1]["satisfaction"]
    del without["measurements"][1]["goalAttainment"]["overall"]
    nulled = record()
    nulled["measurements"][1]["satisfaction"] = None
    nulled["measurements"][1]["goalAttainment"]["overall"] = None
    assert canonical_content(without) == canonical_content(nulled) != canonical_content(raw)

    no_measurements = record(measurements=[])
    del no_measurements["measurements"]
    assert canonical_content(no_measurements) == canonical_content(record(measurements=[]))


def test_canonical_content_changes_with_any_content() -> None:
    base = canonical_content(record())
    assert canonical_content(record(terminationReason="02")) != base
    assert canonical_content(record(endDate="2026-06-19")) != base
    changed = record()
    changed["measurements"][0]["satisfaction"] = 8
    assert canonical_content(changed) != base


def test_canonical_content_is_sorted_compact_json_of_the_normalised_record() -> None:
    """Any JSON library gives the same form, so the TTP can recompute a disputed record's digest."""
    rec = validated(record(postcode="3511 ab"))
    canonical = json.dumps(normalised(rec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_content(rec) == canonical
    assert normalised(rec)["postcode"] == "3511AB"
    assert canonical_content(record()) == canonical_content(validated(record()))


def test_canonical_content_refuses_an_invalid_raw_record() -> None:
    with pytest.raises(ValidationError):
        canonical_content({**record(), "gender": "X"})


def test_the_row_carries_the_keyed_hashes_it_was_given_and_no_digest_of_its_own() -> None:
    """Ingest hashes nothing itself: the only content hashes in the row are pseudonymise's keyed ones."""
    raw = record(bsn="123456782", birthDate="2012-05-21", postcode="3511 ab")
    row = row_of(raw)
    assert row["contentHashes"] == HASHES
    text = orjson.dumps(row).decode()
    unkeyed = hashlib.sha256(canonical_content(raw).encode()).hexdigest()
    assert unkeyed not in text
    assert set(re.findall(r"[0-9a-f]{64}", text)) == {h["value"] for h in HASHES} | {p["value"] for p in PSEUDO}


def test_row_without_a_content_hash_under_the_current_key_is_refused() -> None:
    with pytest.raises(ValueError, match="no content hash under the current key version 2"):
        minimise(validated(record()), PSEUDO, 2, "batch-1", content_hashes=HASHES[1:])


def test_dates_in_the_row_are_iso_strings() -> None:
    row = row_of(record())
    assert dt.date.fromisoformat(row["startDate"]) < dt.date.fromisoformat(row["endDate"])
    assert isinstance(row["consentOn"], str)


def test_classification_key_is_exactly_the_aggregate_key_format() -> None:
    """What ingest sends to classify a record is the ``WireKey`` and nothing more of the record."""
    row = row_of(record(bsn="123456782", birthDate="2012-05-21", postcode="3511 ab"))
    key = classification_key(row)
    assert set(key) == set(WireKey.model_fields)
    WireKey.model_validate_json(orjson.dumps(key))  # extra fields forbidden
    assert "123456782" not in orjson.dumps(key).decode()
