"""One portal stack for the portal tests (see ``harness``), a browser, and page helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.helpers.cluster import free_port
from tests.portal.harness import AXE, CHROMIUM, CHROMIUM_ARGS, PortalStack

#: Screenshots and other artefacts of the browser tests (the suite's output directory).
OUTPUT = Path(__file__).resolve().parents[2] / "var" / "test-output" / "portal"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalStack]:
    s = PortalStack(tmp_path_factory.mktemp("portal"))
    ports = [free_port(), free_port()]
    try:
        s.start(ports)
        s.main_url = s.add_portal(ports[0])  # type: ignore[attr-defined]
        s.spare_port = ports[1]  # type: ignore[attr-defined]
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module, not session: Playwright's sync API keeps an asyncio loop running in this thread
    # while it is open, and every later test of the same worker that calls asyncio.run fails.
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # The dev CA is not in Chromium's trust store (the portal's TLS is tested in test_tls); bypass_csp lets
    # axe-core be injected as an inline script, which the portal's CSP rightly forbids.
    ctx = browser.new_context(ignore_https_errors=True, bypass_csp=True, locale="nl-NL",
                              viewport={"width": 1280, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    """What a person does: open the portal, choose Inloggen, fill in the provider's form."""
    page.goto(base + "/")
    page.get_by_role("link", name="Inloggen").click()
    page.get_by_label("Gebruikersnaam").fill(username)
    page.get_by_label("Wachtwoord").fill(password)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_load_state()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
    result: dict[str, Any] = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", tags
    )
    return [{"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"]]


def screenshot(page: Page, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path))
    return path
