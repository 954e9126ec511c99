"""Outcome figures, each to the party entitled to it.

* ``GET /v1/gemeenten/{gemeenteCode}/outcomes``: a gemeente, its own residents only
  (another gemeente's code is refused with 403 and the refusal is logged);
* ``GET /v1/rijk/outcomes``: the Rijk, per gemeente and national;
* ``GET /v1/providers/{providerAgb}/outcomes``: the report service only, a
  provider's ``intern`` (every number) or ``deelbaar`` (protected) figures;
* ``GET /v1/national/outcomes``: the report service only, the national reference.

Every third-party output comes from the stored, protected cells; nothing is
computed per request except the table's shape. A stale period is recomputed
before it is served (ingest only marks periods stale). Every gemeente and Rijk
read is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import gzip
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from services.aggregate.cell_key import CellKeyMethod
from services.aggregate.disclosure import Protection
from services.aggregate.feeds import (
    Output,
    build_table,
    gemeente_output,
    national_output,
    provider_output,
    rijk_output,
    to_csv,
)
from services.aggregate.models import Trajectory
from services.aggregate.recompute import period_state, recompute, release
from ttp.audit_events import AuditEvent
from ttp.identity import refuse, require_roles, require_service
from ttp.outcomes import OutcomeTable
from ttp.periods import period_bounds
from ttp.problems import Problem
from ttp.read_log import log_read
from ttp.registry import Party

router = APIRouter(prefix="/v1", tags=["outcomes"])

PERIOD_PATTERN = r"^20\d{2}-H[12]$"
PeriodQuery = Annotated[str, Query(pattern=PERIOD_PATTERN, description="Half year, e.g. 2026-H1")]
JSON = "application/json"
CSV = "text/csv"
CACHE_SIZE = 512

_OUTCOME_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {JSON: {}, CSV: {"schema": {"type": "string"}}},
          "description": "The figures; CSV with one row per figure when Accept asks for text/csv"},
    400: {"description": "Malformed period, code or variant"},
    403: {"description": "Not this party's figures (logged)"},
    404: {"description": "No figures for this period (yet)"},
    406: {"description": "Accept asks for neither JSON nor CSV"},
}


class Served:
    """A built table and its serialisations, made once per computed version.

    Feeds run to megabytes; a gzip copy of each serialisation is kept beside
    it, so a client that accepts gzip gets a tenth of the bytes through TLS at
    no per-request compression cost.
    """

    def __init__(self, table: OutcomeTable) -> None:
        self.table = table
        self.json = table.model_dump_json().encode()
        self._csv: str | None = None
        self._gzip: dict[str, bytes] = {}

    @property
    def csv(self) -> str:
        if self._csv is None:
            self._csv = to_csv(self.table)
        return self._csv

    def gzipped(self, fmt: str) -> bytes:
        body = self._gzip.get(fmt)
        if body is None:
            raw = self.csv.encode() if fmt == CSV else self.json
            body = self._gzip[fmt] = gzip.compress(raw, compresslevel=6, mtime=0)
        return body


class _Cache:
    """Built tables by (period, output, computed sequence, day): reads are served from memory."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: OrderedDict[tuple[Any, ...], Served] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> Served | None:
        with self.lock:
            served = self.items.get(key)
            if served is not None:
                self.items.move_to_end(key)
            return served

    def put(self, key: tuple[Any, ...], served: Served) -> None:
        with self.lock:
            self.items[key] = served
            while len(self.items) > CACHE_SIZE:
                self.items.popitem(last=False)


def _cache(request: Request) -> _Cache:
    state = request.app.state
    cache = getattr(state, "outcome_cache", None)
    if cache is None:
        cache = _Cache()
        state.outcome_cache = cache
    return cache


def protection_of(request: Request) -> Protection:
    settings = request.app.state.settings
    return Protection(settings.suppression_threshold, settings.protection_ratio)


def method_of(request: Request) -> CellKeyMethod:
    """The cell-key method every third-party output is shown through (its secret read once)."""
    state = request.app.state
    method: CellKeyMethod | None = getattr(state, "cell_key_method", None)
    if method is None:
        settings = state.settings
        method = state.cell_key_method = CellKeyMethod.load(settings.cell_key, settings.suppression_threshold)
    return method


def _has_rows(engine: Engine, period: str) -> bool:
    t = Trajectory.__table__
    with engine.connect() as conn:
        return conn.execute(select(t.c.record_id).where(t.c.period == period).limit(1)).first() is not None


