"""HTTP routes of the report service.

Who may do what (SPEC, parties and roles):

* a provider reads both variants of its own reports, annotates them and shares
  the shareable variant with gemeenten of its choice;
* a gemeente lists and reads the shareable reports shared with it, and nothing
  else; the ``intern`` variant is never readable by anyone but its provider;
* the aggregate service (its disclosure check) lists every share ever made and
  reads the shareable figures exactly as they were served; no other TTP service
  reads anything here;
* the Rijk and auditors read no reports.

Every refusal goes through ``ttp.identity.refuse`` (logged 403). Shares,
revokes and annotation changes are committed only after their audit entry is
durable; reads are audited without waiting.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection, Engine

from services.report import store
from services.report.cache import RenderCache
from services.report.document import (
    DisclosureViolationError,
    ReportNotFoundError,
    build_report,
)
from services.report.figures import FigureCache, FiguresInvalidError, FiguresUnavailableError
from services.report.schemas import (
    AGB_PATTERN,
    GEMEENTE_PATTERN,
    PERIOD_PATTERN,
    AnnotationOut,
    AnnotationsIn,
    AnnotationsOut,
    ReportDocument,
    ReportVariant,
    ShareList,
    ShareOut,
    ShareRecord,
    ShareRecordList,
)
from ttp.audit_events import AuditEvent
from ttp.identity import refuse, require_roles, require_service
from ttp.problems import InvalidParam, Problem
from ttp.read_log import log_read
from ttp.registry import Party, Registry
from ttp.request_body import json_body_spec, parse_body

log = logging.getLogger("ttp.report")
router = APIRouter(prefix="/v1", tags=["reports"])

#: Seconds a period's annotations are reused by reads in another worker process.
ANNOTATION_TTL = 15.0

def _render_revision() -> str:
    """Fingerprint of the code and templates that shape a rendered report.

    Part of every ETag: after a deployment that changes how reports look, a client's
    cached copy no longer matches, even when the figures are the same.
    """
    here = FilePath(__file__).resolve().parent
    parts = sorted([*here.glob("*.py"), *(here / "templates").glob("*")])
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.read_bytes())
    return digest.hexdigest()[:16]


RENDER_REVISION = _render_revision()

Format = Literal["json", "csv", "html", "pdf"]
MEDIA_TYPES: dict[Format, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8; header=present",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}
HTML_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")

ProviderId = Annotated[str, Path(pattern=AGB_PATTERN, description="AGB code of the provider")]
PeriodPath = Annotated[str, Path(pattern=PERIOD_PATTERN, description="Half year, e.g. 2026-H1")]
GemeenteCode = Annotated[str, Path(pattern=GEMEENTE_PATTERN, description="CBS code, e.g. GM0363")]

provider_only = require_roles("provider")
report_readers = require_roles("provider", "gemeente", services=("aggregate",))
gemeente_only = require_roles("gemeente")
disclosure_check = require_service("aggregate")

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/problem+json": {}}}
    for code, text in (
        (400, "Invalid path, query or body; see invalidParams"),
        (403, "The caller may not see or change this resource (logged)"),
        (404, "No such report, share or snapshot"),
        (502, "Aggregate answered something the contract does not allow"),
        (503, "Aggregate or the audit log is unavailable; retry later"),
    )
}


# --- helpers -------------------------------------------------------------------------------


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def _own_provider(request: Request, party: Party, provider_id: str) -> None:
    if party.agb != provider_id:
        raise refuse(request, party.oin, "A provider may use only its own reports.")


def _provider_name(request: Request, agb: str) -> str:
    party = _registry(request).by_agb(agb)
    return party.name if party is not None else f"Aanbieder {agb}"


def _share_out(row: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "providerId": row["provider_agb"], "providerName": name, "period": row["period"],
        "gemeenteCode": row["gemeente_code"], "firstGrantedAt": row["first_granted_at"],
        "grantedAt": row["granted_at"], "revokedAt": row["revoked_at"],
        "active": row["revoked_at"] is None,
        "href": f"/v1/providers/{row['provider_agb']}/reports/{row['period']}/deelbaar",
    }


T = TypeVar("T")


async def _durably(
    request: Request, change: Callable[[Connection], T], events: Callable[[T], list[AuditEvent]]
) -> T:
    """Run ``change`` in a transaction, append its audit events, and only then commit.

    If the audit log does not acknowledge, the change is rolled back and the
    caller gets 503: nothing is shared or annotated without its audit entry.
    """
    conn = await run_in_threadpool(_engine(request).connect)
    try:
        trans = await run_in_threadpool(conn.begin)
        try:
            result = await run_in_threadpool(change, conn)
            batch = events(result)
            if batch:
                await request.app.state.audit_sink.append(batch)
        except Exception as exc:
            await run_in_threadpool(trans.rollback)
            if isinstance(exc, Problem):
                raise
            log.error("change not audited, rolled back", extra={"error_type": type(exc).__name__})
            raise Problem(503, "The audit log did not acknowledge the change; nothing was changed.",
                          headers={"Retry-After": "5"}) from exc
        await run_in_threadpool(trans.commit)
        return result
    finally:
        await run_in_threadpool(conn.close)


def negotiate(accept: str | None) -> Format:
    """The best format for an ``Accept`` header (RFC 9110 12.5.1); JSON when absent."""
    if not accept or not accept.strip():
        return "json"
    ranges: list[tuple[str, str, float]] = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        if "/" not in fields[0]:
            continue
        main, sub = (x.strip().lower() for x in fields[0].split("/", 1))
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        ranges.append((main, sub, q))
    best: tuple[float, int, Format] | None = None
    for rank, (fmt, media) in enumerate(MEDIA_TYPES.items()):
        main, sub = media.split(";")[0].split("/")
        matches = [(2 if (m, s) == (main, sub) else 1 if (m, s) == (main, "*") else 0, q)
                   for m, s, q in ranges
                   if (m, s) in ((main, sub), (main, "*"), ("*", "*"))]
        if not matches:
            continue
        q = max(matches)[1]  # the most specific range decides
        if q > 0 and (best is None or (q, -rank) > (best[0], best[1])):
            best = (q, -rank, fmt)
    if best is None:
        raise Problem(406, "This report is available as application/json, text/csv, text/html "
                           "and application/pdf.")
    return best[2]


# --- annotations ---------------------------------------------------------------------------


@router.get(
    "/providers/{providerId}/reports/{period}/annotations",
    summary="The provider's annotations of one report period",
    operation_id="getReportAnnotations", responses=_PROBLEMS,
)
async def get_annotations(
    request: Request, providerId: ProviderId, period: PeriodPath,  # noqa: N803
    party: Party = Depends(provider_only),
) -> AnnotationsOut:
    """The story behind the numbers and the answers to the four questions, per indicator."""
    _own_provider(request, party, providerId)
    items = await run_in_threadpool(store.load_annotations, _engine(request), providerId, period)
    return AnnotationsOut(providerId=providerId, period=period, annotations=items)


@router.put(
    "/providers/{providerId}/reports/{period}/annotations",
    summary="Set the story behind the numbers and the four questions, per indicator",
    description="Replaces the period's complete set: an indicator left out is cleared. The "
    "annotations appear in both variants, so also in what a gemeente reads; never write "
    "personal data in them (a BSN or six-position postcode is refused).",
    operation_id="putReportAnnotations", responses=_PROBLEMS,
    openapi_extra=json_body_spec(AnnotationsIn),
)
async def put_annotations(
    request: Request, providerId: ProviderId, period: PeriodPath,  # noqa: N803
    party: Party = Depends(provider_only),
) -> AnnotationsOut:
    _own_provider(request, party, providerId)
    body = await parse_body(request, AnnotationsIn, "The annotations are not valid; see invalidParams.")
    now = dt.datetime.now(dt.UTC)

    def change(conn: Connection) -> tuple[list[AnnotationOut], list[str]]:
        return store.replace_annotations(conn, providerId, period, body.annotations, party.oin, now)

    def events(result: tuple[list[AnnotationOut], list[str]]) -> list[AuditEvent]:
        items, changed = result
        if not changed:
            return []
        digest = hashlib.sha256(
            "\x1e".join(a.model_dump_json(exclude={"updatedAt"}) for a in items).encode()
        ).hexdigest()
        return [AuditEvent(kind="annotation-changed", actorOin=party.oin, relayedBy=party.relayed_by, subject={
            "provider": providerId, "period": period, "indicators": changed,
            "contentHash": digest,
        })]

    items, _ = await _durably(request, change, events)
    _remember_annotations(request, providerId, period, items, time.monotonic())
    return AnnotationsOut(providerId=providerId, period=period, annotations=items)


# --- shares --------------------------------------------------------------------------------


@router.get(
    "/providers/{providerId}/reports/{period}/shares",
    summary="With which gemeenten the shareable report of this period is (or was) shared",
    operation_id="listReportShares", responses=_PROBLEMS,
)
async def list_shares(
    request: Request, providerId: ProviderId, period: PeriodPath,  # noqa: N803
    party: Party = Depends(provider_only),
) -> ShareList:
    """Every gemeente this period's shareable report was shared with, revoked shares included."""
    _own_provider(request, party, providerId)
    rows = await run_in_threadpool(store.provider_shares, _engine(request), providerId, period)
    return ShareList(shares=[ShareOut(**_share_out(r, party.name)) for r in rows])


