"""Sign-in and sign-out by OpenID Connect: authorization code flow with PKCE (S256), via Authlib.

The organisation identifier (OIN) in the token maps to a registered party; a person whose
organisation is not registered, or is registered in a role that does not use the portal,
is not let in (and that is logged). In production the provider is an eHerkenning broker or
the organisation's own IdP; in development the one ``ttp up`` starts (``dev_idp``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from services.portal.pages.render import render
from services.portal.session import PEOPLE_ROLES, Forbidden, Person, checked_form, start_session
from services.portal.settings import PortalConfig
from ttp.registry import Registry
from ttp.tls import server_auth_context

log = logging.getLogger("ttp.portal.signin")
router = APIRouter()

SCOPES = "openid profile organisation"


def make_oauth(config: PortalConfig) -> OAuth:
    """The Authlib client of the configured provider (discovery document, PKCE S256)."""
    oauth = OAuth()
    oauth.register(
        "idp",
        client_id=config.portal.oidc_client_id,
        client_secret=config.client_secret(),
        server_metadata_url=f"{config.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPES, "code_challenge_method": "S256",
                       "verify": server_auth_context(config.oidc_ca_file), "timeout": 10.0},
    )
    return oauth


@router.get("/inloggen", include_in_schema=False)
async def sign_in(request: Request) -> Response:
    """Send the browser to the provider; Authlib keeps state, nonce and code verifier in the session."""
    config: PortalConfig = request.app.state.config
    client = request.app.state.oauth.idp
    return await client.authorize_redirect(request, f"{config.public_url}/inloggen/terug")  # type: ignore[no-any-return]


@router.get("/inloggen/terug", include_in_schema=False)
async def sign_in_callback(request: Request) -> Response:
    """Exchange the code, read the OIN claim, map it to a registered party, start the session."""
    client = request.app.state.oauth.idp
    try:
        token: dict[str, Any] = await client.authorize_access_token(request)
        claims: dict[str, Any] = dict(token.get("userinfo") or {})
        info = await client.userinfo(token=token)
    except OAuthError as exc:
        log.warning("sign-in failed", extra={"error": exc.error})
        return render(request, "problem.html.j2", status=400, title="Inloggen mislukt",
                      detail="De inlogdienst gaf geen geldige aanmelding terug. Probeer het opnieuw.")
    if info.get("sub") != claims.get("sub"):
        # OpenID Connect Core 5.3.2: userinfo of another subject than the ID token must not be used.
        log.warning("sign-in failed", extra={"error": "userinfo-sub-mismatch"})
        return render(request, "problem.html.j2", status=400, title="Inloggen mislukt",
                      detail="De inlogdienst gaf tegenstrijdige gegevens terug.")
    claims.update(info)
    config: PortalConfig = request.app.state.config
    oin = str(claims.get(config.portal.oin_claim) or "")
    registry: Registry = request.app.state.registry
    party = registry.by_oin(oin) if oin else None
    if party is None or party.role not in PEOPLE_ROLES:
        log.warning("sign-in refused", extra={"oin": oin or "-", "reason": "not a registered party of a person role"})
        request.session.clear()
        return render(request, "problem.html.j2", status=403, title="Geen toegang",
                      detail="Uw organisatie is niet aangemeld bij de TTP voor dit portaal.")
    person = Person(sub=str(claims["sub"]), name=str(claims.get("name") or claims["sub"]), oin=party.oin,
                    role=party.role, party_name=party.name, agb=party.agb, gemeente_code=party.gemeente_code)
    start_session(request, person, str(token.get("id_token", "")))
    log.info("signed in", extra={"oin": party.oin, "role": party.role})
    return RedirectResponse("/", status_code=303)


@router.post("/uitloggen", include_in_schema=False)
async def sign_out(request: Request, _form: FormData = Depends(checked_form)) -> Response:
    """End the portal session, then the provider's (RP-initiated logout) when it offers that."""
    config: PortalConfig = request.app.state.config
    id_token = request.session.get("idToken", "")
    request.session.clear()
    target = f"{config.public_url}/uitgelogd"
    try:
        metadata = await request.app.state.oauth.idp.load_server_metadata()
    except Exception:  # the provider being down must not keep anyone signed in here
        metadata = {}
    end_session = metadata.get("end_session_endpoint")
    if end_session and id_token:
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": target,
                           "client_id": config.portal.oidc_client_id})
        target = f"{end_session}?{query}"
    return RedirectResponse(target, status_code=303)


@router.get("/uitgelogd", include_in_schema=False)
async def signed_out(request: Request) -> Response:
    return render(request, "signed_out.html.j2")


__all__ = ["Forbidden", "make_oauth", "router"]
