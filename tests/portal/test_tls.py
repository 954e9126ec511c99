"""The portal's TLS: HTTPS for browsers without a client certificate, hardened like the API ports."""

from __future__ import annotations

import ssl

import httpx
import pytest

from tests.portal.harness import PortalStack
from ttp.pki import PORTAL
from ttp.tls import browser_server_context, server_auth_context


def test_a_browser_without_a_client_certificate_reaches_the_portal_but_not_an_api(stack: PortalStack) -> None:
    ctx = server_auth_context(stack.settings.pki / "ca.pem")  # verifies the server; presents no certificate
    assert httpx.get(stack.main_url + "/v1/health", verify=ctx, timeout=10).status_code == 200  # type: ignore[attr-defined]
    # Negative control: the same client at an API service's port is refused in the handshake.
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(f"{stack.cluster.base_url('aggregate')}/health", verify=ctx, timeout=10)


def test_the_portal_listener_asks_no_certificate_and_keeps_the_tls_hardening(stack: PortalStack) -> None:
    ctx = browser_server_context(stack.settings.pki, PORTAL)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION and ctx.options & ssl.OP_NO_RENEGOTIATION


def test_pages_carry_the_security_headers_and_are_not_cached(stack: PortalStack) -> None:
    ctx = server_auth_context(stack.settings.pki / "ca.pem")
    r = httpx.get(stack.main_url + "/", verify=ctx, timeout=10)  # type: ignore[attr-defined]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["strict-transport-security"].startswith("max-age=")
