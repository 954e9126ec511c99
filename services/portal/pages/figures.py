"""Gemeente and Rijk pages: the outcome figures of a feed, as a table a person can sort and filter.

Figures come from aggregate's feeds as served to the party itself (disclosure control
applied there); the portal only chooses which cells to show and says what a hidden cell
means. A suppressed cell shows "afgeschermd", never a number.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.portal.pages.relayed import ServiceAnswer, fetch_json
from services.portal.pages.render import chosen_period, is_voorlopig, period_choices, render
from services.portal.session import Forbidden, Person, signed_in
from services.report.labels import CODE_LABELS, SPECS, STATUS_LABELS
from ttp.outcomes import INDICATORS

router = APIRouter()

#: The views of a feed a person picks from: which breakdown keys a row has (besides the scope's own).
VIEWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "totaal": ("Totaal", ()),
    "postcode": ("Per postcode (4 cijfers)", ("pc4",)),
    "soort-hulp": ("Per soort hulp", ("freelyAccessible", "sector", "hulpvorm")),
    "leeftijd": ("Per leeftijd bij einde", ("ageBand",)),
    "gemeente": ("Per gemeente", ("gemeente",)),
}
SORTS = ("indeling", "n", "waarde")
DIMENSION_LABELS = {"pc4": "Postcode", "freelyAccessible": "Toegang", "sector": "Sector", "hulpvorm": "Hulpvorm",
                    "ageBand": "Leeftijd", "gemeente": "Gemeente", "informant": "Informant"}


def _label(key: str, value: str) -> str:
    return CODE_LABELS.get(key, {}).get(value, value)


def format_value(indicator: str, value: float | None) -> str:
    """A share as a Dutch percentage, a mean with a decimal comma."""
    if value is None:
        return ""
    spec = SPECS.get(indicator)
    if spec is not None and spec.value_kind == "share":
        return f"{value * 100:.1f}%".replace(".", ",")
    return f"{value:.1f}".replace(".", ",")


def rows_of(table: dict[str, Any], indicator: str, view: str, scope_keys: tuple[str, ...],
            sort: str) -> list[dict[str, Any]]:
    """The table rows of one indicator in one view: cells whose breakdown has exactly the view's keys.

    ``scope_keys`` are breakdown keys every cell of this feed carries (a gemeente feed's own
    ``gemeente``) or that the view may add (``informant`` for the per-informant indicators).
    """
    wanted = set(VIEWS[view][1])
    rows: list[dict[str, Any]] = []
    for cell in table.get("cells", []):
        if cell.get("indicator") != indicator:
            continue
        keys = set(cell.get("breakdown", {})) - set(scope_keys) - {"informant"}
        if keys != wanted:
            continue
        breakdown = cell.get("breakdown", {})
        rows.append({
            "indeling": " · ".join(_label(k, breakdown[k]) for k in VIEWS[view][1] if k in breakdown)
            or "Alle trajecten",
            "informant": _label("informant", breakdown["informant"]) if "informant" in breakdown else "",
            "variant": cell.get("variant") or "",
            "n": cell.get("n"),
            "responses": cell.get("responses"),
            "value": cell.get("value"),
            "shown": format_value(indicator, cell.get("value")) if cell.get("status") == "ok" else "",
            "status": STATUS_LABELS.get(cell.get("status", ""), cell.get("status", "")),
        })
    if sort == "n":
        rows.sort(key=lambda r: (r["n"] is None, -(r["n"] or 0)))
    elif sort == "waarde":
        rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0.0)))
    else:
        rows.sort(key=lambda r: (r["indeling"], r["informant"], r["variant"]))
    return rows


def _figures_page(request: Request, table: dict[str, Any], *, heading: str, views: tuple[str, ...],
                  scope_keys: tuple[str, ...]) -> Response:
    q = request.query_params
    indicator = q.get("indicator") if q.get("indicator") in INDICATORS else INDICATORS[0]
    view = q.get("indeling") if q.get("indeling") in views else views[0]
    sort = q.get("sorteer") if q.get("sorteer") in SORTS else "indeling"
    rows = rows_of(table, str(indicator), str(view), scope_keys, str(sort))
    return render(
        request, "figures.html.j2", heading=heading, table=table, rows=rows, period=table["period"],
        voorlopig=is_voorlopig(table["period"]), periods=period_choices(), indicators=INDICATORS, specs=SPECS,
        indicator=indicator, views={v: VIEWS[v][0] for v in views}, view=view, sort=sort,
    )


def role(*roles: str) -> Any:
    def dependency(person: Person = Depends(signed_in)) -> Person:
        if person.role not in roles:
            raise Forbidden("Deze pagina hoort bij een andere rol.")
        return person
    return dependency


@router.get("/gemeente", include_in_schema=False)
async def gemeente_home(request: Request, person: Person = Depends(role("gemeente"))) -> Response:
    """The advisor's own gemeente; the figures page's URL names it, and aggregate checks it."""
    return await gemeente_figures(str(person.gemeente_code), request, person)


@router.get("/gemeenten/{gemeente_code}/cijfers", include_in_schema=False)
async def gemeente_figures(gemeente_code: str, request: Request,
                           person: Person = Depends(signed_in)) -> Response:
    """Any gemeente code may be typed in; aggregate refuses (403, logged) another gemeente's."""
    period = chosen_period(request)
    try:
        table = await fetch_json(request, person, "aggregate", f"/gemeenten/{gemeente_code}/outcomes",
                                 params={"period": period})
    except ServiceAnswer as answer:
        return answer.page
    return _figures_page(request, table, heading=f"Uitkomsten van inwoners van {person.party_name}",
                         views=("totaal", "postcode", "soort-hulp", "leeftijd"), scope_keys=("gemeente",))


@router.get("/rijk", include_in_schema=False)
async def rijk_figures(request: Request, person: Person = Depends(role("rijk"))) -> Response:
    period = chosen_period(request)
    try:
        table = await fetch_json(request, person, "aggregate", "/rijk/outcomes", params={"period": period})
    except ServiceAnswer as answer:
        return answer.page
    return _figures_page(request, table, heading="Uitkomsten per gemeente en landelijk",
                         views=("totaal", "gemeente", "soort-hulp", "leeftijd"), scope_keys=())
