"""Valid records built around a chosen age, for the ingest unit tests.

Every rule test starts from a record that passes everything and changes one
thing, so a failing test points at exactly one rule.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

TODAY = dt.date(2026, 7, 15)
AGB = "98000001"
END = dt.date(2026, 6, 20)
START = dt.date(2025, 11, 3)


def birth_for_age(age: int, on: dt.date = END) -> dt.date:
    """A birth date giving exactly ``age`` completed years on ``on`` (birthday 30 days before)."""
    before = on - dt.timedelta(days=30)
    return before.replace(year=before.year - age)


def record(age: int = 14, **overrides: Any) -> dict[str, Any]:
    """A record that passes every rule for a client of ``age`` at END.

    Informants and consent follow the age rule: under 12 the parent, 12 to 15
    both, 16 and over the young person.
    """
    if age < 12:
        informants, consent_by = ["ouder"], "ouder"
    elif age < 16:
        informants, consent_by = ["jeugdige", "ouder"], "beide"
    else:
        informants, consent_by = ["jeugdige"], "jeugdige"
    rec: dict[str, Any] = {
        "recordId": "rec-0001",
        "providerAgb": AGB,
        "bsn": "123456782",
        "birthDate": birth_for_age(age).isoformat(),
        "gender": "M",
        "postcode": "3511AB",
        "gemeente": "GM0344",
        "trajectoryId": "traj-77",
        "startDate": START.isoformat(),
        "endDate": END.isoformat(),
        "sector": "jeugdhulp",
        "freelyAccessible": False,
        "hulpvorm": "02",
        "referrer": "02",
        "startedInCrisis": False,
        "terminationReason": "01",
        "legalBasis": "toestemming",
        "consent": {"givenBy": consent_by, "givenOn": START.isoformat()},
        "measurements": [
            {
                "informant": who,
                "measuredOn": (END - dt.timedelta(days=5)).isoformat(),
                "satisfaction": 7,
                "withoutHelp": 3,
                "problemChange": "matige-verbetering",
                "goalAttainment": {"overall": 1, "perGoal": [2, 1]},
            }
            for who in informants
        ],
    }
    rec.update(copy.deepcopy(overrides))
    return rec
