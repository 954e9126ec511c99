"""Run the portal under uvicorn: HTTPS for browsers, no client certificate asked of them.

The API services require a client certificate on every port (``ttp.serve``); the portal's
people sign in with OpenID Connect instead, so its listener uses
``ttp.tls.browser_server_context`` (``CERT_NONE``, same hardening). Its own calls to the
services are mTLS with the portal's certificate (``services.portal.relay``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import uvicorn

from ttp.logging_setup import configure_logging
from ttp.pki import PORTAL
from ttp.settings import Settings, get_settings
from ttp.tls import browser_server_context


def uvicorn_config(settings: Settings | None = None) -> uvicorn.Config:
    settings = settings or get_settings()

    def ssl_factory(_config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return browser_server_context(settings.pki, PORTAL)

    return uvicorn.Config(
        "services.portal.app:create_app", factory=True, host=settings.host, port=settings.portal_port,
        loop="uvloop", ssl_context_factory=ssl_factory, log_config=None, access_log=False,
        server_header=False, proxy_headers=False, timeout_graceful_shutdown=5,
    )


def serve() -> None:
    """Blocking: JSON logs, then serve the portal until stopped."""
    settings = get_settings()
    configure_logging(PORTAL, settings.log_level, settings.log_dir / f"{PORTAL}.log")
    uvicorn.Server(uvicorn_config(settings)).run()
