"""Mirror reports: the provider's annotations and shares, and downloads for provider and gemeente.

The report service renders the reports (PDF, CSV, HTML) and decides who may read which
variant; the portal passes each download through on the party's behalf, and turns the
annotation and share forms into the report service's own PUT and DELETE calls.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from services.portal.pages.figures import role
from services.portal.pages.relayed import ServiceAnswer, call, error_page, fetch_json
from services.portal.pages.render import default_period, is_voorlopig, period_choices, render
from services.portal.session import Person, checked_form, signed_in
from services.report.labels import QUESTIONS, SPECS
from ttp.outcomes import INDICATORS
from ttp.periods import PERIOD_RE

router = APIRouter()

FORMATS = {"pdf": "application/pdf", "csv": "text/csv", "html": "text/html"}
VARIANTS = ("intern", "deelbaar")
#: The annotation fields per indicator: the story, then the four questions of the quality conversation.
FIELDS: tuple[tuple[str, str], ...] = (("story", "Het verhaal achter de cijfers"), *QUESTIONS)


def _period(value: str) -> str | None:
    return value if PERIOD_RE.match(value) else None


def _bad_period(request: Request) -> Response:
    return render(request, "problem.html.j2", status=400, title="Onbekend halfjaar",
                  detail="Een halfjaar schrijft u als 2026-H1 of 2026-H2.")


@router.get("/aanbieder/rapporten", include_in_schema=False)
async def reports_home(request: Request, person: Person = Depends(role("provider"))) -> Response:
    period = _period(request.query_params.get("periode", "")) or default_period()
    base = f"/providers/{person.agb}/reports/{period}"
    try:
        annotations = await fetch_json(request, person, "report", f"{base}/annotations")
        shares = await fetch_json(request, person, "report", f"{base}/shares")
    except ServiceAnswer as answer:
        return answer.page
    return _reports_page(request, person, period, annotations["annotations"], shares["shares"])


def _reports_page(request: Request, person: Person, period: str, annotations: list[dict[str, Any]],
                  shares: list[dict[str, Any]], *, status: int = 200, message: str = "",
                  problem: dict[str, Any] | None = None) -> Response:
    by_indicator = {a["indicator"]: a for a in annotations}
    gemeenten = sorted((p.gemeente_code, p.name) for p in request.app.state.registry.all()
                       if p.role == "gemeente" and p.gemeente_code)
    return render(request, "reports.html.j2", status=status, period=period, voorlopig=is_voorlopig(period),
                  periods=period_choices(), indicators=INDICATORS, specs=SPECS, fields=FIELDS,
                  annotations=by_indicator, shares=shares, gemeenten=gemeenten, agb=person.agb,
                  message=message, problem=problem)


async def _reload(request: Request, person: Person, period: str, **kwargs: Any) -> Response:
    base = f"/providers/{person.agb}/reports/{period}"
    annotations = await fetch_json(request, person, "report", f"{base}/annotations")
    shares = await fetch_json(request, person, "report", f"{base}/shares")
    return _reports_page(request, person, period, annotations["annotations"], shares["shares"], **kwargs)


def annotations_from(form: FormData) -> list[dict[str, Any]]:
    """The complete set the report service replaces: every indicator with at least one answer."""
    items: list[dict[str, Any]] = []
    for indicator in INDICATORS:
        item: dict[str, Any] = {"indicator": indicator}
        for field, _label in FIELDS:
            value = form.get(f"{indicator}.{field}")
            if isinstance(value, str) and value.strip():
                item[field] = value.strip()
        if len(item) > 1:
            items.append(item)
    return items


@router.post("/aanbieder/rapporten/{period}/toelichting", include_in_schema=False)
async def save_annotations(period: str, request: Request, person: Person = Depends(role("provider")),
                           form: FormData = Depends(checked_form)) -> Response:
    if not _period(period):
        return _bad_period(request)
    try:
        response = await call(request, person, "report", "PUT",
                              f"/providers/{person.agb}/reports/{period}/annotations",
                              json={"annotations": annotations_from(form)})
        if response.status_code == 400:
            return await _reload(request, person, period, status=400, problem=response.json())
        if response.status_code != 200:
            return error_page(request, response)
        return await _reload(request, person, period, message="De toelichting is opgeslagen.")
    except ServiceAnswer as answer:
        return answer.page


@router.post("/aanbieder/rapporten/{period}/delen", include_in_schema=False)
async def share(period: str, request: Request, person: Person = Depends(role("provider")),
                form: FormData = Depends(checked_form)) -> Response:
    code = str(form.get("gemeente") or "")
    if not _period(period):
        return _bad_period(request)
    try:
        response = await call(request, person, "report", "PUT",
                              f"/providers/{person.agb}/reports/{period}/shares/{code}")
        if response.status_code not in (200, 201):
            return error_page(request, response)
        return await _reload(request, person, period, message=f"Het deelbare rapport is gedeeld met {code}.")
    except ServiceAnswer as answer:
        return answer.page


@router.post("/aanbieder/rapporten/{period}/delen/{code}/intrekken", include_in_schema=False)
async def revoke(period: str, code: str, request: Request, person: Person = Depends(role("provider")),
                 _form: FormData = Depends(checked_form)) -> Response:
    if not _period(period):
        return _bad_period(request)
    try:
        response = await call(request, person, "report", "DELETE",
                              f"/providers/{person.agb}/reports/{period}/shares/{code}")
        if response.status_code != 204:
            return error_page(request, response)
        return await _reload(request, person, period, message=f"Het delen met {code} is ingetrokken.")
    except ServiceAnswer as answer:
        return answer.page


@router.get("/rapporten/{agb}/{period}/{variant}.{fmt}", include_in_schema=False)
async def download(agb: str, period: str, variant: str, fmt: str, request: Request,
                   person: Person = Depends(signed_in)) -> Response:
    """A report file, as the report service renders it for this party (it decides who may read it)."""
    if fmt not in FORMATS or variant not in VARIANTS or not _period(period) or not (agb.isdigit() and len(agb) == 8):
        return render(request, "problem.html.j2", status=404, title="Niet gevonden",
                      detail="Dit rapport bestaat niet.")
    try:
        response = await call(request, person, "report", "GET", f"/providers/{agb}/reports/{period}/{variant}",
                              headers={"Accept": FORMATS[fmt]})
    except ServiceAnswer as answer:
        return answer.page
    if response.status_code != 200:
        return error_page(request, response)
    headers = {k: v for k, v in response.headers.items()
               if k.lower() in ("content-disposition", "content-security-policy", "etag")}
    return Response(response.content, media_type=response.headers.get("content-type"), headers=headers)


@router.get("/gemeente/gedeelde-rapporten", include_in_schema=False)
async def shared_with_me(request: Request, person: Person = Depends(role("gemeente"))) -> Response:
    try:
        doc = await fetch_json(request, person, "report", f"/gemeenten/{person.gemeente_code}/shared-reports")
    except ServiceAnswer as answer:
        return answer.page
    return render(request, "shared_reports.html.j2", shares=doc["shares"])
