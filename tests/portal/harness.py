"""The portal under test: real services (``Cluster``), the real embedded OpenID provider (node
``oidc-provider``), the portal served over HTTPS in a thread, and headless Chromium.

The portal calls the services as in production: with its own certificate and
``Ttp-On-Behalf-Of`` naming the signed-in party (``services.portal.relay.PooledClients``), and
the services admit the relay only from the portal and apply the party's rules.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from services.portal import dev_idp
from services.portal.app import create_app
from services.portal.settings import PortalConfig, PortalSettings
from tests.helpers.cluster import START_ORDER, Cluster, free_port
from ttp.pki import PORTAL
from ttp.registry import Registry
from ttp.tls import browser_server_context, server_auth_context

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class ThreadServer:
    """An ASGI app under uvicorn over HTTPS (browser TLS: no client certificate) in a thread."""

    def __init__(self, app: FastAPI, port: int, pki: Path) -> None:
        def ssl_factory(_c: uvicorn.Config, _d: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
            return browser_server_context(pki, PORTAL)

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ssl_context_factory=ssl_factory,
                                                    log_config=None, access_log=False, loop="asyncio"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("portal did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class PortalStack:
    """Cluster + OpenID provider + one or more portals, and the accounts to sign in with."""

    def __init__(self, home: Path) -> None:
        # Calls between the services get more time than in production: seven engineers share two cores,
        # and report's first read of a period makes aggregate compute the national reference.
        self.cluster = Cluster(home, extra_env={"TTP_UPSTREAM_TIMEOUT": "150"})
        self.settings = self.cluster.settings
        self.idp_port = free_port()
        self.portals: list[ThreadServer] = []
        self.idp: Any = None

    def portal_settings(self, port: int, **overrides: Any) -> PortalSettings:
        return PortalSettings(public_url=f"https://localhost:{port}", dev_idp_port=self.idp_port, **overrides)

    def start(self, portal_ports: list[int]) -> None:
        try:
            self.cluster.start()
        except RuntimeError:
            # Seven engineers share two cores: a service may take longer than the cluster's own minute
            # to import and migrate. Wait longer; a service that exited still fails here.
            for service in START_ORDER:
                self.cluster.wait_healthy(service, timeout=300)
        config = PortalConfig(self.settings, self.portal_settings(portal_ports[0]))
        path = dev_idp.write_config(config)
        doc = json.loads(path.read_text())
        # Every portal of this stack is a redirect target of the one client.
        doc["clients"][0]["redirect_uris"] = [f"https://localhost:{p}/inloggen/terug" for p in portal_ports]
        doc["clients"][0]["post_logout_redirect_uris"] = [f"https://localhost:{p}/uitgelogd" for p in portal_ports]
        doc["accounts"] += [
            {"username": "onbekend", "password": "onbekend-wachtwoord", "sub": "dev-onbekend",
             "name": "Iemand Onbekend", "oin": "00000099990000000001", "organisation": "Niet aangemeld"},
            {"username": "dienst", "password": "dienst-wachtwoord", "sub": "dev-dienst", "name": "Een Dienst",
             "oin": Registry.from_yaml(self.settings.registry).all()[-1].oin, "organisation": "TTP-dienst"},
        ]
        path.write_text(json.dumps(doc))
        log = self.settings.log_dir / "dev-idp.stderr"
        with log.open("ab") as out:
            import subprocess

            self.idp = subprocess.Popen(dev_idp.node_command(path), cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        ctx = server_auth_context(self.settings.pki / "ca.pem")
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"https://localhost:{self.idp_port}/.well-known/openid-configuration",
                             verify=ctx, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.idp.poll() is not None:
                raise RuntimeError("dev IdP did not start:\n" + log.read_text(errors="replace")[-2000:])
            time.sleep(0.1)

    def add_portal(self, port: int, **overrides: Any) -> str:
        app = create_app(self.settings, self.portal_settings(port, **overrides))
        server = ThreadServer(app, port, self.settings.pki)
        server.start()
        self.portals.append(server)
        return f"https://localhost:{port}"

    def password(self, username: str) -> str:
        doc = json.loads((self.settings.home / "portal" / "dev-idp.json").read_text())
        return next(str(a["password"]) for a in doc["accounts"] if a["username"] == username)

    def stop(self) -> None:
        for server in self.portals:
            server.stop()
        if self.idp is not None:
            self.idp.terminate()
            self.idp.wait(timeout=10)
        self.cluster.destroy()
