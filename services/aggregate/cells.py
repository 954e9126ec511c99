"""Population cells: the populations every outcome figure is computed for.

A cell is a set of ended trajectories described along four hierarchical
dimensions; its key holds, per dimension, the path from the top down to the
level the cell is at (an empty path means "all"):

* geo: ``()`` national, ``(gemeente,)``, ``(gemeente, pc4)``. A PC4 is always
  taken *within* a gemeente, because PC4 areas cross municipal borders: no
  output ever shows a PC4 total across gemeenten, which would let one
  gemeente subtract its own part and read its neighbour's small cell.
* care: ``()``, ``(freelyAccessible,)``, ``(freelyAccessible, sector)``,
  ``(freelyAccessible, sector, hulpvorm)``. Free versus individual access comes
  first because that is the line the Jeugdwet (and a gemeente's budget) draws.
* age: ``()`` or ``(band,)``.
* prov: ``()`` or ``(agb,)``.

A *view* is a level signature, e.g. ``(2, 1, 0, 0)`` is "per PC4 per access
type". Each output is a list of views; the third-party ones are chosen so that
together they form four linked two-way tables (see ``tables.py``), which is
what makes exact disclosure auditing possible.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ttp.periods import AGE_BANDS

CellKey = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
View = tuple[int, int, int, int]

GEO, CARE, AGE, PROV = 0, 1, 2, 3

#: Code lists of the CBS Informatieprotocol: the public domain of the care dimension.
ACCESS: Final = ("false", "true")
SECTORS: Final = ("jeugdhulp", "jeugdbescherming", "jeugdreclassering")
HULPVORMEN: Final = ("01", "02", "03", "04", "11", "12", "13", "14")
BANDS: Final = tuple(label for label, _, _ in AGE_BANDS)

#: Every finest care type, in a fixed order.
CARE_LEAVES: Final[tuple[tuple[str, str, str], ...]] = tuple(
    (f, s, h) for f in ACCESS for s in SECTORS for h in HULPVORMEN
)

NATIONAL_VIEWS: Final[tuple[View, ...]] = (
    (0, 0, 0, 0), (0, 1, 0, 0), (0, 2, 0, 0), (0, 3, 0, 0), (0, 0, 1, 0),
)
#: A gemeente's own residents: in total, per care type, per age band, per PC4 (and access).
GEMEENTE_VIEWS: Final[tuple[View, ...]] = (
    (1, 0, 0, 0), (1, 1, 0, 0), (1, 2, 0, 0), (1, 3, 0, 0), (1, 0, 1, 0), (2, 0, 0, 0), (2, 1, 0, 0),
)
#: The Rijk: national totals and per gemeente (no PC4, no hulpvorm per gemeente).
RIJK_VIEWS: Final[tuple[View, ...]] = (
    *NATIONAL_VIEWS, (1, 0, 0, 0), (1, 1, 0, 0), (1, 2, 0, 0), (1, 0, 1, 0),
)
#: A provider's shareable report: its total and per care type.
DEELBAAR_VIEWS: Final[tuple[View, ...]] = ((0, 0, 0, 1), (0, 1, 0, 1), (0, 2, 0, 1), (0, 3, 0, 1))
#: A provider's internal report adds what would link its figures to the gemeente feeds.
INTERN_VIEWS: Final[tuple[View, ...]] = (*DEELBAAR_VIEWS, (0, 0, 1, 1), (1, 0, 0, 1))

#: Every view a third party can see: disclosure control covers their union.
THIRD_PARTY_VIEWS: Final[frozenset[View]] = frozenset(
    NATIONAL_VIEWS + GEMEENTE_VIEWS + RIJK_VIEWS + DEELBAAR_VIEWS
)
ALL_VIEWS: Final[tuple[View, ...]] = tuple(
    sorted(THIRD_PARTY_VIEWS | frozenset(INTERN_VIEWS))
)

VIEW_NAMES: Final[dict[View, str]] = {
    (0, 0, 0, 0): "n", (0, 1, 0, 0): "n.f", (0, 2, 0, 0): "n.fs", (0, 3, 0, 0): "n.fsh",
    (0, 0, 1, 0): "n.a", (1, 0, 0, 0): "g", (1, 1, 0, 0): "g.f", (1, 2, 0, 0): "g.fs",
    (1, 3, 0, 0): "g.fsh", (1, 0, 1, 0): "g.a", (2, 0, 0, 0): "p", (2, 1, 0, 0): "p.f",
    (0, 0, 0, 1): "v", (0, 1, 0, 1): "v.f", (0, 2, 0, 1): "v.fs", (0, 3, 0, 1): "v.fsh",
    (0, 0, 1, 1): "v.a", (1, 0, 0, 1): "v.g",
}

_CARE_NAMES: Final = ("freelyAccessible", "sector", "hulpvorm")
_PREFIX: Final = (("g", "p"), ("f", "s", "h"), ("a",), ("v",))


def view_of(key: CellKey) -> View:
    """The level signature of a key."""
    geo, care, age, prov = key
    return (len(geo), len(care), len(age), len(prov))


def key_string(key: CellKey) -> str:
    """A stable, readable text form: ``g=GM0363;p=1012;f=false``; ``*`` for the national total."""
    parts = [f"{_PREFIX[d][i]}={v}" for d in range(4) for i, v in enumerate(key[d])]
    return ";".join(parts) or "*"


def parse_key(text: str) -> CellKey:
    """Inverse of :func:`key_string`."""
    dims: list[list[str]] = [[], [], [], []]
    if text != "*":
        for part in text.split(";"):
            tag, value = part.split("=", 1)
            for d, tags in enumerate(_PREFIX):
                if tag in tags:
                    dims[d].append(value)
                    break
            else:
                raise ValueError(f"unknown key part {tag!r}")
    return (tuple(dims[0]), tuple(dims[1]), tuple(dims[2]), tuple(dims[3]))


def breakdown_of(key: CellKey, *, scope_dims: Iterable[int] = ()) -> dict[str, str]:
    """The ``Cell.breakdown`` of a key, leaving out what the output's scope already fixes."""
    skip = set(scope_dims)
    out: dict[str, str] = {}
    geo, care, age, prov = key
    if GEO not in skip and geo:
        out["gemeente"] = geo[0]
    if len(geo) > 1:
        out["pc4"] = geo[1]
    for name, value in zip(_CARE_NAMES, care, strict=False):
        out[name] = value
    if age:
        out["ageBand"] = age[0]
    if PROV not in skip and prov:
        out["provider"] = prov[0]
    return out


