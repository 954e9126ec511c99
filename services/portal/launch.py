"""Start the portal (and, unless an external OpenID provider is configured, the embedded one)
as child processes of ``ttp up``, and say how to sign in."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from services.portal import dev_idp
from services.portal.settings import PortalConfig, PortalSettings
from ttp.pki import PORTAL, server_paths
from ttp.settings import Settings
from ttp.tls import server_auth_context


def _wait(url: str, config: PortalConfig, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    ctx = server_auth_context(config.settings.pki / "ca.pem")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}; see {config.settings.log_dir}")
        try:
            if httpx.get(url, verify=ctx, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s; see {config.settings.log_dir}")


def start_portal(settings: Settings, env: dict[str, str] | None = None) -> dict[str, subprocess.Popen[bytes]]:
    """The embedded OpenID provider (when no issuer is configured) and the portal, once both answer."""
    config = PortalConfig(settings, PortalSettings())
    if not server_paths(settings.pki, PORTAL)[0].exists():
        raise RuntimeError(f"{settings.pki} predates the portal: recreate it with `ttp pki init --force`.")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    if not config.portal.oidc_issuer:
        procs["dev-idp"] = dev_idp.start(config, settings.log_dir / "dev-idp.stderr")
        _wait(f"{config.issuer}/.well-known/openid-configuration", config, procs["dev-idp"])
    with (settings.log_dir / "portal.stderr").open("ab") as out:
        procs["portal"] = subprocess.Popen([sys.executable, "-m", "services.portal"],
                                           env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    _wait(f"https://{settings.host}:{settings.portal_port}/v1/health", config, procs["portal"])
    return procs


def sign_in_help(settings: Settings) -> str:
    """What ``ttp up`` prints: the portal's URL and, for the embedded provider, its accounts."""
    config = PortalConfig(settings, PortalSettings())
    lines = [f"Portal: {config.public_url}  (HTTPS with the dev CA {settings.pki / 'ca.pem'}; "
             "import it in your browser or accept the warning)"]
    if not config.portal.oidc_issuer:
        lines.append(f"Sign in at the embedded OpenID provider ({config.issuer}) with one of:")
        lines += [f"  {a['username']:<20} {a['password']:<18} {a['organisation']}" for a in dev_idp.accounts(config)]
    return "\n".join(lines)
