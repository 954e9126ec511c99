"""Render a page: the Jinja2 environment, the values every page shows, and service answers.

Every page says whose data it is (the party) and, where it shows figures, for which half
year and whether that half year is still ``voorlopig``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from services.portal.session import csrf_token
from ttp.periods import PERIOD_RE, period_bounds, period_of, previous_period

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))

#: Delivery term after a half year (CBS protocol: within 3 weeks); until it passed, figures are voorlopig.
DELIVERY_TERM = dt.timedelta(weeks=3)

#: The main menu of each role.
NAV: dict[str, tuple[tuple[str, str], ...]] = {
    "provider": (("/aanbieder", "Aanleveren"), ("/aanbieder/rapporten", "Spiegelrapportages")),
    "gemeente": (("/gemeente", "Cijfers"), ("/gemeente/gedeelde-rapporten", "Gedeelde rapporten")),
    "rijk": (("/rijk", "Cijfers"),),
    "auditor": (("/auditor", "Auditlog"),),
}

ROLE_LABELS = {"provider": "Jeugdhulpaanbieder", "gemeente": "Gemeente", "rijk": "Rijk", "auditor": "Auditor"}


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` with the signed-in person (if any) and the session's CSRF token."""
    person = getattr(request.state, "person", None)
    return TEMPLATES.TemplateResponse(
        request, template,
        {"person": person, "csrf_token": csrf_token(request), "role_labels": ROLE_LABELS, "nav": NAV,
         **context},
        status_code=status,
    )


def is_voorlopig(period: str, today: dt.date | None = None) -> bool:
    """A half year is voorlopig while it runs and until its delivery term has passed."""
    end = period_bounds(period)[1]
    return (today or dt.date.today()) <= end + DELIVERY_TERM


def default_period(today: dt.date | None = None) -> str:
    """The last half year that has ended: the one a person most likely comes to read."""
    return previous_period(period_of(today or dt.date.today()))


def chosen_period(request: Request) -> str:
    """The ``periode`` query parameter if it is a half year, else the default."""
    value = request.query_params.get("periode", "")
    return value if PERIOD_RE.match(value) else default_period()


def period_choices(today: dt.date | None = None, count: int = 6) -> list[str]:
    """Recent half years, newest first, for the period selector."""
    current = period_of(today or dt.date.today())
    choices = [current]
    for _ in range(count - 1):
        choices.append(previous_period(choices[-1]))
    return choices


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """A service's problem+json answer as a dict (with at least a Dutch-readable detail)."""
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    doc.setdefault("status", response.status_code)
    doc.setdefault("detail", response.reason_phrase)
    return doc