def key_from_breakdown(breakdown: dict[str, str], *, gemeente: str | None = None,
                       provider: str | None = None) -> CellKey:
    """The key of a published cell, given the gemeente or provider its output is scoped to."""
    g = breakdown.get("gemeente", gemeente)
    geo: tuple[str, ...] = ()
    if g is not None:
        geo = (g, breakdown["pc4"]) if "pc4" in breakdown else (g,)
    care: tuple[str, ...] = ()
    for name in _CARE_NAMES:
        if name not in breakdown:
            break
        care += (breakdown[name],)
    age = (breakdown["ageBand"],) if "ageBand" in breakdown else ()
    v = breakdown.get("provider", provider)
    prov = (v,) if v is not None else ()
    return (geo, care, age, prov)


def care_nodes(level: int) -> list[tuple[str, ...]]:
    """Every care path at a level (0: the root only), in code-list order."""
    seen: dict[tuple[str, ...], None] = {}
    for leaf in CARE_LEAVES:
        seen.setdefault(leaf[:level], None)
    return list(seen)


def grid(view: View, gemeenten: Iterable[str], pc4s: dict[str, list[str]],
         providers: Iterable[str]) -> list[CellKey]:
    """Every cell of a view over the given domains, zero cells included.

    Outputs list whole grids because leaving zero cells out would tell a reader
    that every listed hidden cell holds at least one trajectory.
    """
    g_level, c_level, a_level, p_level = view
    if g_level == 0:
        geos: list[tuple[str, ...]] = [()]
    elif g_level == 1:
        geos = [(g,) for g in gemeenten]
    else:
        geos = [(g, p) for g in gemeenten for p in pc4s.get(g, [])]
    cares = care_nodes(c_level)
    ages: list[tuple[str, ...]] = [()] if a_level == 0 else [(b,) for b in BANDS]
    provs: list[tuple[str, ...]] = [()] if p_level == 0 else [(v,) for v in providers]
    return [(g, c, a, p) for g in geos for c in cares for a in ages for p in provs]