@router.put(
    "/providers/{providerId}/reports/{period}/shares/{gemeenteCode}",
    summary="Give a gemeente read access to the shareable (deelbaar) report of this period",
    operation_id="putReportShare", status_code=200,
    responses={**_PROBLEMS, 201: {"description": "Shared (newly or again after a revoke)"}},
)
async def put_share(
    request: Request, response: Response, providerId: ProviderId,  # noqa: N803
    period: PeriodPath, gemeenteCode: GemeenteCode,  # noqa: N803
    party: Party = Depends(provider_only),
) -> ShareOut:
    """Share the deelbaar variant with one gemeente (201; 200 when it was already shared).

    The share takes effect only once its audit entry is durable. The intern variant can
    never be shared.
    """
    _own_provider(request, party, providerId)
    if not any(p.gemeente_code == gemeenteCode for p in _registry(request).all()):
        raise Problem(400, "There is no registered gemeente with this code.", invalid_params=[
            InvalidParam(name="gemeenteCode", code="unknown-gemeente",
                         reason="not a gemeente registered with the TTP")])
    now = dt.datetime.now(dt.UTC)

    def change(conn: Connection) -> tuple[dict[str, Any], bool]:
        return store.grant_share(conn, providerId, period, gemeenteCode, party.oin, now)

    def events(result: tuple[dict[str, Any], bool]) -> list[AuditEvent]:
        row, changed = result
        if not changed:
            return []
        return [AuditEvent(
            kind="share-granted", actorOin=party.oin, relayedBy=party.relayed_by,
            subject={"provider": providerId, "period": period, "variant": "deelbaar",
                     "gemeenteCode": gemeenteCode},
            idempotencyKey=f"share-granted:{providerId}:{period}:{gemeenteCode}:"
                           f"{row['granted_at'].isoformat()}",
        )]

    row, changed = await _durably(request, change, events)
    response.status_code = 201 if changed else 200
    return ShareOut(**_share_out(row, party.name))