def serve_table(engine: Engine, period: str, output: Output, protection: Protection,
                cache: _Cache, today: dt.date, method: CellKeyMethod) -> Served:
    """The output's table, recomputing the period first if it is stale (runs in a thread)."""
    if output.third_party and today <= period_bounds(period)[1]:
        raise Problem(404, "Figures of a half year are published once it has ended.")
    with engine.connect() as conn:
        state = period_state(conn, period)
    if state is None and not _has_rows(engine, period):
        raise Problem(404, "There are no figures for this period.")
    if state is None or state.stale:
        recompute(engine, period, protection, force=state is None)
        with engine.connect() as conn:
            state = period_state(conn, period)
    assert state is not None
    key = (period, output, state.computed_seq, state.computed_at, today)
    served = cache.get(key)
    if served is not None and (not output.third_party or state.released_seq >= state.computed_seq):
        return served
    table: OutcomeTable | None = None
    for attempt in range(3):
        try:
            # One transaction: the pattern recorded as released is the one read and served.
            with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    state = period_state(conn, period)
                    assert state is not None
                    if output.third_party:
                        release(conn, period)
                    table = build_table(conn, period, output, threshold=protection.threshold, as_of=today,
                                        generated_at=state.computed_at or dt.datetime.now(dt.UTC),
                                        method=method)
            break
        except OperationalError:  # a recompute stored the period meanwhile: read again
            if attempt == 2:
                raise
    assert table is not None and state is not None
    served = Served(table)
    cache.put((period, output, state.computed_seq, state.computed_at, today), served)
    return served


def _format(request: Request) -> str:
    """JSON or CSV, by the Accept header (406 for anything else), decided before any work."""
    accept = request.headers.get("accept", "") or "*/*"
    if CSV in accept:
        return CSV
    if any(m in accept for m in (JSON, "application/*", "*/*")):
        return JSON
    raise Problem(406, "Figures are available as application/json or text/csv.")


def _respond(served: Served, fmt: str, request: Request | None = None) -> Response:
    media = f"{CSV}; charset=utf-8" if fmt == CSV else JSON
    if request is not None and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(served.gzipped(fmt), media_type=media,
                        headers={"content-encoding": "gzip", "vary": "Accept, Accept-Encoding"})
    return Response(served.csv if fmt == CSV else served.json, media_type=media,
                    headers={"vary": "Accept, Accept-Encoding"})


async def _serve(request: Request, period: str, output: Output) -> Served:
    _format(request)
    return await run_in_threadpool(
        serve_table, request.app.state.engine, period, output, protection_of(request),
        _cache(request), dt.date.today(), method_of(request),
    )


async def _log_read(request: Request, party: Party, subject: dict[str, Any]) -> None:
    """The read's entry, durable before the figures are sent (503 and nothing sent otherwise)."""
    await log_read(request, AuditEvent(kind="feed-read", actorOin=party.oin, relayedBy=party.relayed_by,
                                       subject=subject))


@router.get(
    "/gemeenten/{gemeenteCode}/outcomes", response_model=OutcomeTable, responses=_OUTCOME_RESPONSES,
    operation_id="getGemeenteOutcomes", summary="A gemeente's own residents: per PC4, in total, per care type",
)
async def gemeente_outcomes(
    request: Request,
    gemeente_code: Annotated[str, Path(alias="gemeenteCode", pattern=r"^GM\d{4}$")],
    period: PeriodQuery,
    party: Annotated[Party, Depends(require_roles("gemeente"))],
) -> Response:
    if party.gemeente_code != gemeente_code:
        raise refuse(request, party.oin, "A gemeente may read only the feed of its own residents.")
    served = await _serve(request, period, gemeente_output(gemeente_code))
    await _log_read(request, party, {"service": "aggregate", "feed": "gemeente", "gemeente": gemeente_code,
                               "period": period})
    return _respond(served, _format(request), request)


@router.get(
    "/rijk/outcomes", response_model=OutcomeTable, responses=_OUTCOME_RESPONSES,
    operation_id="getRijkOutcomes", summary="Per gemeente and national totals, for the Rijk",
)
async def rijk_outcomes(
    request: Request, period: PeriodQuery, party: Annotated[Party, Depends(require_roles("rijk"))],
) -> Response:
    served = await _serve(request, period, rijk_output())
    await _log_read(request, party, {"service": "aggregate", "feed": "rijk", "period": period})
    return _respond(served, _format(request), request)


@router.get(
    "/providers/{providerAgb}/outcomes", response_model=OutcomeTable, responses=_OUTCOME_RESPONSES,
    operation_id="getProviderOutcomes",
    summary="A provider's figures for its mirror reports (report service only)",
)
async def provider_outcomes(
    request: Request,
    provider_agb: Annotated[str, Path(alias="providerAgb", pattern=r"^\d{8}$")],
    period: PeriodQuery,
    variant: Annotated[str, Query(pattern=r"^(intern|deelbaar)$")],
    party: Annotated[Party, Depends(require_service("report"))],
) -> Response:
    del party
    served = await _serve(request, period, provider_output(provider_agb, variant))
    return _respond(served, _format(request), request)


@router.get(
    "/national/outcomes", response_model=OutcomeTable, responses=_OUTCOME_RESPONSES,
    operation_id="getNationalOutcomes", summary="The national reference (report service only)",
)
async def national_outcomes(
    request: Request, period: PeriodQuery, party: Annotated[Party, Depends(require_service("report"))],
) -> Response:
    del party
    served = await _serve(request, period, national_output())
    return _respond(served, _format(request), request)
