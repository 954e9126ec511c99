"""Per-record validation: each rule of the spec rejects exactly what it should,
with a stable code, a JSON pointer to the field, and no submitted value echoed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from services.ingest.identifier_screen import SCREEN_CODES
from services.ingest.rules import CODES, PROBLEM_CODES, elfproef, validate_records
from tests.ingest.records import AGB, END, START, TODAY, birth_for_age, record

Mutator = Callable[[dict[str, Any]], None]


def problems_of(rec: Any, *, agb: str = AGB, today: dt.date = TODAY) -> list[tuple[str, str]]:
    """(pointer, code) of every problem of a one-record batch; [] when accepted."""
    valid, rejected = validate_records([rec], agb, today)
    if not rejected:
        assert len(valid) == 1
        return []
    assert not valid
    return [(p.name, p.code) for p in rejected[0].problems]


def warnings_of(rec: Any, *, today: dt.date = TODAY) -> tuple[list[tuple[str, str]], list[str]]:
    """(pointer, code) of every warning of an accepted one-record batch, and the informants kept."""
    valid, rejected = validate_records([rec], AGB, today)
    assert rejected == [], [(p.name, p.code) for r in rejected for p in r.problems]
    (v,) = valid
    return [(p.name, p.code) for p in v.warnings], [m.informant for m in v.record.measurements]


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


# --- accepted records ---------------------------------------------------------------------------


@pytest.mark.parametrize("age", [4, 11, 12, 15, 16, 23])
def test_valid_record_for_each_age_group_is_accepted(age: int) -> None:
    valid, rejected = validate_records([record(age)], AGB, TODAY)
    assert rejected == []
    assert [v.index for v in valid] == [0]
    assert valid[0].age_at_end == age
    assert valid[0].record.recordId == "rec-0001"


def test_record_without_measurements_is_accepted_not_rejected() -> None:
    """Low response is counted, not punished: zero measurements is a valid record."""
    empty_list = record(measurements=[])
    absent = record()
    del absent["measurements"]
    valid, rejected = validate_records([empty_list, {**absent, "recordId": "rec-0002"}], AGB, TODAY)
    assert rejected == []
    assert [v.record.measurements for v in valid] == [[], []]


def test_the_protocols_no_bsn_and_unborn_codes_are_accepted() -> None:
    """SPEC, after the CBS Informatieprotocol: "000000000 = no or unknown BSN, 999999999 =
    unborn child; both use the fallback key". The all-zero code used to be refused by the
    11-proef, so a provider could not deliver a client without a BSN the protocol's way."""
    assert problems_of(record(bsn="000000000")) == []
    assert problems_of(record(bsn="999999999")) == []


def test_an_unborn_childs_care_may_start_before_the_expected_birth_date() -> None:
    """Care for an unborn child (999999999) starts before birth: not a birth-after-start fault."""
    rec = record(0, bsn="999999999", startDate="2025-11-03", birthDate="2026-01-10",
                 legalBasis="wettelijke-verplichting", measurements=[])
    del rec["consent"]
    assert problems_of(rec) == []
    assert ("/records/0/birthDate", "birth-after-start") in problems_of({**rec, "bsn": "000000000"})


def test_postcode_spaces_and_case_are_normalised() -> None:
    valid, _ = validate_records([record(postcode=" 3511 ab ")], AGB, TODAY)
    assert valid[0].record.postcode == "3511AB"


def test_measurement_up_to_21_days_before_or_after_end_is_accepted() -> None:
    """Seed 001: 'Met "beëindiging van de dienstverlening" bedoelen we: maximaal drie weken
    hiervoor of hierna.' Measurements after endDate used to be refused."""
    rec = record(16)
    for offset in (-21, 0, 1, 21):
        rec["measurements"][0]["measuredOn"] = (END + days(offset)).isoformat()
        assert warnings_of(rec) == ([], ["jeugdige"]), offset


