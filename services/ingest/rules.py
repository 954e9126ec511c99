"""Per-record validation of a batch: the record contract plus the domain rules.

Each record is judged on its own: first its form (the pydantic model in
:mod:`services.ingest.models`), then the rules that carry domain meaning. Every
problem found becomes an :class:`~ttp.problems.InvalidParam` with

* ``name``: a JSON pointer into the batch body (``/records/3/bsn``), so a data
  officer can find the field in the file they sent;
* ``code``: a stable code from :data:`PROBLEM_CODES`, for their system to map;
* ``reason``: a fixed text per code that never contains the submitted value.

Privacy: a receipt travels back over the wire, lands in the provider's logs and
may be pasted into a ticket. So no reason ever repeats a submitted value, not
even via pydantic (its ``input`` and ``ctx`` are never read), and an unknown
field whose *name* looks like data (digits, odd characters) is reported on its
containing object instead of by name.

Decisions where the seed (NJi startpakket) and the spec leave room:

* Ages are completed years at ``endDate``, for the informant rule as well as
  for the consent rule: consent must come from whoever is competent when the
  data is processed, which is at the end of the trajectory or later.
* A measurement must fall in ``[endDate - 21 days, endDate + 21 days]`` (seed
  001: "maximaal drie weken hiervoor of hierna"), not before ``startDate`` and
  not after the receiving date.
* Informants (seed 001): under 12 the parent; 12 to 15 both, separately; from
  16 the young person, "eventueel de ouders als de jeugdige niet in staat is":
  a parent's measurement at 16+ is accepted (and counted as ouder), but not
  beside the young person's own, which shows they could answer.
* A fault in a measurement leaves that measurement out, not the trajectory
  (spec, from seed 001): the record is accepted, still counts for uitval and
  3.2 and as somebody's new start, and the receipt lists the fault as a
  *warning* by index, recordId and the measurement's field. A fault in the
  record itself (including ``measurements`` not being a list of at most two)
  still rejects the record.
* ``problemChange`` (3.3) *and* ``goalAttainment`` (3.4) are refused for
  vrij-toegankelijke hulp: the seed lists both as "in geval van een individuele
  voorziening ook", so a score there means the provider's export maps the wrong
  trajectories; that measurement is left out with a warning.
* A consent object under ``wettelijke-verplichting`` is refused: the legal
  basis an auditor sees must be unambiguous.
* A measurement with no answer at all, and a ``goalAttainment`` with neither
  ``overall`` nor ``perGoal``, are left out with a warning. A record
  with *no* measurements is valid; that is what low response looks like.
* The second and later records with a recordId already used earlier in the
  same batch are rejected, whatever happened to the first one.

Speed: ingest targets 20,000 records/s end to end on 2 cores, so the validator
is built once at import, patterns are precompiled, and the domain rules are
plain comparisons on the validated model (a few microseconds per record).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from services.ingest.identifier_screen import SCREEN_CODES, record_identifier_problems, repeatable_record_id
from services.ingest.models import BSN_UNBORN, FALLBACK_BSNS, ID_PATTERN, RECORD_ADAPTER, Record, RecordProblem
from ttp.bsn import elfproef
from ttp.periods import MAX_AGE, age_at
from ttp.problems import InvalidParam

#: How long before or after endDate an end measurement may be taken (the seed's "drie weken").
MEASUREMENT_WINDOW: Final = dt.timedelta(days=21)

#: Every problem code this module can produce, with its fixed human reason.
PROBLEM_CODES: Final[dict[str, str]] = {
    # Form of the record (from the pydantic model).
    "record-not-object": "A record must be a JSON object.",
    "required": "This field is required.",
    "unknown-field": "This field is not part of the record contract; extra fields are refused "
    "so that nothing unexpected is ever stored.",
    "unknown-field-unnamed": "This object has a field that is not part of the record contract; "
    "its name is not repeated because it looks like data.",
    "record-id-format": "recordId must be 1 to 64 characters from A-Z, a-z, 0-9 and . _ : -.",
    "agb-format": "providerAgb must be the 8-digit AGB code of the provider, as a string.",
    "bsn-format": "bsn must be a string of 9 digits; send 000000000 when there is no "
    "(known) BSN and 999999999 for an unborn child.",
    "date-format": "This field must be a calendar date written as YYYY-MM-DD.",
    "gender-code": "gender must be V, M or O.",
    "postcode-format": "postcode must be a Dutch 6-position postcode: 4 digits (not starting "
    "with 0) and 2 letters, e.g. 1234AB.",
    "gemeente-format": "gemeente must be a CBS municipality code: GM followed by 4 digits.",
    "trajectory-id-format": "trajectoryId must be 1 to 64 characters without control characters.",
    "sector-code": "sector must be jeugdhulp, jeugdbescherming or jeugdreclassering.",
    "boolean-format": "This field must be true or false.",
    "hulpvorm-code": "hulpvorm must be a CBS hulpvorm code: 01, 02, 03, 04, 11, 12, 13 or 14.",
    "referrer-code": "referrer must be a CBS verwijzer code: 01 to 06 or 08.",
    "termination-reason-code": "terminationReason must be a CBS reden beëindiging code: "
    "01 to 05.",
    "legal-basis-code": "legalBasis must be wettelijke-verplichting or toestemming.",
    "consent-format": "consent must be an object with givenBy and givenOn.",
    "consent-given-by-code": "consent.givenBy must be jeugdige, ouder or beide.",
    "measurements-format": "measurements must be a list of measurement objects.",
    "too-many-measurements": "A record has at most two measurements, one per informant.",
    "informant-code": "informant must be jeugdige or ouder.",
    "satisfaction-range": "satisfaction must be a whole number from 1 to 10.",
    "without-help-range": "withoutHelp must be a whole number from 1 to 4.",
    "problem-change-code": "problemChange must be sterke-verbetering, matige-verbetering, "
    "stabilisatie, matige-verslechtering or sterke-verslechtering.",
    "goal-attainment-format": "goalAttainment must be an object with overall and/or perGoal "
    "(a list of 1 to 20 scores).",
    "goal-score-range": "A goal attainment score must be -1, 0, 1 or 2.",
    "invalid": "This value does not fit the record contract.",
    # Domain rules.
    "provider-mismatch": "providerAgb is not the AGB code of the certificate this batch was "
    "sent with; a provider delivers only its own records.",
    "bsn-elfproef": "bsn fails the 11-proef; send 000000000 when there is no (known) BSN "
    "and 999999999 for an unborn child.",
    "end-before-start": "endDate lies before startDate.",
    "end-in-future": "endDate lies in the future; only ended trajectories are delivered.",
    "birth-after-start": "birthDate lies after startDate.",
    "age-out-of-range": "The age at endDate must be 0 to 23 years (youth care, extended to 23).",
    "measurement-window": "measuredOn must lie at most 3 weeks (21 days) before or after "
    "endDate, not before startDate and not in the future.",
    "informant-age-under-12": "Under 12 at endDate only the parent (ouder) fills in.",
    "informant-age-16-plus": "From 16 at endDate the young person fills in; a parent only "
    "when the young person cannot, so not beside the young person's own measurement.",
    "duplicate-informant": "There is already a measurement for this informant in this record; "
    "each informant fills in at most once.",
    "measurement-empty": "This measurement has no answer at all; leave it out instead.",
    "goal-attainment-empty": "goalAttainment has neither overall nor perGoal; leave it out "
    "instead.",
    "problem-change-free-access": "problemChange (indicator 3.3) applies only to "
    "niet-vrij-toegankelijke hulp (freelyAccessible false).",
    "goal-attainment-free-access": "goalAttainment (indicator 3.4) applies only to "
    "niet-vrij-toegankelijke hulp (freelyAccessible false).",
    "consent-missing": "legalBasis toestemming requires a consent object (givenBy, givenOn).",
    "consent-age-under-12": "Under 12 at endDate the parent consents: givenBy must be ouder.",
    "consent-age-12-15": "From 12 to 15 at endDate both consent: givenBy must be beide.",
    "consent-age-16-plus": "From 16 at endDate the young person consents alone: givenBy must "
    "be jeugdige.",
    "consent-future": "consent.givenOn lies in the future.",
    "consent-unexpected": "consent is given only with legalBasis toestemming; under "
    "wettelijke-verplichting leave it out so the legal basis is unambiguous.",
    "duplicate-record-id": "An earlier record in this batch has the same recordId.",
    # Identifier fields carrying personal data (services.ingest.identifier_screen).
    **SCREEN_CODES,
}

#: Codes a receipt can carry (reason variants share one code).
_CODE_OF_REASON: Final[dict[str, str]] = {
    "unknown-field-unnamed": "unknown-field",
    "informant-age-under-12": "informant-age",
    "informant-age-16-plus": "informant-age",
    "consent-age-under-12": "consent-age",
    "consent-age-12-15": "consent-age",
    "consent-age-16-plus": "consent-age",
}

#: The stable problem codes, as they appear in a receipt.
CODES: Final[frozenset[str]] = frozenset(_CODE_OF_REASON.get(k, k) for k in PROBLEM_CODES)

#: Form problem code by the field a pydantic error is about.
_FIELD_CODES: Final[dict[str, str]] = {
    "recordId": "record-id-format",
    "providerAgb": "agb-format",
    "bsn": "bsn-format",
    "birthDate": "date-format",
    "startDate": "date-format",
    "endDate": "date-format",
    "measuredOn": "date-format",
    "givenOn": "date-format",
    "gender": "gender-code",
    "postcode": "postcode-format",
    "gemeente": "gemeente-format",
    "trajectoryId": "trajectory-id-format",
    "sector": "sector-code",
    "freelyAccessible": "boolean-format",
    "startedInCrisis": "boolean-format",
    "hulpvorm": "hulpvorm-code",
    "referrer": "referrer-code",
    "terminationReason": "termination-reason-code",
    "legalBasis": "legal-basis-code",
    "consent": "consent-format",
    "givenBy": "consent-given-by-code",
    "measurements": "measurements-format",
    "informant": "informant-code",
    "satisfaction": "satisfaction-range",
    "withoutHelp": "without-help-range",
    "problemChange": "problem-change-code",
    "goalAttainment": "goal-attainment-format",
    "perGoal": "goal-attainment-format",
    "overall": "goal-score-range",
}

#: pydantic error types for an absent required field and for a field not in the contract
#: (dataclasses report them as missing/unexpected *arguments*).
_MISSING: Final = frozenset({"missing", "missing_argument", "missing_keyword_only_argument"})
_EXTRA: Final = frozenset({"extra_forbidden", "unexpected_keyword_argument"})

#: Unknown field names that may be repeated in a pointer: letters, '_' and '-' only,
#: so a BSN, date or postcode used as a key is never echoed.
_SAFE_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z_-]{0,63}")
_ID_RE: Final = re.compile(ID_PATTERN)

_validate = RECORD_ADAPTER.validate_python

#: Who may fill in, by age group. From 16 the parent is the young person's stand-in only
#: (checked apart: not beside the young person's own measurement).
_ALLOWED_INFORMANTS: Final[tuple[frozenset[str], frozenset[str], frozenset[str]]] = (
    frozenset({"ouder"}),
    frozenset({"jeugdige", "ouder"}),
    frozenset({"jeugdige", "ouder"}),
)
_CONSENT_BY: Final[tuple[str, str, str]] = ("ouder", "beide", "jeugdige")
_CONSENT_REASON: Final[tuple[str, str, str]] = (
    "consent-age-under-12",
    "consent-age-12-15",
    "consent-age-16-plus",
)


@dataclass(frozen=True, slots=True)
class ValidRecord:
    """A record that passed every rule, with its place in the batch.

    ``record`` holds only the measurements that passed; ``warnings`` says why
    any others were left out (pointers into the batch as sent).
    """

    index: int
    record: Record
    age_at_end: int
    warnings: tuple[InvalidParam, ...] = ()


def _problem(name: str, key: str) -> InvalidParam:
    """An InvalidParam whose reason is the fixed text for ``key``."""
    return InvalidParam(name=name, code=_CODE_OF_REASON.get(key, key), reason=PROBLEM_CODES[key])


def age_group(age: int) -> int:
    """0: under 12, 1: 12 to 15, 2: 16 and over (the seed's informant/consent groups)."""
    if age < 12:
        return 0
    if age < 16:
        return 1
    return 2


def allowed_informants(age: int) -> frozenset[str]:
    """Who may fill in the end measurement at this age (age at endDate)."""
    return _ALLOWED_INFORMANTS[age_group(age)]


def required_consent_by(age: int) -> str:
    """Who must consent at this age (age at endDate): ouder, beide or jeugdige."""
    return _CONSENT_BY[age_group(age)]


def _form_problems(err: ValidationError, base: str) -> list[InvalidParam]:
    """Map pydantic's errors to our codes; only ``type`` and ``loc`` are read."""
    out: list[InvalidParam] = []
    seen: set[tuple[str, str]] = set()
    for e in err.errors(include_url=False, include_context=False, include_input=False):
        loc = e["loc"]
        etype = e["type"]
        key: str
        if etype in _MISSING:
            key = "required"
        elif etype in _EXTRA:
            name = loc[-1] if loc else ""
            if isinstance(name, str) and _SAFE_KEY.fullmatch(name):
                key = "unknown-field"
            else:
                key = "unknown-field-unnamed"
                loc = loc[:-1]
        elif not loc:
            key = "record-not-object"
        else:
            last = loc[-1]
            if isinstance(last, int):
                parent = loc[-2] if len(loc) > 1 else None
                key = "goal-score-range" if parent == "perGoal" else (
                    "measurements-format" if parent == "measurements" else "invalid"
                )
            elif last == "measurements" and etype == "too_long":
                key = "too-many-measurements"
            else:
                key = _FIELD_CODES.get(str(last), "invalid")
        name = base + "".join(f"/{p}" for p in loc)
        if (name, key) in seen:  # e.g. two unnamed unknown fields in one object
            continue
        seen.add((name, key))
        out.append(_problem(name, key))
    return out


def _domain_problems(
    rec: Record, base: str, provider_agb: str, today: dt.date
) -> tuple[list[InvalidParam], int]:
    """Every record-level domain rule for one form-valid record; returns (problems, age at endDate).

    The rules of its measurements are :func:`_measurement_warnings`.
    """
    problems: list[InvalidParam] = []
    add = problems.append
    if rec.providerAgb != provider_agb:
        add(_problem(base + "/providerAgb", "provider-mismatch"))
    bsn = rec.bsn
    if bsn not in FALLBACK_BSNS and not elfproef(bsn):
        add(_problem(base + "/bsn", "bsn-elfproef"))

    start, end, birth = rec.startDate, rec.endDate, rec.birthDate
    if end < start:
        add(_problem(base + "/endDate", "end-before-start"))
    if end > today:
        add(_problem(base + "/endDate", "end-in-future"))
    # Care for an unborn child (CBS code 999999999) starts before the (expected) birth date.
    if birth > start and bsn != BSN_UNBORN:
        add(_problem(base + "/birthDate", "birth-after-start"))
    age = max(age_at(birth, end), 0) if bsn == BSN_UNBORN else age_at(birth, end)
    # Age-dependent rules are only meaningful for a plausible age; otherwise the
    # age problem alone is reported instead of a cascade of follow-on problems.
    group = age_group(age) if 0 <= age <= MAX_AGE else -1
    if group < 0:
        add(_problem(base + "/birthDate", "age-out-of-range"))

    consent = rec.consent
    if rec.legalBasis == "toestemming":
        if consent is None:
            add(_problem(base + "/consent", "consent-missing"))
        else:
            if group >= 0 and consent.givenBy != _CONSENT_BY[group]:
                add(_problem(base + "/consent/givenBy", _CONSENT_REASON[group]))
            if consent.givenOn > today:
                add(_problem(base + "/consent/givenOn", "consent-future"))
    elif consent is not None:
        add(_problem(base + "/consent", "consent-unexpected"))
    return problems, age


def _measurement_warnings(
    rec: Record, base: str, age: int, today: dt.date, positions: Sequence[int]
) -> dict[int, list[InvalidParam]]:
    """The faults of each measurement of a form-valid record, by its position in the batch.

    ``positions[j]`` is where measurement ``j`` of ``rec`` stood in the record as
    sent (measurements with form faults have already been taken out). A
    measurement with any fault is left out; the duplicate-informant and the
    16+ stand-in rules look only at the measurements that are otherwise fine.
    """
    faults: dict[int, list[InvalidParam]] = {}
    measurements = rec.measurements
    if not measurements:
        return faults
    start, end = rec.startDate, rec.endDate
    earliest = max(end - MEASUREMENT_WINDOW, start)
    latest = min(end + MEASUREMENT_WINDOW, today)
    free = rec.freelyAccessible
    group = age_group(age) if 0 <= age <= MAX_AGE else -1
    fine: list[tuple[int, str]] = []
    for j, m in enumerate(measurements):
        pos = positions[j]
        mbase = f"{base}/measurements/{pos}"
        found: list[InvalidParam] = []
        add = found.append
        if not earliest <= m.measuredOn <= latest:
            add(_problem(mbase + "/measuredOn", "measurement-window"))
        if group >= 0 and m.informant not in _ALLOWED_INFORMANTS[group]:
            add(_problem(mbase + "/informant", "informant-age-under-12"))
        goals = m.goalAttainment
        problem_change = m.problemChange
        if goals is None and problem_change is None and m.satisfaction is None and m.withoutHelp is None:
            add(_problem(mbase, "measurement-empty"))
        if free and problem_change is not None:
            add(_problem(mbase + "/problemChange", "problem-change-free-access"))
        if goals is not None:
            if free:
                add(_problem(mbase + "/goalAttainment", "goal-attainment-free-access"))
            if goals.overall is None and goals.perGoal is None:
                add(_problem(mbase + "/goalAttainment", "goal-attainment-empty"))
        if found:
            faults[pos] = found
        else:
            fine.append((pos, m.informant))
    seen: set[str] = set()
    for pos, informant in fine:
        if informant in seen:
            faults[pos] = [_problem(f"{base}/measurements/{pos}/informant", "duplicate-informant")]
        seen.add(informant)
    if group == 2 and "jeugdige" in seen:
        for pos, informant in fine:
            if informant == "ouder" and pos not in faults:
                faults[pos] = [_problem(f"{base}/measurements/{pos}/informant", "informant-age-16-plus")]
    return faults


def _measurement_position(problem: InvalidParam, base: str) -> int | None:
    """The measurement a form problem lies in (``/records/3/measurements/1/...`` -> 1), else None."""
    prefix = base + "/measurements/"
    if not problem.name.startswith(prefix):
        return None
    head = problem.name[len(prefix):].split("/", 1)[0]
    return int(head) if head.isdigit() else None


def _without_faulty_measurements(
    raw: Any, problems: list[InvalidParam], base: str
) -> tuple[Record, list[int], list[InvalidParam]] | None:
    """A record whose only form faults lie in measurements, validated without those.

    Returns (record, original positions of the kept measurements, the faults), or
    None when a fault lies in the record itself (or the retry still fails).
    """
    positions = [_measurement_position(p, base) for p in problems]
    if any(pos is None for pos in positions) or not isinstance(raw, dict):
        return None
    sent = raw.get("measurements")
    if not isinstance(sent, list):
        return None
    bad = set(positions)
    kept = [j for j in range(len(sent)) if j not in bad]
    try:
        rec = _validate({**raw, "measurements": [sent[j] for j in kept]})
    except ValidationError:
        return None
    return rec, kept, problems


def readable_record_id(raw: Any) -> str | None:
    """The recordId of a raw record if it is well formed, else None (for the receipt)."""
    if isinstance(raw, dict):
        rid = raw.get("recordId")
        if type(rid) is str and _ID_RE.match(rid):
            return rid
    return None


def validate_records(
    raw_records: list[Any], provider_agb: str, today: dt.date
) -> tuple[list[ValidRecord], list[RecordProblem]]:
    """Validate each record of a batch on its own.

    ``provider_agb`` is the AGB code of the calling provider (from its
    certificate, never from the body); ``today`` is the receiving date, passed
    in so the rules are reproducible. Returns the valid records (each with the
    measurements that passed and warnings for those left out) and, in batch
    order, one :class:`RecordProblem` per rejected record with every problem
    found in it.
    """
    valid: list[ValidRecord] = []
    rejected: list[RecordProblem] = []
    seen_ids: set[str] = set()
    for i, raw in enumerate(raw_records):
        base = f"/records/{i}"
        rid = repeatable_record_id(readable_record_id(raw), raw)
        rec: Record | None
        warnings: list[InvalidParam] = []
        positions: Sequence[int] | None = None
        age = -1
        try:
            rec = _validate(raw)
        except ValidationError as err:
            problems = _form_problems(err, base)
            retried = _without_faulty_measurements(raw, problems, base)
            if retried is None:
                rec = None
            else:
                rec, positions, warnings = retried
                problems = []
        else:
            problems = []
        if rec is not None:
            problems, age = _domain_problems(rec, base, provider_agb, today)
            problems += record_identifier_problems(rec, base)
            if positions is None:
                positions = range(len(rec.measurements))
            faults = _measurement_warnings(rec, base, age, today, positions)
            if faults:
                rec = dataclasses.replace(rec, measurements=[
                    m for j, m in enumerate(rec.measurements) if positions[j] not in faults
                ])
                warnings += [p for pos in sorted(faults) for p in faults[pos]]
                warnings.sort(key=lambda p: (_measurement_position(p, base) or 0))
        if rid is not None:
            if rid in seen_ids:
                problems.append(_problem(base + "/recordId", "duplicate-record-id"))
            else:
                seen_ids.add(rid)
        if rec is None or problems:
            rejected.append(RecordProblem(index=i, recordId=rid, problems=problems))
        else:
            valid.append(ValidRecord(index=i, record=rec, age_at_end=age, warnings=tuple(warnings)))
    return valid, rejected


def receipt_warnings(valid: Sequence[ValidRecord]) -> list[RecordProblem]:
    """The receipt's warnings: every accepted record with a measurement left out, in batch order."""
    return [
        RecordProblem(index=v.index, recordId=v.record.recordId, problems=list(v.warnings))
        for v in valid if v.warnings
    ]
