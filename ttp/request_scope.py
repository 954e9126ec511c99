"""What of a request may be written down: its route template and a screened, bounded set of parameters.

A refusal or read entry in the append-only log, and a line in a log file,
must say which endpoint was called without ever holding what the caller
typed into the URL: a path is caller-chosen text of any length, and a BSN,
birth date or postcode put in a path segment or query would otherwise be
kept for good (the log can never be purged). So the log gets

* the *route template* (``/v1/gemeenten/{gemeenteCode}/outcomes``), which
  names the endpoint and is one of a fixed, documented set; ``unmatched``
  when no route matched, and
* at most :data:`MAX_PARAMS` parameters (path first, then query) whose names
  are plain identifiers; a value is kept only when it is short, made of
  identifier characters and carries nothing that looks like a person's data
  (a BSN-shaped number, a date, a 6-position postcode), otherwise it is
  replaced by :data:`SCREENED`. Dates are screened here although ids may
  contain them: the log has no record to tell a start date from a birth date.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from starlette.requests import Request
from starlette.types import Scope

from ttp.bsn import carries_bsn

#: Most parameters one entry keeps; the rest are counted, not named.
MAX_PARAMS: Final = 8
#: Longest parameter value kept (the longest id the API accepts).
MAX_VALUE_LENGTH: Final = 64
#: What stands in for a value that may not be written down.
SCREENED: Final = "[screened]"

_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_VALUE: Final = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_VALUE_LENGTH}}}")
_ISO_DATE: Final = re.compile(r"(?<![0-9])[0-9]{4}-[0-9]{2}-[0-9]{2}(?![0-9])")
_COMPACT_DATE: Final = re.compile(r"(?<![0-9])((?:19|20)[0-9]{2})([0-9]{2})([0-9]{2})(?![0-9])")
_POSTCODE: Final = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{3}[A-Za-z]{2}(?![A-Za-z])")


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched``: never the path itself."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


def _compact_date(text: str) -> bool:
    for year, month, day in _COMPACT_DATE.findall(text):
        try:
            dt.date(int(year), int(month), int(day))
        except ValueError:
            continue
        return True
    return False


def safe_value(value: str) -> bool:
    """May this parameter value be written to a log? Short, plain, and nothing person-shaped in it."""
    return (
        _VALUE.fullmatch(value) is not None
        and not carries_bsn(value)
        and not _ISO_DATE.search(value)
        and not _compact_date(value)
        and not _POSTCODE.search(value)
    )


def screened_params(request: Request) -> dict[str, str]:
    """Path and query parameters as they may be logged: bounded in number and size, screened.

    A parameter whose *name* is not a plain identifier is left out (a name is
    caller-chosen text too); more than :data:`MAX_PARAMS` are left out and
    counted under ``"omitted"``.
    """
    out: dict[str, str] = {}
    omitted = 0
    items = [(str(k), str(v)) for k, v in request.path_params.items()]
    items += list(request.query_params.multi_items())
    for name, value in items:
        if len(out) >= MAX_PARAMS or not _NAME.fullmatch(name) or name in out:
            omitted += 1
            continue
        out[name] = value if safe_value(value) else SCREENED
    if omitted:
        out["omitted"] = str(omitted)
    return out


def loggable_request(request: Request) -> dict[str, object]:
    """The route template and screened parameters of ``request``, for an audit entry or a log line."""
    return {"route": route_template(request.scope), "params": screened_params(request)}
