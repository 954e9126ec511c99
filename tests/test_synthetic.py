"""The synthetic data generator: deterministic, valid by ingest's own rules, realistic
in the ways the indicators and disclosure control depend on, and able to break
every rule on purpose."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from services.ingest.rules import CODES, validate_records
from ttp.cli.main import app
from ttp.periods import age_at, period_bounds
from ttp.pki import SAMPLE_PROVIDERS
from ttp.synthetic import CROSS_BORDER_PC4, VIOLATIONS, SyntheticConfig, generate, write_jsonl

TODAY = dt.date(2026, 7, 20)
PROVIDERS = tuple(agb for agb, _ in SAMPLE_PROVIDERS)


def records(n: int, seed: int = 1, **kw: Any) -> list[tuple[Any, str | None]]:
    return list(generate(SyntheticConfig(records=n, seed=seed, today=TODAY, **kw)))


@pytest.fixture(scope="module")
def sample() -> list[dict[str, Any]]:
    """5,000 valid records, shared by the realism tests."""
    out = [rec for rec, kind in records(5000, seed=11)]
    assert all(isinstance(r, dict) for r in out)
    return out


def validate_as_ingest(pairs: list[tuple[Any, str | None]]) -> list[set[str]]:
    """Problem codes per record (a rejection's, or the warnings of a measurement left out),
    each provider's records in one batch sent with its own certificate; records for an
    unknown AGB go in with the first provider's."""
    batches: dict[str, list[int]] = collections.defaultdict(list)
    for i, (rec, _) in enumerate(pairs):
        agb = rec.get("providerAgb") if isinstance(rec, dict) else None
        batches[agb if agb in PROVIDERS else PROVIDERS[0]].append(i)
    codes: list[set[str]] = [set() for _ in pairs]
    for agb, indexes in batches.items():
        valid, rejected = validate_records([pairs[i][0] for i in indexes], agb, TODAY)
        for v in valid:
            codes[indexes[v.index]] = {p.code for p in v.warnings}
        for problem in rejected:
            codes[indexes[problem.index]] = {p.code for p in problem.problems}
    return codes


def test_same_seed_same_records_other_seed_other_records() -> None:
    assert records(300, seed=5) == records(300, seed=5)
    assert records(300, seed=5) != records(300, seed=6)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    cfg = SyntheticConfig(records=500, seed=9, invalid_share=0.1, today=TODAY)
    write_jsonl(cfg, tmp_path / "a.jsonl")
    write_jsonl(cfg, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_every_generated_valid_record_passes_ingest_validation() -> None:
    pairs = records(4000, seed=2)
    assert all(kind is None for _, kind in pairs)
    rejected = [(i, c) for i, c in enumerate(validate_as_ingest(pairs)) if c]
    assert rejected == []


def test_invalid_share_breaks_every_rule_and_each_record_gets_its_code() -> None:
    pairs = records(2000, seed=3, invalid_share=0.05)
    kinds = collections.Counter(kind for _, kind in pairs if kind is not None)
    assert sum(kinds.values()) == 100
    assert set(kinds) == set(VIOLATIONS)
    codes = validate_as_ingest(pairs)
    for (rec, kind), got in zip(pairs, codes, strict=True):
        if kind is None:
            assert got == set(), rec
        else:
            assert got == {kind}, (kind, got)
    # Every code ingest has is produced (except the catch-all for shapes we never send).
    assert CODES - set().union(*codes) == {"invalid"}


def test_clients_have_several_trajectories_across_providers(sample: list[dict[str, Any]]) -> None:
    by_bsn: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for rec in sample:
        if rec["bsn"] != "000000000":
            by_bsn[rec["bsn"]].append(rec)
    restarts = 0
    for trajectories in by_bsn.values():
        trajectories.sort(key=lambda r: r["startDate"])
        for earlier, later in itertools.pairwise(trajectories):
            assert later["startDate"] > earlier["endDate"], "a re-start follows the earlier end"
            assert later["birthDate"] == earlier["birthDate"]
            restarts += earlier["providerAgb"] != later["providerAgb"]
    assert restarts >= 200  # about one client in five has more than one trajectory


def test_about_three_percent_without_bsn_and_half_without_measurement(
    sample: list[dict[str, Any]],
) -> None:
    unknown = sum(r["bsn"] == "000000000" for r in sample) / len(sample)
    silent = sum(not r["measurements"] for r in sample) / len(sample)
    assert 0.015 <= unknown <= 0.05
    assert 0.4 <= silent <= 0.6


def test_spread_over_many_gemeenten_pc4s_and_border_crossing_pc4s(
    sample: list[dict[str, Any]],
) -> None:
    gemeenten = collections.Counter(r["gemeente"] for r in sample)
    assert len(gemeenten) >= 40
    assert {"GM0363", "GM0599", "GM0344", "GM0518", "GM0014"} <= set(gemeenten)
    gemeenten_of_pc4: dict[str, set[str]] = collections.defaultdict(set)
    for r in sample:
        gemeenten_of_pc4[r["postcode"][:4]].add(r["gemeente"])
    assert len(gemeenten_of_pc4) >= 500
    crossing = {pc4 for pc4, gs in gemeenten_of_pc4.items() if len(gs) > 1}
    assert crossing and crossing <= {pc4 for pc4, *_ in CROSS_BORDER_PC4}


def test_all_ages_care_types_and_termination_reasons_occur(sample: list[dict[str, Any]]) -> None:
    ages = {age_at(dt.date.fromisoformat(r["birthDate"]), dt.date.fromisoformat(r["endDate"]))
            for r in sample}
    assert ages == set(range(24))
    assert {r["sector"] for r in sample} == {"jeugdhulp", "jeugdbescherming", "jeugdreclassering"}
    assert {r["hulpvorm"] for r in sample} == {"01", "02", "03", "04", "11", "12", "13", "14"}
    assert {r["freelyAccessible"] for r in sample} == {True, False}
    assert {r["terminationReason"] for r in sample} == {"01", "02", "03", "04", "05"}
    assert {r["referrer"] for r in sample} == {"01", "02", "03", "04", "05", "06", "08"}
    assert {r["legalBasis"] for r in sample} == {"wettelijke-verplichting", "toestemming"}
    assert {r["consent"]["givenBy"] for r in sample if "consent" in r} == {
        "ouder", "beide", "jeugdige"}
    uitval = sum(r["terminationReason"] == "03" for r in sample) / len(sample)
    assert 0.04 < uitval < 0.15
    assert {r["providerAgb"] for r in sample} == set(PROVIDERS)


def test_most_trajectories_end_in_the_requested_period_and_none_after_today() -> None:
    pairs = records(2000, seed=4, period="2025-H2")
    first, last = period_bounds("2025-H2")
    ends = [dt.date.fromisoformat(r["endDate"]) for r, _ in pairs]
    assert max(ends) < TODAY
    assert sum(first <= e <= last for e in ends) / len(ends) > 0.8


def test_generation_streams() -> None:
    """A billion-record request yields its first records at once: nothing is built up front."""
    first = list(itertools.islice(generate(SyntheticConfig(records=10**9, today=TODAY)), 3))
    assert len(first) == 3


def test_custom_providers_are_used() -> None:
    pairs = records(400, providers=("12345678", "87654321"))
    assert {r["providerAgb"] for r, _ in pairs} == {"12345678", "87654321"}


@pytest.mark.parametrize(
    "kw",
    [{"providers": ("1234567",)}, {"providers": ()}, {"invalid_share": 1.5},
     {"period": "2027-H1"}, {"period": "2026-H3"}],
)
def test_bad_configuration_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        records(10, **kw)


def test_cli_writes_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    result = CliRunner().invoke(
        app,
        ["generate", "--records", "250", "--seed", "3", "--out", str(out), "--today",
         "2026-07-20", "--invalid-share", "0.2", "--provider", "98000001", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    lines = out.read_bytes().splitlines()
    assert len(lines) == 250
    parsed = [orjson.loads(line) for line in lines]
    assert parsed == [rec for rec, _ in records(250, seed=3, invalid_share=0.2,
                                                providers=("98000001",))]
    assert not list(tmp_path.glob("*.part"))


def test_cli_refuses_a_malformed_period(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["generate", "-n", "5", "--out", str(tmp_path / "x.jsonl"), "--period", "2026H1"]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "x.jsonl").exists()