def test_a_parent_may_fill_in_for_a_young_person_of_16_and_over() -> None:
    """Seed 001: '> 16 jaar: jeugdige vult in (eventueel de ouders als de jeugdige niet in
    staat is)'. A parent's measurement at 16+ is accepted and counted as ouder; it used to
    reject the whole record."""
    rec = record(16)
    rec["measurements"][0]["informant"] = "ouder"
    assert warnings_of(rec) == ([], ["ouder"])


def test_at_16_a_parents_measurement_beside_the_young_persons_own_is_left_out() -> None:
    """The parent answers only 'als de jeugdige niet in staat is' (seed 001): beside the
    young person's own answers the parent's is not the stand-in, so it is left out."""
    rec = record(17)
    rec["measurements"].append({**rec["measurements"][0], "informant": "ouder"})
    assert warnings_of(rec) == (
        [("/records/0/measurements/1/informant", "informant-age")], ["jeugdige"],
    )


def test_end_date_today_is_accepted() -> None:
    assert problems_of(record(), today=END) == []


def test_wettelijke_verplichting_needs_no_consent() -> None:
    rec = record(legalBasis="wettelijke-verplichting")
    del rec["consent"]
    assert problems_of(rec) == []


def test_single_informant_is_enough_between_12_and_15() -> None:
    rec = record(13)
    rec["measurements"] = rec["measurements"][1:]  # only the parent filled in
    assert problems_of(rec) == []


def test_free_access_without_problem_change_or_goals_is_accepted() -> None:
    rec = record(freelyAccessible=True)
    for m in rec["measurements"]:
        del m["problemChange"], m["goalAttainment"]
    assert problems_of(rec) == []


# --- one broken rule, one problem ---------------------------------------------------------------


