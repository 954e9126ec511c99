"""Realistic synthetic outcome records, for demos, tests and benchmarks.

Nothing here is real data: BSNs are random numbers that pass the 11-proef,
people and addresses are drawn from distributions. What *is* realistic, so the
indicators, feeds, reports and disclosure control meet the situations they
will meet in production:

* many municipalities (real CBS codes, weighted by rough population) with many
  4-digit postcode areas each (plausible ranges), and a few PC4 areas that
  cross a municipal border (the same PC4 in two gemeenten, a known pitfall
  for cell suppression), plus a few very small municipalities (small cells);
* ages 0 to 23 at the end of care, the three sectors, free access or an
  individual provision, every hulpvorm, referrer and termination reason, with
  frequencies and durations per provider profile (a broad provider, an
  ambulant team, a foster-care and residential provider);
* about half the trajectories without any measurement (real response rates),
  informants and consent following the age rules, both legal bases;
* clients with several trajectories, often at different providers, one after
  the other, so indicator 3.2 ("geen nieuwe start") has re-starts to find;
* about 3% without a known BSN (000000000, CBS Informatieprotocol), linked by the fallback key.

With ``invalid_share`` a share of records each break exactly one rule, going
round every rule in turn, so a batch exercises every problem code ingest has.

Generation is deterministic for a seed (and ``today``), and streaming: one
client at a time is held in memory, so a million records cost no more memory
than ten.

This module deliberately does not import the ingest service: the shared
package must not depend on a service. The tests check that the two agree
(every generated valid record passes ingest's rules, and every violation kind
yields ingest's code).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import orjson

from ttp.periods import age_at, period_bounds, period_of, previous_period
from ttp.pki import SAMPLE_PROVIDERS

T = TypeVar("T")

BSN_UNKNOWN: Final = "000000000"
UNKNOWN_BSN_SHARE: Final = 0.03
MEASUREMENT_WINDOW_DAYS: Final = 21

#: (CBS code, name, population in thousands (weight), PC4 ranges). The ranges are
#: plausible, not an authoritative postcode table.
GEMEENTEN: Final[tuple[tuple[str, str, float, tuple[tuple[int, int], ...]], ...]] = (
    ("GM0363", "Amsterdam", 930, ((1011, 1109),)),
    ("GM0599", "Rotterdam", 670, ((3011, 3089),)),
    ("GM0518", "'s-Gravenhage", 560, ((2491, 2599),)),
    ("GM0344", "Utrecht", 370, ((3511, 3585),)),
    ("GM0772", "Eindhoven", 240, ((5611, 5658),)),
    ("GM0014", "Groningen", 240, ((9711, 9747),)),
    ("GM0855", "Tilburg", 225, ((5011, 5049),)),
    ("GM0034", "Almere", 220, ((1311, 1364),)),
    ("GM0758", "Breda", 185, ((4811, 4839),)),
    ("GM0268", "Nijmegen", 180, ((6511, 6546),)),
    ("GM0200", "Apeldoorn", 165, ((7311, 7364),)),
    ("GM0392", "Haarlem", 165, ((2011, 2037),)),
    ("GM0202", "Arnhem", 165, ((6811, 6846),)),
    ("GM0394", "Haarlemmermeer", 160, ((2131, 2158),)),
    ("GM0307", "Amersfoort", 160, ((3811, 3829),)),
    ("GM0479", "Zaanstad", 160, ((1501, 1509), (1541, 1567))),
    ("GM0153", "Enschede", 160, ((7511, 7548),)),
    ("GM0796", "'s-Hertogenbosch", 160, ((5211, 5249),)),
    ("GM0193", "Zwolle", 130, ((8011, 8046),)),
    ("GM0080", "Leeuwarden", 125, ((8911, 8939),)),
    ("GM0546", "Leiden", 125, ((2311, 2334),)),
    ("GM0637", "Zoetermeer", 125, ((2711, 2729),)),
    ("GM0935", "Maastricht", 120, ((6211, 6229),)),
    ("GM0505", "Dordrecht", 120, ((3311, 3329),)),
    ("GM0228", "Ede", 120, ((6711, 6739),)),
    ("GM0361", "Alkmaar", 110, ((1811, 1829),)),
    ("GM0114", "Emmen", 107, ((7811, 7891),)),
    ("GM0503", "Delft", 105, ((2611, 2629),)),
    ("GM0150", "Deventer", 100, ((7411, 7429),)),
    ("GM0983", "Venlo", 100, ((5911, 5944),)),
    ("GM0794", "Helmond", 92, ((5701, 5709),)),
    ("GM0439", "Purmerend", 92, ((1441, 1448),)),
    ("GM0402", "Hilversum", 90, ((1211, 1223),)),
    ("GM0362", "Amstelveen", 90, ((1181, 1189),)),
    ("GM0917", "Heerlen", 87, ((6411, 6422),)),
    ("GM0405", "Hoorn", 74, ((1621, 1628),)),
    ("GM0513", "Gouda", 74, ((2801, 2809),)),
    ("GM0141", "Almelo", 74, ((7601, 7609),)),
    ("GM0106", "Assen", 69, ((9401, 9409),)),
    ("GM0453", "Velsen", 68, ((1970, 1991),)),
    ("GM0355", "Zeist", 66, ((3701, 3712),)),
    ("GM0356", "Nieuwegein", 64, ((3431, 3439),)),
    ("GM0160", "Hardenberg", 61, ((7771, 7799),)),
    ("GM0222", "Doetinchem", 58, ((7001, 7009),)),
    ("GM0603", "Rijswijk", 57, ((2281, 2289),)),
    ("GM0118", "Hoogeveen", 56, ((7901, 7909),)),
    ("GM0632", "Woerden", 53, ((3441, 3449),)),
    ("GM0687", "Middelburg", 49, ((4330, 4339),)),
    ("GM0718", "Vlissingen", 45, ((4381, 4389),)),
    ("GM0375", "Beverwijk", 42, ((1941, 1949),)),
    ("GM0289", "Wageningen", 40, ((6701, 6709),)),
    ("GM0384", "Diemen", 32, ((1111, 1113),)),
    ("GM0093", "Terschelling", 5, ((8881, 8897),)),
    ("GM0096", "Vlieland", 1.2, ((8899, 8899),)),
    ("GM0088", "Schiermonnikoog", 1, ((9166, 9166),)),
)

#: PC4 areas that straddle a municipal border: addresses in both gemeenten share them.
CROSS_BORDER_PC4: Final[tuple[tuple[str, str, str], ...]] = (
    ("1111", "GM0384", "GM0363"),  # Diemen / Amsterdam
    ("1187", "GM0362", "GM0363"),  # Amstelveen / Amsterdam
    ("2289", "GM0603", "GM0518"),  # Rijswijk / 's-Gravenhage
    ("3439", "GM0356", "GM0344"),  # Nieuwegein / Utrecht
    ("2036", "GM0392", "GM0394"),  # Haarlem / Haarlemmermeer
)


def _pc4_table() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {
        code: [f"{n:04d}" for lo, hi in ranges for n in range(lo, hi + 1)]
        for code, _, _, ranges in GEMEENTEN
    }
    for pc4, a, b in CROSS_BORDER_PC4:
        for code in (a, b):
            if pc4 not in table[code]:
                table[code].append(pc4)
    return {code: tuple(pc4s) for code, pc4s in table.items()}


#: PC4 areas per gemeente, cross-border areas in both.
PC4_BY_GEMEENTE: Final[dict[str, tuple[str, ...]]] = _pc4_table()

#: Letter pairs of a postcode: PostNL does not use SA, SD or SS; we leave S out first.
_POSTCODE_LETTERS: Final = "ABCDEFGHJKLMNPRTVWXZ"

#: Relative frequency of each age (completed years at endDate) in youth care.
AGE_WEIGHTS: Final[tuple[float, ...]] = (
    2, 3, 3, 4, 5, 6, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 8, 7, 3, 2, 1.5, 1, 0.7, 0.5,
)

#: CBS reden beëindiging: 01 volgens plan dominates, 03 (uitval) about one in ten.
TERMINATION_WEIGHTS: Final[tuple[tuple[str, float], ...]] = (
    ("01", 64), ("02", 14), ("03", 9), ("04", 4), ("05", 9),
)

CareType = tuple[str, bool, str]  # (sector, freelyAccessible, hulpvorm)


@dataclass(frozen=True)
class ProviderProfile:
    """What kind of care a provider gives, how its clients answer, on which basis it delivers."""

    name: str
    care_types: tuple[tuple[CareType, float], ...]
    response_rate: float
    consent_share: float  # share delivered under toestemming rather than wettelijke-verplichting


PROFILES: Final[tuple[ProviderProfile, ...]] = (
    ProviderProfile(
        "breed",
        (
            (("jeugdhulp", True, "01"), 14), (("jeugdhulp", True, "02"), 10),
            (("jeugdhulp", True, "04"), 6), (("jeugdhulp", False, "02"), 26),
            (("jeugdhulp", False, "03"), 6), (("jeugdhulp", False, "04"), 12),
            (("jeugdhulp", False, "12"), 3), (("jeugdhulp", False, "14"), 3),
            (("jeugdbescherming", False, "04"), 8), (("jeugdbescherming", False, "02"), 3),
            (("jeugdreclassering", False, "04"), 5), (("jeugdreclassering", False, "02"), 2),
        ),
        response_rate=0.5,
        consent_share=0.35,
    ),
    ProviderProfile(
        "specialistisch",
        (
            (("jeugdhulp", False, "02"), 40), (("jeugdhulp", False, "03"), 12),
            (("jeugdhulp", False, "04"), 10), (("jeugdhulp", False, "12"), 6),
            (("jeugdhulp", False, "13"), 3), (("jeugdhulp", False, "14"), 6),
            (("jeugdhulp", True, "02"), 8), (("jeugdbescherming", False, "04"), 5),
            (("jeugdreclassering", False, "04"), 4),
        ),
        response_rate=0.55,
        consent_share=0.6,
    ),
    ProviderProfile(
        "ambulant",
        (
            (("jeugdhulp", True, "01"), 30), (("jeugdhulp", True, "02"), 20),
            (("jeugdhulp", True, "04"), 15), (("jeugdhulp", False, "02"), 20),
            (("jeugdhulp", False, "04"), 15),
        ),
        response_rate=0.45,
        consent_share=0.2,
    ),
    ProviderProfile(
        "pleegzorg-verblijf",
        (
            (("jeugdhulp", False, "11"), 35), (("jeugdhulp", False, "12"), 15),
            (("jeugdhulp", False, "14"), 15), (("jeugdhulp", False, "13"), 5),
            (("jeugdbescherming", False, "11"), 15), (("jeugdbescherming", False, "14"), 8),
            (("jeugdreclassering", False, "13"), 4), (("jeugdreclassering", False, "14"), 3),
        ),
        response_rate=0.4,
        consent_share=0.5,
    ),
)

#: Every problem code ingest can give, as one violation kind of the synthetic data.
VIOLATIONS: Final[tuple[str, ...]] = (
    "bsn-elfproef", "bsn-format", "end-before-start", "end-in-future", "birth-after-start",
    "age-out-of-range", "measurement-window", "informant-age", "duplicate-informant",
    "too-many-measurements", "measurement-empty", "goal-attainment-empty",
    "problem-change-free-access", "goal-attainment-free-access", "consent-missing",
    "consent-age", "consent-future", "consent-unexpected", "provider-mismatch",
    "duplicate-record-id", "postcode-format", "gemeente-format", "hulpvorm-code",
    "referrer-code", "termination-reason-code", "date-format", "boolean-format",
    "gender-code", "sector-code", "legal-basis-code", "consent-format",
    "consent-given-by-code", "measurements-format", "informant-code", "satisfaction-range",
    "without-help-range", "problem-change-code", "goal-attainment-format", "goal-score-range",
    "required", "unknown-field", "record-id-format", "agb-format", "trajectory-id-format",
    "record-not-object", "identifier-bsn", "identifier-birth-date",
)


def _cumulative(weights: Iterable[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(rng: random.Random, items: Sequence[T], cum: Sequence[float]) -> T:
    """Weighted choice with precomputed cumulative weights (faster than ``choices``)."""
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


def _age_group(age: int) -> int:
    """0: under 12, 1: 12 to 15, 2: 16 and over (informant and consent rules)."""
    return 0 if age < 12 else 1 if age < 16 else 2


_CONSENT_BY: Final = ("ouder", "beide", "jeugdige")


def make_bsn(rng: random.Random) -> str:
    """A random 9-digit number that passes the 11-proef and is not one of the protocol's
    codes 000000000 and 999999999 (no BSN, unborn child)."""
    while True:
        digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(7)]
        check = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check <= 9:
            bsn = "".join(map(str, digits)) + str(check)
            if bsn not in (BSN_UNKNOWN, "999999999"):
                return bsn


def _care_compatible(care: CareType, age: int) -> bool:
    """Jeugdreclassering starts at 12, jeugdbescherming ends at 18, closed placement from 12."""
    sector, _, hulpvorm = care
    if sector == "jeugdreclassering" and age < 12:
        return False
    if sector == "jeugdbescherming" and age >= 18:
        return False
    return not (hulpvorm == "13" and age < 12)


@dataclass
class _Person:
    bsn: str
    gender: str
    birth: dt.date
    gemeente: str
    postcode: str
    index: int


@dataclass
class _Trajectory:
    provider_index: int
    care: CareType
    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. ``period`` is the half year in which each client's main
    trajectory ends (default: the last half year that has ended before ``today``);
    earlier trajectories of the same client end before it, later ones after it."""

    records: int
    seed: int = 0
    providers: tuple[str, ...] = tuple(agb for agb, _ in SAMPLE_PROVIDERS)
    invalid_share: float = 0.0
    period: str | None = None
    today: dt.date | None = None

    def __post_init__(self) -> None:
        if self.records < 0:
            raise ValueError("records must be 0 or more")
        if not 0.0 <= self.invalid_share <= 1.0:
            raise ValueError("invalid share must be between 0 and 1")
        if not self.providers:
            raise ValueError("at least one provider AGB is needed")
        for agb in self.providers:
            if len(agb) != 8 or not agb.isdigit():
                raise ValueError("a provider AGB code has 8 digits")
        if len(set(self.providers)) != len(self.providers):
            raise ValueError("provider AGB codes must be distinct")


