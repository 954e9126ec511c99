"""Fetching figures from aggregate: the HTTP contract, and the cache in front of it."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from services.report.figures import (
    FigureCache,
    FiguresInvalidError,
    FiguresUnavailableError,
    HttpFigureSource,
    trend_periods,
)
from tests.report.factory import FakeFigures, national_table, provider_tables
from ttp.outcomes import OutcomeTable
from ttp.settings import Settings

AGB, PERIOD = "98000001", "2026-H1"


def test_trend_periods_are_the_last_four_half_years_oldest_first() -> None:
    assert trend_periods("2026-H1") == ("2024-H2", "2025-H1", "2025-H2", "2026-H1")
    assert trend_periods("2025-H2", 2) == ("2025-H1", "2025-H2")


def _source(handler: httpx.MockTransport) -> HttpFigureSource:
    client = httpx.AsyncClient(base_url="https://aggregate.test/v1", transport=handler)
    return HttpFigureSource(Settings(), client=client)


def test_http_source_asks_aggregate_for_the_provider_and_national_tables() -> None:
    intern, deelbaar = provider_tables(AGB, PERIOD)
    national = national_table(PERIOD)
    seen: list[tuple[str, dict[str, str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, dict(request.url.params)))
        if request.url.path == f"/v1/providers/{AGB}/outcomes":
            table = intern if request.url.params["variant"] == "intern" else deelbaar
            return httpx.Response(200, content=table.model_dump_json())
        if request.url.path == "/v1/national/outcomes":
            return httpx.Response(200, content=national.model_dump_json())
        return httpx.Response(404, json={"status": 404})

    source = _source(httpx.MockTransport(handler))

    async def run() -> tuple[OutcomeTable | None, ...]:
        try:
            return (await source.provider_outcomes(AGB, PERIOD, "deelbaar"),
                    await source.national_outcomes(PERIOD),
                    await source.provider_outcomes("98000002", PERIOD, "intern"))
        finally:
            await source.aclose()

    got_deelbaar, got_national, missing = asyncio.run(run())
    assert got_deelbaar == deelbaar
    assert got_national == national
    assert missing is None
    assert seen[0] == (f"/v1/providers/{AGB}/outcomes", {"period": PERIOD, "variant": "deelbaar"})
    assert seen[1] == ("/v1/national/outcomes", {"period": PERIOD})


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, b"{}", FiguresUnavailableError),
        (429, b"{}", FiguresUnavailableError),
        (403, b"{}", FiguresInvalidError),
        (500, b"{}", FiguresInvalidError),
        (200, b'{"period": "2026-H1"}', FiguresInvalidError),
    ],
)
def test_http_source_maps_aggregate_failures(status: int, body: bytes, error: type[Exception]) -> None:
    source = _source(httpx.MockTransport(lambda _r: httpx.Response(status, content=body)))
    with pytest.raises(error):
        asyncio.run(source.national_outcomes(PERIOD))


def test_http_source_refuses_a_table_of_another_provider_or_variant() -> None:
    other, _ = provider_tables("98000002", PERIOD)
    source = _source(httpx.MockTransport(lambda _r: httpx.Response(200, content=other.model_dump_json())))
    with pytest.raises(FiguresInvalidError):
        asyncio.run(source.provider_outcomes(AGB, PERIOD, "intern"))
    intern, _ = provider_tables(AGB, PERIOD)
    source = _source(httpx.MockTransport(lambda _r: httpx.Response(200, content=intern.model_dump_json())))
    with pytest.raises(FiguresInvalidError):
        asyncio.run(source.provider_outcomes(AGB, PERIOD, "deelbaar"))


def test_http_source_unreachable_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(FiguresUnavailableError):
        asyncio.run(_source(httpx.MockTransport(handler)).national_outcomes(PERIOD))


def _fake() -> FakeFigures:
    fake = FakeFigures()
    for p in trend_periods(PERIOD):
        fake.add_provider(AGB, p, count=60)
        fake.national[p] = national_table(p, count=500)
    return fake


def test_cache_reuses_tables_within_ttl_and_shares_concurrent_fetches() -> None:
    fake = _fake()
    cache = FigureCache(fake, ttl=60)

    async def run() -> None:
        first, second = await asyncio.gather(cache.inputs(AGB, PERIOD, "deelbaar"),
                                             cache.inputs(AGB, PERIOD, "deelbaar"))
        assert first.version == second.version
        # 4 deelbaar + 4 intern (own counts) + 4 national, each fetched once
        assert fake.calls == 12
        await cache.inputs(AGB, PERIOD, "intern")  # intern tables and national already cached
        assert fake.calls == 12

    asyncio.run(run())


def test_cache_version_follows_the_figures_and_ttl_zero_refetches() -> None:
    fake = _fake()
    cache = FigureCache(fake, ttl=0)
    before = asyncio.run(cache.inputs(AGB, PERIOD, "intern"))
    fake.add_provider(AGB, PERIOD, count=61)
    after = asyncio.run(cache.inputs(AGB, PERIOD, "intern"))
    assert before.version != after.version
    table = after.tables[PERIOD]
    assert table is not None and table.trajectories == 61


def test_cache_does_not_keep_failures() -> None:
    fake = _fake()
    cache = FigureCache(fake, ttl=60)
    failing = {"on": True}
    original = fake.national_outcomes

    async def flaky(period: str) -> OutcomeTable | None:
        if failing["on"]:
            raise FiguresUnavailableError("down")
        return await original(period)

    fake.national_outcomes = flaky  # type: ignore[method-assign]
    with pytest.raises(FiguresUnavailableError):
        asyncio.run(cache.inputs(AGB, PERIOD, "intern"))
    failing["on"] = False
    assert asyncio.run(cache.inputs(AGB, PERIOD, "intern")).national[PERIOD] is not None


def test_table_json_is_the_contract() -> None:
    intern, _ = provider_tables(AGB, PERIOD, count=30)
    doc = json.loads(intern.model_dump_json())
    assert {"period", "scope", "variant", "threshold", "generatedAt", "trajectories", "withoutBsn",
            "cells", "notes"} <= set(doc)
