"""Hand-made valid records for tests that need exact control over each field."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any


def make_bsn(rng: random.Random) -> str:
    """A random 9-digit BSN that passes the 11-proef."""
    while True:
        digits = [rng.randint(0, 9) for _ in range(8)]
        if digits[0] == 0:
            continue
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last <= 9:
            return "".join(map(str, digits)) + str(last)


def valid_record(
    record_id: str, *, provider: str = "98000001", bsn: str = "111222333", age: int = 14,
    end: dt.date | None = None, **overrides: Any,
) -> dict[str, Any]:
    """A record that passes every rule: a 14-year-old by default, consent by both, two informants."""
    end = end or dt.date.today() - dt.timedelta(days=30)
    birth = dt.date(end.year - age, 1, 1) if end >= dt.date(end.year, 1, 2) else dt.date(end.year - age - 1, 1, 1)
    start = end - dt.timedelta(days=180)
    measured = end - dt.timedelta(days=7)
    rec: dict[str, Any] = {
        "recordId": record_id,
        "providerAgb": provider,
        "bsn": bsn,
        "birthDate": birth.isoformat(),
        "gender": "V",
        "postcode": "1234AB",
        "gemeente": "GM0363",
        "trajectoryId": f"T-{record_id}",
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "sector": "jeugdhulp",
        "freelyAccessible": False,
        "hulpvorm": "02",
        "referrer": "01",
        "startedInCrisis": False,
        "terminationReason": "01",
        "legalBasis": "toestemming",
        "consent": {"givenBy": "beide", "givenOn": start.isoformat()},
        "measurements": [
            {"informant": "jeugdige", "measuredOn": measured.isoformat(), "satisfaction": 8, "withoutHelp": 3,
             "problemChange": "matige-verbetering", "goalAttainment": {"overall": 1}},
            {"informant": "ouder", "measuredOn": measured.isoformat(), "satisfaction": 7, "withoutHelp": 4},
        ],
    }
    rec.update(overrides)
    return rec


def generated(
    n: int, *, seed: int, providers: tuple[str, ...] | None = None, invalid_share: float = 0.0
) -> list[dict[str, Any]]:
    """``n`` records from the synthetic generator (``ttp generate``), as a list."""
    from ttp.synthetic import SyntheticConfig, generate

    config = SyntheticConfig(records=n, seed=seed, invalid_share=invalid_share,
                             **({"providers": providers} if providers else {}))
    return [record for record, _violation in generate(config)]