@dataclass
class GenerationSummary:
    """What was written, for the command's closing table."""

    records: int = 0
    invalid: int = 0
    clients: int = 0
    clients_with_restart: int = 0
    unknown_bsn: int = 0
    without_measurement: int = 0
    per_provider: dict[str, int] = field(default_factory=dict)
    per_period: dict[str, int] = field(default_factory=dict)
    violations: dict[str, int] = field(default_factory=dict)


class _Generator:
    """Stateful, seeded record factory; one instance per generation run."""

    def __init__(self, config: SyntheticConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.today = config.today or dt.date.today()
        last_day = self.today - dt.timedelta(days=1)
        period = config.period or default_period(self.today)
        first, final = period_bounds(period)
        if first > last_day:
            raise ValueError("the period has not begun yet: trajectories must have ended")
        self.period_first, self.period_last = first, min(final, last_day)
        self.last_day = last_day
        self.gemeenten = [code for code, *_ in GEMEENTEN]
        self.gemeente_cum = _cumulative([pop for _, _, pop, _ in GEMEENTEN])
        self.ages = list(range(len(AGE_WEIGHTS)))
        self.age_cum = _cumulative(AGE_WEIGHTS)
        self.term_codes = [c for c, _ in TERMINATION_WEIGHTS]
        self.term_cum = _cumulative([w for _, w in TERMINATION_WEIGHTS])
        self.profiles = [PROFILES[i % len(PROFILES)] for i in range(len(config.providers))]
        self.provider_cum = _cumulative([4, 3, 2, 1.5][i % 4] for i in range(len(config.providers)))
        self._care_cache: dict[tuple[int, int], tuple[list[CareType], list[float]]] = {}
        self.record_seq = 0
        self.clients = 0
        self.clients_with_restart = 0
        self.violation_cycle = itertools.cycle(VIOLATIONS)
        self.last_valid: dict[str, Any] | None = None
        self.mismatch_agb = next(
            agb for agb in ("98999999", "97999999", "96999999") if agb not in config.providers
        )

    # --- sampling -------------------------------------------------------------------------------

    def _care_types(self, provider_index: int, age: int) -> tuple[list[CareType], list[float]]:
        key = (provider_index, age)
        hit = self._care_cache.get(key)
        if hit is None:
            options = [
                (care, w) for care, w in self.profiles[provider_index].care_types
                if _care_compatible(care, age)
            ] or [(("jeugdhulp", False, "02"), 1.0)]
            hit = ([c for c, _ in options], _cumulative([w for _, w in options]))
            self._care_cache[key] = hit
        return hit

    def _birth_for(self, age: int, end: dt.date) -> dt.date:
        """A birth date with exactly ``age`` completed years on ``end``."""
        rng = self.rng
        latest = end.replace(year=end.year - age) if not (end.month == 2 and end.day == 29) else (
            dt.date(end.year - age, 2, 28)
        )
        birth = latest - dt.timedelta(days=rng.randint(0, 364))
        while age_at(birth, end) != age:  # leap-year edges
            birth += dt.timedelta(days=1)
        return birth

    def _duration(self, care: CareType) -> int:
        """Days in care: short for free access, long for stays and child protection."""
        rng = self.rng
        sector, free, hulpvorm = care
        if free:
            return rng.randint(14, 200)
        if sector == "jeugdbescherming":
            return rng.randint(120, 900)
        if sector == "jeugdreclassering":
            return rng.randint(90, 540)
        if hulpvorm in ("11", "12", "13", "14"):
            return rng.randint(60, 1000)
        return rng.randint(45, 450)

    def _postcode(self, gemeente: str) -> str:
        rng = self.rng
        return (
            rng.choice(PC4_BY_GEMEENTE[gemeente])
            + rng.choice(_POSTCODE_LETTERS)
            + rng.choice(_POSTCODE_LETTERS)
        )

    def _person(self, index: int, age_at_anchor: int, anchor_end: dt.date) -> _Person:
        rng = self.rng
        gemeente = _pick(rng, self.gemeenten, self.gemeente_cum)
        g = rng.random()
        return _Person(
            bsn=BSN_UNKNOWN if rng.random() < UNKNOWN_BSN_SHARE else make_bsn(rng),
            gender="V" if g < 0.485 else "M" if g < 0.99 else "O",
            birth=self._birth_for(age_at_anchor, anchor_end),
            gemeente=gemeente,
            postcode=self._postcode(gemeente),
            index=index,
        )

    def _trajectory(self, person: _Person, *, end: dt.date | None = None,
                    start_after: dt.date | None = None,
                    end_before: dt.date | None = None) -> _Trajectory | None:
        """A trajectory ending on ``end``, starting after ``start_after`` or ending before
        ``end_before``; None when it would not have ended by today or precede birth."""
        rng = self.rng
        provider_index = _pick(rng, range(len(self.cfg.providers)), self.provider_cum)
        if start_after is not None:
            start = start_after + dt.timedelta(days=rng.choice((7, 30, 60, 90, 150, 240, 330)))
            start += dt.timedelta(days=rng.randint(0, 30))
            age = age_at(person.birth, start)
        else:
            anchor = end or end_before or self.period_last
            age = age_at(person.birth, anchor)
        if not 0 <= age <= 23:
            return None
        cares, cum = self._care_types(provider_index, age)
        care = _pick(rng, cares, cum)
        days = self._duration(care)
        if start_after is not None:
            end = start + dt.timedelta(days=days)
            if end > self.last_day:
                return None  # still in care: no record yet
        elif end is None:
            assert end_before is not None
            end = end_before - dt.timedelta(days=rng.randint(20, 400))
        start = max(end - dt.timedelta(days=days), person.birth)
        if end < person.birth or not 0 <= age_at(person.birth, end) <= 23:
            return None
        if not _care_compatible(care, age_at(person.birth, end)):
            return None
        return _Trajectory(provider_index, care, start, end)

    # --- one record -----------------------------------------------------------------------------

    def _measurement(self, informant: str, traj: _Trajectory, termination: str) -> dict[str, Any]:
        rng = self.rng
        earliest = max(traj.end - dt.timedelta(days=MEASUREMENT_WINDOW_DAYS), traj.start)
        measured = earliest + dt.timedelta(days=rng.randint(0, (traj.end - earliest).days))
        m: dict[str, Any] = {"informant": informant, "measuredOn": measured.isoformat()}
        dropped_out = termination == "03"
        if rng.random() < 0.95:
            weights = (3, 3, 5, 7, 10, 14, 16, 14, 6, 3) if dropped_out else (
                1, 1, 2, 3, 5, 10, 20, 28, 20, 10)
            m["satisfaction"] = rng.choices(range(1, 11), weights=weights)[0]
        if rng.random() < 0.9:
            weights_help = (30, 35, 25, 10) if dropped_out else (10, 25, 40, 25)
            m["withoutHelp"] = rng.choices(range(1, 5), weights=weights_help)[0]
        if not traj.care[1]:  # niet-vrij-toegankelijk: 3.3 and 3.4 apply
            if rng.random() < 0.75:
                m["problemChange"] = rng.choices(
                    ("sterke-verbetering", "matige-verbetering", "stabilisatie",
                     "matige-verslechtering", "sterke-verslechtering"),
                    weights=(18, 36, 30, 11, 5),
                )[0]
            if rng.random() < 0.65:
                scores = (-1, 0, 1, 2)
                weights4 = (5, 15, 40, 40)
                if rng.random() < 0.5:
                    m["goalAttainment"] = {"overall": rng.choices(scores, weights=weights4)[0]}
                else:
                    m["goalAttainment"] = {
                        "perGoal": rng.choices(scores, weights=weights4, k=rng.randint(1, 4))
                    }
        if len(m) == 2:  # an informant who answered nothing is no measurement at all
            m["satisfaction"] = rng.randint(5, 9)
        return m

    def _record(self, person: _Person, traj: _Trajectory, trajectory_no: int) -> dict[str, Any]:
        rng = self.rng
        cfg = self.cfg
        self.record_seq += 1
        age = age_at(person.birth, traj.end)
        group = _age_group(age)
        profile = self.profiles[traj.provider_index]
        sector, free, hulpvorm = traj.care
        termination = _pick(rng, self.term_codes, self.term_cum)
        referrer = self._referrer(traj.care)
        crisis = rng.random() < (0.2 if sector == "jeugdbescherming" else 0.05)
        rec: dict[str, Any] = {
            "recordId": f"S{cfg.seed}-{self.record_seq:08d}",
            "providerAgb": cfg.providers[traj.provider_index],
            "bsn": person.bsn,
            "birthDate": person.birth.isoformat(),
            "gender": person.gender,
            "postcode": person.postcode,
            "gemeente": person.gemeente,
            "trajectoryId": f"T{cfg.seed}-{person.index}-{trajectory_no}",
            "startDate": traj.start.isoformat(),
            "endDate": traj.end.isoformat(),
            "sector": sector,
            "freelyAccessible": free,
            "hulpvorm": hulpvorm,
            "referrer": referrer,
            "startedInCrisis": crisis,
            "terminationReason": termination,
            "legalBasis": "wettelijke-verplichting",
        }
        if rng.random() < profile.consent_share:
            rec["legalBasis"] = "toestemming"
            given = traj.start + dt.timedelta(days=rng.randint(0, 21))
            rec["consent"] = {
                "givenBy": _CONSENT_BY[group],
                "givenOn": min(given, traj.end).isoformat(),
            }
        measurements: list[dict[str, Any]] = []
        if rng.random() < profile.response_rate:
            if group == 0:
                informants = ["ouder"]
            elif group == 2:
                informants = ["jeugdige"]
            else:
                r = rng.random()
                informants = (
                    ["jeugdige", "ouder"] if r < 0.5 else ["jeugdige"] if r < 0.75 else ["ouder"]
                )
            measurements = [self._measurement(who, traj, termination) for who in informants]
        rec["measurements"] = measurements
        return rec

    def _referrer(self, care: CareType) -> str:
        rng = self.rng
        sector, free, _ = care
        if sector == "jeugdreclassering":
            return rng.choices(("08", "04"), weights=(70, 30))[0]
        if sector == "jeugdbescherming":
            return rng.choices(("04", "08"), weights=(75, 25))[0]
        if free:
            return rng.choices(("01", "06", "03", "02"), weights=(50, 38, 8, 4))[0]
        return rng.choices(
            ("01", "02", "03", "04", "05", "06"), weights=(40, 33, 6, 8, 10, 3)
        )[0]

    # --- clients --------------------------------------------------------------------------------

    def client_records(self, index: int) -> list[dict[str, Any]]:
        """All ended trajectories of one new client, in chronological order."""
        rng = self.rng
        age = _pick(rng, self.ages, self.age_cum)
        span = (self.period_last - self.period_first).days
        anchor_end = self.period_first + dt.timedelta(days=rng.randint(0, span))
        person = self._person(index, age, anchor_end)
        anchor = self._trajectory(person, end=anchor_end)
        if anchor is None:
            return []
        trajectories = [anchor]
        extra = rng.choices((0, 1, 2), weights=(74, 19, 7))[0]
        for _ in range(extra):
            if rng.random() < 0.6:  # an earlier trajectory that ended before the first one began
                before = self._trajectory(person, end_before=trajectories[0].start)
                if before is not None:
                    trajectories.insert(0, before)
            else:  # a new start after the last one ended, if it has ended by now
                after = self._trajectory(person, start_after=trajectories[-1].end)
                if after is not None:
                    trajectories.append(after)
        self.clients += 1
        self.clients_with_restart += len(trajectories) > 1
        records = []
        for n, traj in enumerate(trajectories, start=1):
            if n > 1 and rng.random() < 0.05:
                # Moved house within the gemeente: with an unknown BSN this breaks the
                # fallback link, as it does in real data.
                person.postcode = self._postcode(person.gemeente)
            records.append(self._record(person, traj, n))
        return records

    # --- violations -----------------------------------------------------------------------------

    def violate(self, rec: dict[str, Any], kind: str) -> Any:
        """Break exactly one rule of a valid record; returns what to write."""
        rng = self.rng
        end = dt.date.fromisoformat(rec["endDate"])
        start = dt.date.fromisoformat(rec["startDate"])
        birth = dt.date.fromisoformat(rec["birthDate"])
        group = _age_group(age_at(birth, end))
        ms: list[dict[str, Any]] = rec["measurements"]
        informant = ("ouder", "ouder", "jeugdige")[group]

        def measurement(**answers: Any) -> dict[str, Any]:
            m = {"informant": informant, "measuredOn": end.isoformat(), "satisfaction": 7}
            m.update(answers)
            return m

        def ensure_measurement() -> dict[str, Any]:
            if not ms:
                ms.append(measurement())
            return ms[0]

        def no_consent_rules() -> None:
            rec["legalBasis"] = "wettelijke-verplichting"
            rec.pop("consent", None)

        simple: dict[str, tuple[str, Any]] = {
            "postcode-format": ("postcode", "0" + rec["postcode"][1:4] + "A"),
            "gemeente-format": ("gemeente", rec["gemeente"][:2] + rec["gemeente"][3:]),
            "hulpvorm-code": ("hulpvorm", "05"),
            "referrer-code": ("referrer", "07"),
            "termination-reason-code": ("terminationReason", "06"),
            "date-format": ("startDate", start.strftime("%d-%m-%Y")),
            "boolean-format": ("startedInCrisis", "nee"),
            "gender-code": ("gender", "X"),
            "sector-code": ("sector", "jeugdzorg"),
            "legal-basis-code": ("legalBasis", "contract"),
            "measurements-format": ("measurements", "geen"),
            "record-id-format": ("recordId", rec["recordId"].replace("-", " ")),
            "agb-format": ("providerAgb", rec["providerAgb"][1:]),
            "trajectory-id-format": ("trajectoryId", ""),
            "bsn-format": ("bsn", make_bsn(rng)[:8]),
            "provider-mismatch": ("providerAgb", self.mismatch_agb),
        }
        if kind in simple:
            key, value = simple[kind]
            rec[key] = value
        elif kind == "record-not-object":
            return [rec]  # a common export mistake: the record wrapped in a list
        elif kind == "duplicate-record-id":
            assert self.last_valid is not None
            return dict(self.last_valid)
        elif kind == "identifier-bsn":
            # An export that builds its record ids from the client's BSN.
            rec["recordId"] = f"R-{rec['bsn'] if rec['bsn'] != BSN_UNKNOWN else make_bsn(rng)}"
        elif kind == "identifier-birth-date":
            rec["trajectoryId"] = f"{rec['trajectoryId'][:40]}-{birth:%Y%m%d}"
        elif kind == "bsn-elfproef":
            bsn = make_bsn(rng)
            rec["bsn"] = bsn[:8] + str((int(bsn[8]) + rng.randint(1, 9)) % 10)
        elif kind == "end-before-start":
            # Move the start past the end (not the end before the start, which could put
            # the end before the birth of a baby and break the age rule as well).
            rec["startDate"] = (end + dt.timedelta(days=rng.randint(1, 30))).isoformat()
            rec["measurements"] = []
            no_consent_rules()
        elif kind == "end-in-future":
            future = self.today + dt.timedelta(days=rng.randint(1, 60))
            rec["endDate"] = future.isoformat()
            if age_at(birth, future) > 23:  # would also break the age rule
                rec["birthDate"] = self._birth_for(22, future).isoformat()
            rec["measurements"] = []
            no_consent_rules()
        elif kind == "birth-after-start":
            if (end - start).days < 1:
                start = end - dt.timedelta(days=10)
                rec["startDate"] = start.isoformat()
            days_in = rng.randint(1, min(3, (end - start).days))
            rec["birthDate"] = (start + dt.timedelta(days=days_in)).isoformat()
            rec["measurements"] = []
            no_consent_rules()
        elif kind == "age-out-of-range":
            rec["birthDate"] = self._birth_for(rng.randint(24, 30), start).isoformat()
        elif kind == "measurement-window":
            ensure_measurement()["measuredOn"] = (
                end - dt.timedelta(days=rng.randint(22, 60))).isoformat()
        elif kind == "informant-age":
            # Under 12 only the parent fills in (from 16 a parent may stand in, seed 001).
            if group != 0:
                rec["birthDate"] = self._birth_for(8, end).isoformat()
                no_consent_rules()
            informant = "jeugdige"
            rec["measurements"] = [measurement()]
        elif kind == "duplicate-informant":
            rec["measurements"] = [measurement(), measurement(satisfaction=6)]
        elif kind == "too-many-measurements":
            rec["measurements"] = [measurement(informant="jeugdige"), measurement(informant="ouder"),
                                   measurement(informant="ouder")]
        elif kind == "measurement-empty":
            rec["measurements"] = [{"informant": informant, "measuredOn": end.isoformat()}]
        elif kind == "goal-attainment-empty":
            rec["freelyAccessible"] = False
            ensure_measurement()["goalAttainment"] = {}
        elif kind == "problem-change-free-access":
            rec["freelyAccessible"] = True
            rec["measurements"] = [measurement(problemChange="stabilisatie")]
        elif kind == "goal-attainment-free-access":
            rec["freelyAccessible"] = True
            rec["measurements"] = [measurement(goalAttainment={"overall": 1})]
        elif kind == "consent-missing":
            rec["legalBasis"] = "toestemming"
            rec.pop("consent", None)
        elif kind == "consent-age":
            rec["legalBasis"] = "toestemming"
            wrong = [by for by in _CONSENT_BY if by != _CONSENT_BY[group]]
            rec["consent"] = {"givenBy": rng.choice(wrong), "givenOn": start.isoformat()}
        elif kind == "consent-future":
            rec["legalBasis"] = "toestemming"
            rec["consent"] = {
                "givenBy": _CONSENT_BY[group],
                "givenOn": (self.today + dt.timedelta(days=rng.randint(1, 30))).isoformat(),
            }
        elif kind == "consent-unexpected":
            rec["legalBasis"] = "wettelijke-verplichting"
            rec["consent"] = {"givenBy": _CONSENT_BY[group], "givenOn": start.isoformat()}
        elif kind == "consent-format":
            rec["legalBasis"] = "toestemming"
            rec["consent"] = "ja"
        elif kind == "consent-given-by-code":
            rec["legalBasis"] = "toestemming"
            rec["consent"] = {"givenBy": "voogd", "givenOn": start.isoformat()}
        elif kind == "informant-code":
            ensure_measurement()["informant"] = "mentor"
        elif kind == "satisfaction-range":
            ensure_measurement()["satisfaction"] = rng.choice((0, 11, 12))
        elif kind == "without-help-range":
            ensure_measurement()["withoutHelp"] = 5
        elif kind == "problem-change-code":
            rec["freelyAccessible"] = False
            ensure_measurement()["problemChange"] = "verbeterd"
        elif kind == "goal-attainment-format":
            rec["freelyAccessible"] = False
            ensure_measurement()["goalAttainment"] = {"perGoal": []}
        elif kind == "goal-score-range":
            rec["freelyAccessible"] = False
            ensure_measurement()["goalAttainment"] = {"perGoal": [2, 3]}
        elif kind == "required":
            del rec[rng.choice(("hulpvorm", "referrer", "endDate", "gemeente"))]
        elif kind == "unknown-field":
            rec["opmerking"] = "n.v.t."
        else:  # pragma: no cover - VIOLATIONS and this method are kept in step by the tests
            raise ValueError(f"unknown violation kind {kind}")
        return rec

    # --- the stream -----------------------------------------------------------------------------

    def records(self) -> Iterator[tuple[Any, str | None]]:
        """(record, violation kind or None) until ``config.records`` have been produced.

        Invalid records are spread evenly (every 1/share-th record), so any
        prefix of the file has about the requested share.
        """
        cfg = self.cfg
        produced = 0
        invalid_due = 0.0
        client = 0
        while produced < cfg.records:
            client += 1
            for rec in self.client_records(client):
                if produced >= cfg.records:
                    return
                invalid_due += cfg.invalid_share
                if invalid_due >= 1.0 and self.last_valid is not None:
                    invalid_due -= 1.0
                    kind = next(self.violation_cycle)
                    produced += 1
                    yield self.violate(rec, kind), kind
                    continue
                self.last_valid = rec
                produced += 1
                yield rec, None


def generate(config: SyntheticConfig) -> Iterator[tuple[Any, str | None]]:
    """Stream ``(record, violation)`` pairs; ``violation`` is the problem code the record
    was built to trigger, or None for a valid record."""
    return _Generator(config).records()


def write_jsonl(
    config: SyntheticConfig, out: Path, progress: Callable[[int], None] | None = None,
    fmt: Literal["jsonl", "csv", "xlsx"] = "jsonl",
) -> GenerationSummary:
    """Write the records as JSON Lines, one orjson line at a time; returns a summary.

    ``fmt`` ``csv`` or ``xlsx`` writes the same records as a delivery file in
    the layout of :mod:`ttp.delivery_layout` instead (one row per record).
    ``progress`` is called with the number of records written since the last call
    (every 1,000 records and at the end).
    """
    summary = GenerationSummary()
    generator = _Generator(config)
    tmp = out.with_name(out.name + ".part")
    try:
        records = _counted(generator, summary, progress)
        if fmt == "jsonl":
            with tmp.open("wb") as fh:
                for rec in records:
                    fh.write(orjson.dumps(rec))
                    fh.write(b"\n")
        else:
            from ttp.delivery_layout import write_csv, write_xlsx

            (write_csv if fmt == "csv" else write_xlsx)(records, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    summary.clients = generator.clients
    summary.clients_with_restart = generator.clients_with_restart
    return summary


def _counted(
    generator: _Generator,
    summary: GenerationSummary,
    progress: Callable[[int], None] | None,
) -> Iterator[Any]:
    """The generator's records, counted into ``summary`` as they pass."""
    pending = 0
    for rec, kind in generator.records():
        yield rec
        summary.records += 1
        if kind is not None:
            summary.invalid += 1
            summary.violations[kind] = summary.violations.get(kind, 0) + 1
        else:
            agb = rec["providerAgb"]
            summary.per_provider[agb] = summary.per_provider.get(agb, 0) + 1
            period = period_of(dt.date.fromisoformat(rec["endDate"]))
            summary.per_period[period] = summary.per_period.get(period, 0) + 1
            summary.unknown_bsn += rec["bsn"] == BSN_UNKNOWN
            summary.without_measurement += not rec["measurements"]
        pending += 1
        if progress is not None and pending >= 1000:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)


def default_period(today: dt.date) -> str:
    """The half year the generator fills by default: the last one that has ended,
    so its trajectories are complete and re-starts after them have had time to end."""
    return previous_period(period_of(today))


__all__ = [
    "CROSS_BORDER_PC4",
    "GEMEENTEN",
    "PC4_BY_GEMEENTE",
    "PROFILES",
    "VIOLATIONS",
    "GenerationSummary",
    "SyntheticConfig",
    "default_period",
    "generate",
    "make_bsn",
    "write_jsonl",
]