@router.delete(
    "/providers/{providerId}/reports/{period}/shares/{gemeenteCode}",
    summary="Revoke a gemeente's access to the shareable report of this period",
    operation_id="deleteReportShare", status_code=204, responses=_PROBLEMS,
)
async def delete_share(
    request: Request, providerId: ProviderId, period: PeriodPath,  # noqa: N803
    gemeenteCode: GemeenteCode, party: Party = Depends(provider_only),  # noqa: N803
) -> Response:
    """End a gemeente's access (audited). What it already read stays counted by the
    disclosure check."""
    _own_provider(request, party, providerId)
    now = dt.datetime.now(dt.UTC)

    def change(conn: Connection) -> dict[str, Any] | None:
        return store.revoke_share(conn, providerId, period, gemeenteCode, party.oin, now)

    def events(row: dict[str, Any] | None) -> list[AuditEvent]:
        if row is None:
            return []
        return [AuditEvent(
            kind="share-revoked", actorOin=party.oin, relayedBy=party.relayed_by,
            subject={"provider": providerId, "period": period, "variant": "deelbaar",
                     "gemeenteCode": gemeenteCode},
            idempotencyKey=f"share-revoked:{providerId}:{period}:{gemeenteCode}:{now.isoformat()}",
        )]

    if await _durably(request, change, events) is None:
        raise Problem(404, "This report is not shared with this gemeente.")
    return Response(status_code=204)


