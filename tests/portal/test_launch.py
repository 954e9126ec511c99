"""What ``ttp up`` adds for the portal: the embedded OpenID provider and the portal as real
processes, and the sign-in help it prints."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.portal.launch import sign_in_help, start_portal
from tests.helpers.cluster import free_port
from ttp.pki import init_pki
from ttp.registry import Registry
from ttp.settings import Settings
from ttp.tls import server_auth_context


@pytest.fixture
def launched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    init_pki(tmp_path / "pki")
    ports = {"TTP_HOME": str(tmp_path), "TTP_PORTAL_PORT": str(free_port()),
             "TTP_PORTAL_DEV_IDP_PORT": str(free_port())}
    for key, value in ports.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    procs = start_portal(settings, env=dict(os.environ))
    try:
        yield settings
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=15)


def test_ttp_up_starts_a_real_openid_provider_and_the_portal_and_says_how_to_sign_in(launched: Settings) -> None:
    ctx = server_auth_context(launched.pki / "ca.pem")
    idp = f"https://localhost:{os.environ['TTP_PORTAL_DEV_IDP_PORT']}"
    discovery = httpx.get(f"{idp}/.well-known/openid-configuration", verify=ctx, timeout=10).json()
    assert discovery["issuer"] == idp
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in discovery["grant_types_supported"]
    portal = httpx.get(f"https://127.0.0.1:{launched.portal_port}/", verify=ctx, timeout=10)
    assert portal.status_code == 200 and "Inloggen" in portal.text
    help_text = sign_in_help(launched)
    assert f"https://localhost:{launched.portal_port}" in help_text
    # people sign in; services and the monitoring operator are machines with certificates only
    people = [p for p in Registry.from_yaml(launched.registry).all() if p.role not in ("service", "operator")]
    for party in people:
        assert party.slug in help_text  # one account per sample party
    assert not any(p.slug in help_text for p in Registry.from_yaml(launched.registry).all() if p.role == "service")