def _set(path: str, value: Any) -> Mutator:
    """A mutator that sets a '/'-separated path in the record."""

    def mutate(rec: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = rec
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value

    return mutate


def _drop(key: str) -> Mutator:
    def mutate(rec: dict[str, Any]) -> None:
        del rec[key]

    return mutate


def _age(age: int, informants: list[str] | None = None, consent: str | None = None) -> Mutator:
    """Make the client ``age`` at endDate while keeping informants/consent as given."""

    def mutate(rec: dict[str, Any]) -> None:
        rec["birthDate"] = birth_for_age(age).isoformat()
        if informants is not None:
            template = rec["measurements"][0]
            rec["measurements"] = [{**template, "informant": who} for who in informants]
        if consent is not None:
            rec["consent"]["givenBy"] = consent

    return mutate


def _all(*mutators: Mutator) -> Mutator:
    def mutate(rec: dict[str, Any]) -> None:
        for m in mutators:
            m(rec)

    return mutate


M0 = "/records/0/measurements/0"

RULES: list[tuple[str, int, Mutator, str, str]] = [
    # (case, age, mutation, pointer, code)
    ("11-proef", 14, _set("bsn", "123456789"), "/records/0/bsn", "bsn-elfproef"),
    ("bsn too short", 14, _set("bsn", "12345678"), "/records/0/bsn", "bsn-format"),
    ("bsn as number", 14, _set("bsn", 123456782), "/records/0/bsn", "bsn-format"),
    ("end before start", 14,
     _all(_set("endDate", (START - days(1)).isoformat()), _set("measurements", [])),
     "/records/0/endDate", "end-before-start"),
    ("end in future", 14,
     _all(_set("endDate", (TODAY + days(1)).isoformat()), _set("measurements", [])),
     "/records/0/endDate", "end-in-future"),
    ("birth after start", 14,
     _all(_set("startDate", "2012-01-01"), _set("birthDate", "2012-01-02"),
          _set("legalBasis", "wettelijke-verplichting"), _drop("consent"),
          _set("measurements", [])),
     "/records/0/birthDate", "birth-after-start"),
    ("age 24", 14, _set("birthDate", birth_for_age(24).isoformat()),
     "/records/0/birthDate", "age-out-of-range"),
    ("three measurements", 14, _age(14, ["jeugdige", "ouder", "ouder"]),
     "/records/0/measurements", "too-many-measurements"),
    ("consent missing", 14, _drop("consent"), "/records/0/consent", "consent-missing"),
    ("consent null", 14, _set("consent", None), "/records/0/consent", "consent-missing"),
    ("young person consents under 12", 11, _age(11, consent="beide"),
     "/records/0/consent/givenBy", "consent-age"),
    ("parent alone consents at 14", 14, _age(14, consent="ouder"),
     "/records/0/consent/givenBy", "consent-age"),
    ("both consent at 17", 17, _age(17, consent="beide"),
     "/records/0/consent/givenBy", "consent-age"),
    ("consent given in the future", 14, _set("consent/givenOn", (TODAY + days(1)).isoformat()),
     "/records/0/consent/givenOn", "consent-future"),
    ("consent under legal obligation", 14, _set("legalBasis", "wettelijke-verplichting"),
     "/records/0/consent", "consent-unexpected"),
    ("other provider's record", 14, _set("providerAgb", "98000002"),
     "/records/0/providerAgb", "provider-mismatch"),
    ("postcode 5 positions", 14, _set("postcode", "123AB"), "/records/0/postcode",
     "postcode-format"),
    ("postcode starting with 0", 14, _set("postcode", "0123AB"), "/records/0/postcode",
     "postcode-format"),
    ("postcode letters SS", 14, _set("postcode", "1234SS"), "/records/0/postcode",
     "postcode-format"),
    ("gemeente without GM", 14, _set("gemeente", "0344"), "/records/0/gemeente",
     "gemeente-format"),
    ("gemeente 3 digits", 14, _set("gemeente", "GM344"), "/records/0/gemeente",
     "gemeente-format"),
    ("hulpvorm 05", 14, _set("hulpvorm", "05"), "/records/0/hulpvorm", "hulpvorm-code"),
    ("hulpvorm as number", 14, _set("hulpvorm", 2), "/records/0/hulpvorm", "hulpvorm-code"),
    ("referrer 07", 14, _set("referrer", "07"), "/records/0/referrer", "referrer-code"),
    ("termination reason 06", 14, _set("terminationReason", "06"),
     "/records/0/terminationReason", "termination-reason-code"),
    ("gender X", 14, _set("gender", "X"), "/records/0/gender", "gender-code"),
    ("sector unknown", 14, _set("sector", "jeugdzorg"), "/records/0/sector", "sector-code"),
    ("legal basis unknown", 14, _set("legalBasis", "contract"), "/records/0/legalBasis",
     "legal-basis-code"),
    ("consent as yes/no", 14, _set("consent", "ja"), "/records/0/consent", "consent-format"),
    ("measurements not a list", 14, _set("measurements", "geen"), "/records/0/measurements",
     "measurements-format"),
    ("consent by a sibling", 14, _set("consent/givenBy", "broer"),
     "/records/0/consent/givenBy", "consent-given-by-code"),
    ("Dutch date order", 14, _set("endDate", "20-06-2026"), "/records/0/endDate", "date-format"),
    ("impossible date", 14, _set("startDate", "2026-02-30"), "/records/0/startDate",
     "date-format"),
    ("unix timestamp", 14, _set("birthDate", 1_300_000_000), "/records/0/birthDate",
     "date-format"),
    ("datetime instead of date", 14, _set("endDate", "2026-06-20T00:00:00"),
     "/records/0/endDate", "date-format"),
    ("boolean as text", 14, _set("freelyAccessible", "false"), "/records/0/freelyAccessible",
     "boolean-format"),
    ("boolean as number", 14, _set("startedInCrisis", 0), "/records/0/startedInCrisis",
     "boolean-format"),
    ("missing field", 14, _drop("referrer"), "/records/0/referrer", "required"),
    ("unknown field", 14, _set("clientName", "x"), "/records/0/clientName", "unknown-field"),
    ("record id with a space", 14, _set("recordId", "rec 1"), "/records/0/recordId",
     "record-id-format"),
    ("record id too long", 14, _set("recordId", "r" * 65), "/records/0/recordId",
     "record-id-format"),
    ("AGB with 7 digits", 14, _set("providerAgb", "9800001"), "/records/0/providerAgb",
     "agb-format"),
    ("empty trajectory id", 14, _set("trajectoryId", ""), "/records/0/trajectoryId",
     "trajectory-id-format"),
]

#: Faults in one measurement: the record is accepted without that measurement, and the
#: receipt warns by record and field.
MEASUREMENT_RULES: list[tuple[str, int, Mutator, str, str]] = [
    # (case, age, mutation, pointer, code)
    ("measured 22 days before end", 16, _set("measurements/0/measuredOn",
                                             (END - days(22)).isoformat()),
     f"{M0}/measuredOn", "measurement-window"),
    ("measured 22 days after end", 16, _set("measurements/0/measuredOn", (END + days(22)).isoformat()),
     f"{M0}/measuredOn", "measurement-window"),
    ("measured before a short trajectory started", 16,
     _all(_set("startDate", (END - days(3)).isoformat()),
          _set("consent", {"givenBy": "jeugdige", "givenOn": (END - days(3)).isoformat()}),
          _set("measurements/0/measuredOn", (END - days(4)).isoformat())),
     f"{M0}/measuredOn", "measurement-window"),
    ("young person fills in under 12", 11, _age(11, ["jeugdige"]),
     f"{M0}/informant", "informant-age"),
    ("same informant twice", 14, _age(14, ["ouder", "ouder"]),
     "/records/0/measurements/1/informant", "duplicate-informant"),
    ("problem change for free access", 16,
     _all(_set("freelyAccessible", True), _set("measurements/0/goalAttainment", None)),
     f"{M0}/problemChange", "problem-change-free-access"),
    ("goal attainment for free access", 16,
     _all(_set("freelyAccessible", True), _set("measurements/0/problemChange", None)),
     f"{M0}/goalAttainment", "goal-attainment-free-access"),
    ("measurement without answers", 16,
     _set("measurements", [{"informant": "jeugdige", "measuredOn": END.isoformat()}]),
     M0, "measurement-empty"),
    ("empty goal attainment", 16, _set("measurements/0/goalAttainment", {}),
     f"{M0}/goalAttainment", "goal-attainment-empty"),
    ("measurement as a number", 14, _set("measurements", [7]), "/records/0/measurements/0",
     "measurements-format"),
    ("informant unknown", 16, _set("measurements/0/informant", "mentor"),
     f"{M0}/informant", "informant-code"),
    ("satisfaction 11", 16, _set("measurements/0/satisfaction", 11),
     f"{M0}/satisfaction", "satisfaction-range"),
    ("satisfaction as text", 16, _set("measurements/0/satisfaction", "7"),
     f"{M0}/satisfaction", "satisfaction-range"),
    ("without help 0", 16, _set("measurements/0/withoutHelp", 0),
     f"{M0}/withoutHelp", "without-help-range"),
    ("problem change unknown", 16, _set("measurements/0/problemChange", "beter"),
     f"{M0}/problemChange", "problem-change-code"),
    ("goal score 3", 16, _set("measurements/0/goalAttainment/perGoal", [2, 3]),
     f"{M0}/goalAttainment/perGoal/1", "goal-score-range"),
    ("overall goal -2", 16, _set("measurements/0/goalAttainment/overall", -2),
     f"{M0}/goalAttainment/overall", "goal-score-range"),
    ("empty goal list", 16, _set("measurements/0/goalAttainment/perGoal", []),
     f"{M0}/goalAttainment/perGoal", "goal-attainment-format"),
]



@pytest.mark.parametrize(
    ("age", "mutate", "pointer", "code"),
    [pytest.param(a, m, p, c, id=name) for name, a, m, p, c in RULES],
)
def test_each_rule_rejects_with_its_code_and_pointer(
    age: int, mutate: Mutator, pointer: str, code: str
) -> None:
    rec = record(age)
    assert problems_of(rec) == [], "the starting record must be valid"
    mutate(rec)
    assert problems_of(rec) == [(pointer, code)]


@pytest.mark.parametrize(
    ("age", "mutate", "pointer", "code"),
    [pytest.param(a, m, p, c, id=name) for name, a, m, p, c in MEASUREMENT_RULES],
)
def test_a_fault_in_a_measurement_leaves_out_that_measurement_not_the_trajectory(
    age: int, mutate: Mutator, pointer: str, code: str
) -> None:
    """SPEC (issue 18): "A fault in a measurement rejects that measurement (a warning in the
    receipt, by record and field), not the trajectory: the trajectory still counts for
    uitval and 3.2." Each of these faults used to reject the whole record."""
    rec = record(age)
    mutate(rec)
    sent = len(rec["measurements"]) if isinstance(rec["measurements"], list) else 0
    warnings, kept = warnings_of(rec)
    assert warnings == [(pointer, code)]
    assert len(kept) == sent - 1


def test_measured_after_the_receiving_date_is_left_out() -> None:
    """Within the three weeks after endDate but in the future: no measurement has happened yet."""
    rec = record(16)
    rec["measurements"][0]["measuredOn"] = (END + days(10)).isoformat()
    assert warnings_of(rec, today=END + days(5)) == (
        [(f"{M0}/measuredOn", "measurement-window")], [],
    )


def test_a_warning_points_at_the_measurement_as_sent_after_an_earlier_one_was_left_out() -> None:
    """The data officer finds the field in the file they sent: positions are not renumbered."""
    rec = record(14)
    rec["measurements"][0]["satisfaction"] = 11  # form fault: measurement 0 goes
    rec["measurements"][1]["measuredOn"] = (END - days(30)).isoformat()  # rule fault in 1
    assert warnings_of(rec) == (
        [(f"{M0}/satisfaction", "satisfaction-range"),
         ("/records/0/measurements/1/measuredOn", "measurement-window")], [],
    )


def test_a_record_fault_still_rejects_the_record_with_its_measurement_faults() -> None:
    rec = record(14, gemeente="X")
    rec["measurements"][0]["satisfaction"] = 11
    assert problems_of(rec) == [
        ("/records/0/gemeente", "gemeente-format"), (f"{M0}/satisfaction", "satisfaction-range"),
    ]


def test_every_code_the_module_can_produce_is_exercised_above() -> None:
    """A new rule without a test fails here (form codes of the record shape aside)."""
    tested = {code for *_, code in RULES + MEASUREMENT_RULES}
    tested |= {"duplicate-record-id", "record-not-object", "invalid"}
    tested |= set(SCREEN_CODES)  # each exercised in tests/ingest/test_identifier_screen.py
    assert CODES - tested == set()


# --- batch behaviour ----------------------------------------------------------------------------


def test_duplicate_record_id_in_one_batch_rejects_the_second_occurrence() -> None:
    first, second, third = record(), record(), record(recordId="rec-0002")
    valid, rejected = validate_records([first, second, third], AGB, TODAY)
    assert [v.index for v in valid] == [0, 2]
    assert [(r.index, r.recordId) for r in rejected] == [(1, "rec-0001")]
    assert [(p.name, p.code) for p in rejected[0].problems] == [
        ("/records/1/recordId", "duplicate-record-id")
    ]


def test_a_non_object_record_is_rejected_alone_with_null_record_id() -> None:
    valid, rejected = validate_records(["not a record", record()], AGB, TODAY)
    assert [v.index for v in valid] == [1]
    assert rejected[0].index == 0 and rejected[0].recordId is None
    assert [(p.name, p.code) for p in rejected[0].problems] == [("/records/0", "record-not-object")]


def test_unreadable_record_id_is_reported_as_null() -> None:
    _, rejected = validate_records([record(recordId="bad id!")], AGB, TODAY)
    assert rejected[0].recordId is None


def test_all_problems_of_a_record_are_reported_together_in_batch_order() -> None:
    ok = record(recordId="ok-1")
    bad = record(recordId="bad-1", bsn="123456789", providerAgb="98000009")
    bad["endDate"] = (TODAY + days(2)).isoformat()
    valid, rejected = validate_records([bad, ok, record(recordId="bad-2", gemeente="X")], AGB, TODAY)
    assert [v.record.recordId for v in valid] == ["ok-1"]
    assert [(r.index, r.recordId) for r in rejected] == [(0, "bad-1"), (2, "bad-2")]
    assert {p.code for p in rejected[0].problems} == {
        "bsn-elfproef", "provider-mismatch", "end-in-future"
    }


def test_age_group_changes_on_the_12th_birthday_at_end_date() -> None:
    """The day before the 12th birthday only the parent may fill in; on it, both may."""
    turns_12 = END.replace(year=END.year - 12)
    eleven = record(12, birthDate=(turns_12 + days(1)).isoformat())
    twelve = record(12, birthDate=turns_12.isoformat())
    assert problems_of(twelve) == []
    eleven["consent"]["givenBy"] = "ouder"
    assert ("/records/0/measurements/0/informant", "informant-age") in warnings_of(eleven)[0]


def test_implausible_age_reports_only_the_age_not_a_cascade() -> None:
    rec = record(14, birthDate=(END + days(10)).isoformat())
    assert {code for _, code in problems_of(rec)} == {"birth-after-start", "age-out-of-range"}


# --- privacy ------------------------------------------------------------------------------------


def test_no_problem_text_contains_a_submitted_bsn_birth_date_or_postcode() -> None:
    """Receipts travel and get logged: nothing identifying may come back in them."""
    bsn, birth, postcode = "123456789", "2010-04-23", "9712 cp"
    breakages: list[dict[str, Any]] = [
        {"bsn": bsn},  # 11-proef
        {"bsn": bsn + "0"},  # form
        {"birthDate": birth, "startDate": "2009-01-01"},  # birth after start
        {"birthDate": "2010-02-30"},  # impossible date
        {"birthDate": 1271980800},  # timestamp
        {"postcode": postcode + "x"},  # form
        {"postcode": 9712},  # type
        {"bsn": "999999999", "postcode": "0712CP", "birthDate": "1990-01-01"},
        {"123456782": "bsn as key", "birthDate_2010-04-23": True},
        {"endDate": "2099-01-01", "consent": {"givenBy": "beide", "givenOn": "2099-01-01"}},
    ]
    recs = [record(recordId=f"priv-{i}", **b) for i, b in enumerate(breakages)]
    valid, rejected = validate_records(recs, AGB, TODAY)
    assert valid == [] and len(rejected) == len(recs)
    text = orjson.dumps([r.model_dump() for r in rejected]).decode()
    for secret in [bsn, bsn + "0", "123456782", birth, "2010-02-30", "1271980800", "9712",
                   "9712CP", "0712CP", "1990-01-01", "2099-01-01", "3511AB", "2009-01-01"]:
        assert secret not in text, secret


def test_every_reason_is_a_fixed_text() -> None:
    """Reasons come from the fixed table, never from pydantic's message about the input."""
    bad = record(bsn="abc", postcode="x", birthDate="yesterday", clientName="y")
    _, rejected = validate_records([bad], AGB, TODAY)
    assert {p.reason for p in rejected[0].problems} <= set(PROBLEM_CODES.values())


# --- 11-proef -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bsn", "ok"),
    [("111222333", True), ("123456782", True), ("999990019", True), ("123456789", False),
     ("111222334", False), ("000000000", False), ("999999999", False)],
)
def test_elfproef(bsn: str, ok: bool) -> None:
    assert elfproef(bsn) is ok