@router.get(
    "/gemeenten/{gemeenteCode}/shared-reports",
    summary="The shareable reports providers have shared with this gemeente",
    operation_id="listSharedReports", responses=_PROBLEMS,
)
async def shared_reports(
    request: Request, gemeenteCode: GemeenteCode,  # noqa: N803
    period: Annotated[str | None, Query(pattern=PERIOD_PATTERN)] = None,
    party: Party = Depends(gemeente_only),
) -> ShareList:
    """Active shares with the calling gemeente, optionally of one period, with links to the
    reports."""
    if party.gemeente_code != gemeenteCode:
        raise refuse(request, party.oin, "A gemeente may list only what was shared with itself.")
    rows = await run_in_threadpool(store.gemeente_shares, _engine(request), gemeenteCode, period)
    return ShareList(shares=[ShareOut(**_share_out(r, _provider_name(request, r["provider_agb"])))
                             for r in rows])


@router.get(
    "/shares",
    summary="Every share ever made, with the figure versions each gemeente was served "
    "(for the disclosure check)",
    description="Revoked shares stay listed: the gemeente may have kept what it read.",
    operation_id="listAllShares", responses=_PROBLEMS,
)
async def all_shares(
    request: Request,
    gemeenteCode: Annotated[str | None, Query(pattern=GEMEENTE_PATTERN)] = None,  # noqa: N803
    providerId: Annotated[str | None, Query(pattern=AGB_PATTERN)] = None,  # noqa: N803
    period: Annotated[str | None, Query(pattern=PERIOD_PATTERN)] = None,
    _party: Party = Depends(disclosure_check),
) -> ShareRecordList:
    """For the LP disclosure audit: a gemeente's feed is checked together with every shareable
    report it was (or is) given, in every version it was served."""
    records = await run_in_threadpool(
        lambda: store.share_records(_engine(request), gemeente=gemeenteCode, agb=providerId,
                                    period=period))
    return ShareRecordList(shares=[
        ShareRecord(**_share_out(row, _provider_name(request, row["provider_agb"])),
                    disclosedVersions=versions)
        for row, versions in records
    ])


@router.get(
    "/providers/{providerId}/reports/{period}/deelbaar/snapshots/{dataVersion}",
    summary="The shareable figures exactly as served to a gemeente (for the disclosure check)",
    operation_id="getDisclosedSnapshot", responses=_PROBLEMS,
)
async def disclosed_snapshot(
    request: Request, providerId: ProviderId, period: PeriodPath,  # noqa: N803
    dataVersion: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],  # noqa: N803
    _party: Party = Depends(disclosure_check),
) -> dict[str, Any]:
    """The report document of that version without the provider's annotations."""
    figures = await run_in_threadpool(store.snapshot, _engine(request), providerId, period,
                                      dataVersion)
    if figures is None:
        raise Problem(404, "No figures of this version were served to a gemeente.")
    return figures


