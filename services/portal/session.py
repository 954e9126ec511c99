"""Who is signed in, for how long, and the CSRF token of their session.

The session lives in a signed cookie (Starlette's ``SessionMiddleware``: ``Secure``,
``HttpOnly``, ``SameSite=Lax``). It holds only who signed in and for which party, never
outcome data. Every page asks for ``signed_in``, which also enforces the idle timeout;
every form post asks for ``checked_form``, which verifies the CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData

log = logging.getLogger("ttp.portal.session")

#: Roles whose people use the portal; a ``service`` party never signs in.
PEOPLE_ROLES: tuple[str, ...] = ("provider", "gemeente", "rijk", "auditor")


@dataclass(frozen=True)
class Person:
    """The signed-in person and the registered party they act for."""

    sub: str
    name: str
    oin: str
    role: str
    party_name: str
    agb: str | None = None
    gemeente_code: str | None = None


class SignInRequired(Exception):
    """No (or no longer a) valid session: the handler sends the browser to the sign-in page."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Exception):
    """The request may not be served (a bad CSRF token, a page of another role); logged, 403."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def start_session(request: Request, person: Person, id_token: str) -> None:
    """A fresh session for ``person``: whatever the cookie held before (sign-in state) is dropped."""
    request.session.clear()
    now = int(time.time())
    request.session.update(
        {"person": asdict(person), "csrf": secrets.token_urlsafe(32), "since": now, "seen": now,
         "idToken": id_token}
    )


def signed_in(request: Request) -> Person:
    """FastAPI dependency: the signed-in person; ends an idle or too old session."""
    raw: dict[str, Any] | None = request.session.get("person")
    if not raw:
        raise SignInRequired()
    config = request.app.state.config
    now = int(time.time())
    if now - int(request.session.get("seen", 0)) > config.portal.idle_timeout:
        request.session.clear()
        raise SignInRequired("idle")
    if now - int(request.session.get("since", 0)) > config.portal.session_max_age:
        request.session.clear()
        raise SignInRequired("expired")
    request.session["seen"] = now
    person = Person(**raw)
    request.state.person = person
    return person


def csrf_token(request: Request) -> str:
    """The token every form of this session carries (templates put it in a hidden field)."""
    token: str = request.session.get("csrf", "")
    return token


async def checked_form(request: Request) -> FormData:
    """FastAPI dependency for every form post: the form, once its CSRF token matched the session's."""
    form = await request.form()
    given = form.get("csrf_token")
    expected = request.session.get("csrf")
    if not expected or not isinstance(given, str) or not hmac.compare_digest(given, expected):
        raw = request.session.get("person") or {}
        log.warning("csrf-refused", extra={"oin": raw.get("oin", "-"), "path": request.url.path})
        raise Forbidden("Het formulier is verlopen of niet van deze sessie. Laad de pagina opnieuw.")
    return form
