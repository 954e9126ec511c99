"""Turn a relayed service answer into what a page shows: JSON on success, an error page otherwise.

The services decide access; the portal only shows their answer. A refusal (403) is shown
as such and is logged by the service that refused; a service that is down (or a timeout)
is a 503 page with the advice to try again, never an empty table.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse

from services.portal.pages.render import problem_of, render
from services.portal.session import Person

log = logging.getLogger("ttp.portal.relay")


class ServiceAnswer(Exception):
    """A service answered with an error; carries the page to show instead."""

    def __init__(self, page: HTMLResponse) -> None:
        super().__init__(page.status_code)
        self.page = page


async def fetch_json(request: Request, person: Person, callee: str, path: str, **kwargs: Any) -> Any:
    """GET ``path`` of ``callee`` on the person's party's behalf and return the JSON body."""
    response = await call(request, person, callee, "GET", path, **kwargs)
    if response.status_code != 200:
        raise ServiceAnswer(error_page(request, response))
    return response.json()


async def call(request: Request, person: Person, callee: str, method: str, path: str,
               **kwargs: Any) -> httpx.Response:
    """Any relayed request; a transport failure becomes a 503 page."""
    try:
        response: httpx.Response = await request.app.state.relay.request(person.oin, callee, method, path, **kwargs)
    except httpx.HTTPError as exc:
        log.warning("service unreachable", extra={"callee": callee, "error": type(exc).__name__})
        raise ServiceAnswer(render(
            request, "problem.html.j2", status=503, title="Dienst niet bereikbaar",
            detail="Een dienst van de TTP antwoordt nu niet. Probeer het over enkele minuten opnieuw.",
        )) from exc
    return response


def error_page(request: Request, response: httpx.Response) -> HTMLResponse:
    """The page for a service's error answer, in the service's own status."""
    problem = problem_of(response)
    status = response.status_code
    if status == 403:
        title, detail = "Geen toegang", "U heeft geen toegang tot deze gegevens. De weigering is vastgelegd."
    elif status == 404:
        title, detail = "Niet gevonden", "Deze gegevens bestaan (nog) niet."
    elif status >= 500:
        title = "Dienst niet beschikbaar"
        detail = "Een dienst van de TTP kon dit nu niet leveren. Probeer het later opnieuw."
    else:
        title, detail = "Niet gelukt", str(problem.get("detail") or "")
    return render(request, "problem.html.j2", status=status if status < 500 else 503, title=title, detail=detail,
                  invalid_params=problem.get("invalidParams") or [])
