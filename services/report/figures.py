"""Where the report service gets its figures: aggregate, over mTLS, never its database.

``FigureSource`` is the small interface the rest of the service depends on;
``HttpFigureSource`` is the production implementation and tests hand in a
fake. ``FigureCache`` sits in front of either: a report read needs up to four
periods of the provider's own table plus the national table of each, and
fetching eight tables on every read would not meet the read latency target,
so tables are kept for a short time and concurrent readers of the same table
share one fetch.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
from pydantic import ValidationError

from ttp.logging_setup import request_id_var
from ttp.outcomes import OutcomeTable
from ttp.periods import previous_period
from ttp.settings import Settings

log = logging.getLogger("ttp.report.figures")

#: Periods in a report's trend: the report's own and the three before it.
TREND_PERIODS = 4


class FiguresUnavailableError(Exception):
    """Aggregate could not be reached or is overloaded: worth retrying later (503)."""


class FiguresInvalidError(Exception):
    """Aggregate answered something the contract does not allow (502); never rendered."""


class FigureSource(Protocol):
    """Outcome tables as computed by aggregate; ``None`` when there are no figures."""

    async def provider_outcomes(self, agb: str, period: str, variant: str) -> OutcomeTable | None:
        """The provider's table of one period, variant ``intern`` or ``deelbaar``."""
        ...

    async def national_outcomes(self, period: str) -> OutcomeTable | None:
        """The national reference table of one period (suppressed like any third-party output)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class HttpFigureSource:
    """Fetch tables from aggregate with the report service's own client certificate."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        if client is None:
            from ttp.service_client import service_client

            client = service_client(settings, "report", "aggregate")
        self._client = client

    async def provider_outcomes(self, agb: str, period: str, variant: str) -> OutcomeTable | None:
        table = await self._get(f"providers/{agb}/outcomes", {"period": period, "variant": variant})
        if table is not None and (
            table.period != period
            or table.variant != variant
            or table.scope.kind != "provider"
            or table.scope.code != agb
        ):
            # A table of another provider or variant would be a leak; refuse it outright.
            raise FiguresInvalidError(
                "aggregate answered with a table for another provider, period or variant"
            )
        return table

    async def national_outcomes(self, period: str) -> OutcomeTable | None:
        table = await self._get("national/outcomes", {"period": period})
        if table is not None and (table.period != period or table.scope.kind != "national"):
            raise FiguresInvalidError("aggregate answered with a table for another scope or period")
        return table

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str]) -> OutcomeTable | None:
        try:
            resp = await self._client.get(
                path,
                params=params,
                headers={"Accept": "application/json", "X-Request-ID": request_id_var.get()},
            )
        except httpx.TransportError as exc:
            log.warning(
                "aggregate unreachable", extra={"error_type": type(exc).__name__, "path": path}
            )
            raise FiguresUnavailableError("aggregate is unreachable") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code in (429, 502, 503, 504):
            raise FiguresUnavailableError(f"aggregate answered {resp.status_code}")
        if resp.status_code != 200:
            log.error("aggregate refused", extra={"status": resp.status_code, "path": path})
            raise FiguresInvalidError(f"aggregate answered {resp.status_code}")
        try:
            return OutcomeTable.model_validate_json(resp.content)
        except ValidationError as exc:
            log.error("aggregate table invalid", extra={"path": path, "errors": exc.error_count()})
            raise FiguresInvalidError(
                "aggregate answered a table that breaks the OutcomeTable contract"
            ) from exc


