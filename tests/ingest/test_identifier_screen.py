"""Identifier fields that carry a BSN or the client's birth date are refused, other ids and dates are not.

Each attack puts a valid BSN (it passes the 11-proef) or the record's own
birth date into recordId or trajectoryId; the negative controls show the
same shapes without personal data (a 9-digit number failing the 11-proef, a
10-digit number, another date) still pass, so the screen refuses the data,
not the form.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.ingest.identifier_screen import SCREEN_CODES, personal_data_code, refuse_personal_identifier
from services.ingest.rules import validate_records
from tests.ingest.records import AGB, START, TODAY, record
from ttp.bsn import carries_bsn, elfproef
from ttp.problems import Problem

BSN = "111222333"
NOT_A_BSN = "123456789"  # nine digits, fails the 11-proef


def outcome(rec: dict[str, Any]) -> tuple[list[str], list[tuple[int, str | None, list[tuple[str, str]]]]]:
    """(accepted recordIds, [(index, recordId, [(pointer, code)])]) of a one-record batch."""
    valid, rejected = validate_records([rec], AGB, TODAY)
    return ([v.record.recordId for v in valid],
            [(r.index, r.recordId, [(p.name, p.code) for p in r.problems]) for r in rejected])


def test_the_attack_values_are_what_they_claim_to_be() -> None:
    assert elfproef(BSN) and not elfproef(NOT_A_BSN)


@pytest.mark.parametrize("record_id", [BSN, f"R-{BSN}", f"R{BSN}", f"{BSN}.2026", f"HZN:{BSN}:x"])
def test_a_bsn_in_the_record_id_is_refused_and_never_repeated(record_id: str) -> None:
    accepted, rejected = outcome(record(recordId=record_id))
    assert accepted == []
    # the receipt names the record by index only: repeating the id would repeat the BSN
    assert rejected == [(0, None, [("/records/0/recordId", "identifier-bsn")])]


@pytest.mark.parametrize("trajectory_id", [BSN, f"traj {BSN}", f"T-{BSN}-1"])
def test_a_bsn_in_the_trajectory_id_is_refused(trajectory_id: str) -> None:
    accepted, rejected = outcome(record(trajectoryId=trajectory_id))
    assert accepted == []
    assert rejected == [(0, "rec-0001", [("/records/0/trajectoryId", "identifier-bsn")])]


@pytest.mark.parametrize("form", ["iso", "compact"])
@pytest.mark.parametrize("field", ["recordId", "trajectoryId"])
def test_the_clients_own_birth_date_in_an_identifier_is_refused(form: str, field: str) -> None:
    rec = record()
    birth = rec["birthDate"] if form == "iso" else rec["birthDate"].replace("-", "")
    rec[field] = f"R-{birth}-7"
    accepted, rejected = outcome(rec)
    assert accepted == []
    assert [problems for *_, problems in rejected] == [[(f"/records/0/{field}", "identifier-birth-date")]]
    assert rejected[0][1] == (None if field == "recordId" else "rec-0001")


@pytest.mark.parametrize("field", ["recordId", "trajectoryId"])
@pytest.mark.parametrize("value", [
    NOT_A_BSN, f"R-{NOT_A_BSN}", f"R-{BSN}4",  # not a BSN: fails the 11-proef, or part of a 10-digit number
    f"R-{START.isoformat()}-1", f"R-{START.isoformat().replace('-', '')}-1", "2026-H1-0001",  # other dates
])
def test_control_ids_without_personal_data_pass(field: str, value: str) -> None:
    rec = record(**{field: value})
    assert outcome(rec) == ([rec["recordId"]], [])


def test_a_form_invalid_record_with_a_bsn_record_id_is_not_named_by_it() -> None:
    accepted, rejected = outcome(record(recordId=BSN, gender="X"))
    assert accepted == [] and rejected[0][1] is None


def test_the_screen_itself() -> None:
    assert carries_bsn(f"a{BSN}b") and not carries_bsn(f"1{BSN}") and not carries_bsn(NOT_A_BSN)
    assert personal_data_code("plain-id", None) is None
    assert set(SCREEN_CODES) == {"identifier-bsn", "identifier-birth-date"}


def test_a_bsn_in_a_batch_id_refuses_the_whole_request_without_repeating_it() -> None:
    with pytest.raises(Problem) as caught:
        refuse_personal_identifier("batchId", f"batch-{BSN}")
    problem = caught.value
    assert problem.status == 400
    doc = str(problem.document())
    assert BSN not in doc
    assert [(p.name, p.code) for p in problem.invalid_params or []] == [("/batchId", "identifier-bsn")]
    refuse_personal_identifier("batchId", f"batch-{NOT_A_BSN}")  # control: no BSN, no refusal
    refuse_personal_identifier("batchId", "HZN-2026-06-30")  # dates are fine in a batch id