# --- the report ----------------------------------------------------------------------------


async def _authorise_read(
    request: Request, party: Party, provider_id: str, period: str, variant: str
) -> Literal["own", "share", "service"]:
    """How ``party`` may read this report ("own", "share" or "service"), or a logged 403."""
    if party.role == "provider":
        _own_provider(request, party, provider_id)
        return "own"
    if variant != "deelbaar":
        raise refuse(request, party.oin, "The intern variant is readable by its provider only.")
    if party.role == "gemeente":
        shared: bool = party.gemeente_code is not None and await run_in_threadpool(
            store.active_share, _engine(request), provider_id, period, party.gemeente_code
        )
        if shared:
            return "share"
        raise refuse(request, party.oin, "This report has not been shared with your gemeente.")
    if await run_in_threadpool(store.ever_shared, _engine(request), provider_id, period):
        return "service"  # the disclosure check, reading what gemeenten were or are shown
    raise refuse(request, party.oin, "This report has not been shared with anyone.")


@router.get(
    "/providers/{providerId}/reports/{period}/{variant}",
    summary="A mirror report (spiegelrapportage) as JSON, CSV, HTML or PDF, chosen by Accept",
    description="`intern` holds every figure and is for the provider alone; `deelbaar` has "
    "small numbers and complementary cells suppressed and can be shared with gemeenten. HTML "
    "and PDF are documents for the quality conversation: a summary page, one page per "
    "indicator with charts, n and response beside every figure, the national reference and "
    "the provider's annotations. No norms and no ranking of providers.",
    operation_id="getReport",
    responses={
        **_PROBLEMS,
        200: {"content": {"application/json": {}, "text/csv": {}, "text/html": {},
                          "application/pdf": {}},
              "description": "The report"},
        304: {"description": "Not modified (If-None-Match)"},
        406: {"description": "No acceptable format", "content": {"application/problem+json": {}}},
    },
    response_model=ReportDocument,
)
async def get_report(
    request: Request, providerId: ProviderId, period: PeriodPath,  # noqa: N803
    variant: ReportVariant, party: Party = Depends(report_readers),
) -> Response:
    access = await _authorise_read(request, party, providerId, period, variant)
    fmt = negotiate(request.headers.get("accept"))
    state = request.app.state
    figures: FigureCache = state.figures
    try:
        inputs = await figures.inputs(providerId, period, variant)
    except FiguresUnavailableError as exc:
        raise Problem(503, "The figures cannot be fetched right now; try again shortly.",
                      headers={"Retry-After": "10"}) from exc
    except FiguresInvalidError as exc:
        raise Problem(502, "The figures service answered something unusable; this is logged.") \
            from exc
    annotations, annotations_version = await _annotations(request, providerId, period)
    name = _provider_name(request, providerId)
    version = hashlib.sha256(
        "|".join([RENDER_REVISION, inputs.version, name, annotations_version]).encode()
    ).hexdigest()

    def build() -> ReportDocument:
        return build_report(provider_agb=providerId, provider_name=name, period=period,
                            variant=variant, inputs=inputs, annotations=annotations,
                            threshold=state.settings.suppression_threshold)

    documents: RenderCache[ReportDocument] = state.documents
    try:
        doc = await documents.get((providerId, period, variant, version), build)
    except ReportNotFoundError as exc:
        raise Problem(404, "There are no figures for this provider in this period.") from exc
    except DisclosureViolationError as exc:
        raise Problem(502, "The shareable figures failed the small-number check and are withheld; "
                           "this is logged.") from exc

    if access == "share" and party.gemeente_code:
        await _disclose(request, doc, party.gemeente_code)

    etag = f'W/"{version[:32]}-{fmt}"'
    headers = {
        "ETag": etag, "Vary": "Accept",
        "Cache-Control": "private, no-store" if variant == "intern" else "private, no-cache",
    }
    await _audit_read(request, party, doc, fmt, access)
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)

    renders: RenderCache[bytes] = state.renders
    body = await renders.get((providerId, period, variant, fmt, version), lambda: _render(doc, fmt))
    if fmt in ("pdf", "csv"):
        filename = f"spiegelrapportage_{providerId}_{period}_{variant}.{fmt}"
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if fmt == "html":
        headers["Content-Security-Policy"] = HTML_CSP
        headers["X-Content-Type-Options"] = "nosniff"
    headers["Vary"] = "Accept, Accept-Encoding"
    if fmt != "pdf" and "gzip" in request.headers.get("accept-encoding", ""):
        # Text renders run to hundreds of kilobytes; their gzip copy is cached beside them.
        gz = await renders.get((providerId, period, variant, f"{fmt}.gz", version),
                               lambda: gzip.compress(body, compresslevel=6, mtime=0))
        headers["Content-Encoding"] = "gzip"
        return Response(gz, media_type=MEDIA_TYPES[fmt], headers=headers)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