@dataclass(frozen=True)
class Fetched:
    """A table (or its absence) with the fingerprint of its content."""

    table: OutcomeTable | None
    fingerprint: str

    @classmethod
    def of(cls, table: OutcomeTable | None) -> Fetched:
        raw = b"none" if table is None else table.model_dump_json().encode()
        return cls(table, hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class ReportInputs:
    """Every table one report is built from, oldest period first."""

    periods: tuple[str, ...]
    #: The provider's tables in the report's variant.
    tables: dict[str, OutcomeTable | None]
    #: The provider's intern tables: its true counts, needed to decide which national
    #: reference cells can be shown without giving other providers' clients away.
    own: dict[str, OutcomeTable | None]
    national: dict[str, OutcomeTable | None]
    version: str


def trend_periods(period: str, count: int = TREND_PERIODS) -> tuple[str, ...]:
    """``period`` and the ``count - 1`` half years before it, oldest first."""
    out = [period]
    for _ in range(count - 1):
        out.append(previous_period(out[-1]))
    return tuple(reversed(out))


class FigureCache:
    """Short-lived, single-flight cache in front of a ``FigureSource``.

    ``ttl`` trades freshness for latency: a figure recomputed by aggregate is
    visible in reports after at most ``ttl`` seconds. Failures are not cached.
    Only finished values are shared across event loops; an in-flight fetch is
    shared by the readers of its own loop.
    """

    def __init__(self, source: FigureSource, *, ttl: float = 15.0, max_entries: int = 4096) -> None:
        self.source = source
        self.ttl = ttl
        self.max_entries = max_entries
        self._values: OrderedDict[tuple[str, ...], tuple[float, Fetched]] = OrderedDict()
        self._inflight: dict[tuple[str, ...], asyncio.Task[Fetched]] = {}

    async def _get(
        self, key: tuple[str, ...], fetch: Callable[[], Awaitable[OutcomeTable | None]]
    ) -> Fetched:
        hit = self._values.get(key)
        if hit is not None and hit[0] > time.monotonic():
            self._values.move_to_end(key)
            return hit[1]
        loop = asyncio.get_running_loop()
        task = self._inflight.get(key)
        if task is None or task.get_loop() is not loop:
            # Its own task, so a reader that hangs up does not cancel the fetch for the others.
            task = loop.create_task(self._fetch(key, fetch))
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _fetch(
        self, key: tuple[str, ...], fetch: Callable[[], Awaitable[OutcomeTable | None]]
    ) -> Fetched:
        try:
            fetched = Fetched.of(await fetch())
            self._values[key] = (time.monotonic() + self.ttl, fetched)
            self._values.move_to_end(key)
            while len(self._values) > self.max_entries:
                self._values.popitem(last=False)
            return fetched
        finally:
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]

    def clear(self) -> None:
        """Forget every fetched table: the next read fetches fresh figures."""
        self._values.clear()

    def _fetchers(
        self, agb: str, period: str, variant: str
    ) -> list[tuple[tuple[str, ...], Callable[[], Awaitable[OutcomeTable | None]]]]:
        """The (cache key, fetch) of every table a report needs, in ReportInputs order."""
        src = self.source
        periods = trend_periods(period)
        variants = [variant] if variant == "intern" else [variant, "intern"]
        out: list[tuple[tuple[str, ...], Callable[[], Awaitable[OutcomeTable | None]]]] = []
        for v in variants:
            for p in periods:
                out.append((("p", agb, p, v),
                            lambda p=p, v=v: src.provider_outcomes(agb, p, v)))  # type: ignore[misc]
        for p in periods:
            out.append((("n", p), lambda p=p: src.national_outcomes(p)))  # type: ignore[misc]
        return out

    async def inputs(self, agb: str, period: str, variant: str) -> ReportInputs:
        """All tables of a report; fetched concurrently, or straight from the cache.

        The all-cached case (every read but the first per ``ttl``) does not touch the
        event loop at all: it is the hot path of the read benchmark.
        """
        fetchers = self._fetchers(agb, period, variant)
        now = time.monotonic()
        got: list[Fetched] = []
        for key, _ in fetchers:
            hit = self._values.get(key)
            if hit is None or hit[0] <= now:
                break
            got.append(hit[1])
        if len(got) < len(fetchers):
            got = list(await asyncio.gather(*(self._get(k, f) for k, f in fetchers)))
        periods = trend_periods(period)
        k = len(periods)
        tables = {p: f.table for p, f in zip(periods, got[:k], strict=True)}
        own = tables if variant == "intern" else {
            p: f.table for p, f in zip(periods, got[k : 2 * k], strict=True)}
        national = {p: f.table for p, f in zip(periods, got[-k:], strict=True)}
        version = hashlib.sha256("|".join(f.fingerprint for f in got).encode()).hexdigest()
        return ReportInputs(periods, tables, own, national, version)

    async def aclose(self) -> None:
        await self.source.aclose()
