"""Signing in and out of the portal in a real browser, at the real embedded OpenID provider."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.portal.conftest import sign_in
from tests.portal.harness import PortalStack


def test_a_provider_signs_in_with_its_account_and_sees_its_own_name(stack: PortalStack, page: Page) -> None:
    base = stack.main_url  # type: ignore[attr-defined]
    sign_in(page, base, "provider-98000001", stack.password("provider-98000001"))
    expect(page).to_have_url(re.compile(r"/aanbieder$"))
    expect(page.get_by_role("banner")).to_contain_text("Jeugdzorg De Horizon")
    expect(page.get_by_role("heading", level=1)).to_have_text("Aanleveren")


def test_the_session_cookie_is_secure_httponly_and_samesite(stack: PortalStack, page: Page,
                                                            context: BrowserContext) -> None:
    sign_in(page, stack.main_url, "gemeente-GM0363", stack.password("gemeente-GM0363"))  # type: ignore[attr-defined]
    cookie = next(c for c in context.cookies() if c["name"] == "ttp_portaal")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def test_a_wrong_password_does_not_sign_in(stack: PortalStack, page: Page) -> None:
    sign_in(page, stack.main_url, "provider-98000001", "niet-het-wachtwoord")  # type: ignore[attr-defined]
    expect(page.get_by_role("alert")).to_contain_text("Onjuiste gebruikersnaam of wachtwoord")
    page.goto(stack.main_url + "/aanbieder")  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1)).to_have_text("Inloggen")


def test_an_organisation_not_in_the_registry_is_not_let_in(stack: PortalStack, page: Page) -> None:
    sign_in(page, stack.main_url, "onbekend", "onbekend-wachtwoord")  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1)).to_have_text("Geen toegang")
    expect(page.get_by_role("alert")).to_contain_text("niet aangemeld")


def test_a_registered_service_party_cannot_sign_in_as_a_person(stack: PortalStack, page: Page) -> None:
    sign_in(page, stack.main_url, "dienst", "dienst-wachtwoord")  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1)).to_have_text("Geen toegang")


def test_signing_out_ends_the_portal_session_and_the_providers(stack: PortalStack, page: Page) -> None:
    base = stack.main_url  # type: ignore[attr-defined]
    sign_in(page, base, "auditor", stack.password("auditor"))
    page.goto(base + "/aanbieder")  # any page with the header
    page.get_by_role("button", name="Uitloggen").click()
    page.get_by_role("button", name="Uitloggen").click()  # the provider's own confirmation
    expect(page.get_by_role("heading", level=1)).to_have_text("U bent uitgelogd")
    page.goto(base + "/auditor")
    expect(page.get_by_role("heading", level=1)).to_have_text("Inloggen")
    # The provider's session is gone too: signing in asks for the password again.
    page.get_by_role("link", name="Inloggen").click()
    expect(page.get_by_label("Wachtwoord")).to_be_visible()


def test_a_form_post_without_the_sessions_csrf_token_is_refused(stack: PortalStack, page: Page) -> None:
    base = stack.main_url  # type: ignore[attr-defined]
    sign_in(page, base, "provider-98000001", stack.password("provider-98000001"))
    forged = page.request.post(base + "/uitloggen", form={"csrf_token": "geraden"}, max_redirects=0)
    assert forged.status == 403
    page.goto(base + "/aanbieder")
    expect(page.get_by_role("banner")).to_contain_text("Jeugdzorg De Horizon")  # still signed in
    # Negative control: the same post with the page's own token does sign out.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    genuine = page.request.post(base + "/uitloggen", form={"csrf_token": token or ""}, max_redirects=0)
    assert genuine.status == 303


def test_an_idle_session_ends(stack: PortalStack, page: Page) -> None:
    base = stack.add_portal(stack.spare_port, idle_timeout=2)  # type: ignore[attr-defined]
    sign_in(page, base, "rijk", stack.password("rijk"))
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/rijk"))
    page.wait_for_timeout(3500)
    page.goto(base + "/rijk")
    expect(page.get_by_role("status")).to_contain_text("Uw sessie is verlopen")