async def _annotations(request: Request, agb: str, period: str) -> tuple[list[AnnotationOut], str]:
    """The period's annotations and their fingerprint, kept as long as the figures are.

    A PUT in this process replaces the entry at once; another worker process sees
    the change within ``ANNOTATION_TTL`` seconds, like a figure change.
    """
    cache: dict[tuple[str, str], tuple[float, list[AnnotationOut], str]] = \
        request.app.state.annotations
    hit = cache.get((agb, period))
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    items = await run_in_threadpool(store.load_annotations, _engine(request), agb, period)
    return _remember_annotations(request, agb, period, items, now)


def _remember_annotations(
    request: Request, agb: str, period: str, items: list[AnnotationOut], now: float
) -> tuple[list[AnnotationOut], str]:
    cache: dict[tuple[str, str], tuple[float, list[AnnotationOut], str]] = \
        request.app.state.annotations
    fingerprint = hashlib.sha256(
        "\x1e".join(a.model_dump_json() for a in items).encode()).hexdigest()
    if len(cache) > 10_000:
        cache.clear()
    cache[(agb, period)] = (now + ANNOTATION_TTL, items, fingerprint)
    return items, fingerprint


def _render(doc: ReportDocument, fmt: Format) -> bytes:
    if fmt == "json":
        return doc.model_dump_json().encode()
    if fmt == "csv":
        from services.report.render_csv import render_csv

        return render_csv(doc)
    if fmt == "html":
        from services.report.render_html import render_html

        return render_html(doc)
    from services.report.render_pdf import render_pdf

    return render_pdf(doc)


async def _disclose(request: Request, doc: ReportDocument, gemeente: str) -> None:
    """Record, before serving, that ``gemeente`` sees this version of the shareable figures."""
    seen: set[tuple[str, str, str, str]] = request.app.state.disclosed
    key = (doc.providerId, doc.period, gemeente, doc.dataVersion)
    if key in seen:
        return
    if len(seen) > 100_000:  # a memo only; the database is the record
        seen.clear()
    try:
        await run_in_threadpool(
            store.record_disclosure, _engine(request), doc.providerId, doc.period, gemeente,
            doc.dataVersion, doc.figures_only(), dt.datetime.now(dt.UTC))
    except Exception as exc:
        log.error("disclosure not recorded", extra={"error_type": type(exc).__name__})
        raise Problem(503, "The report cannot be served right now; try again shortly.",
                      headers={"Retry-After": "5"}) from exc
    seen.add(key)


async def _audit_read(request: Request, party: Party, doc: ReportDocument, fmt: str, access: str) -> None:
    """The read's entry, durable before the report is sent (503 and nothing sent otherwise)."""
    await log_read(request, AuditEvent(
        kind="report-read", actorOin=party.oin, relayedBy=party.relayed_by,
        subject={"provider": doc.providerId, "period": doc.period, "variant": doc.variant,
                 "format": fmt, "access": access, "dataVersion": doc.dataVersion,
                 "service": "report"},
    ))
