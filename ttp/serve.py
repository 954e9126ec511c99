"""Run one TTP service under uvicorn, TLS only, client certificate required.

There is no plaintext listener: the socket is wrapped by a hardened SSL
context (``ttp.tls.server_context``), and requests carry the verified client
certificate through the ASGI TLS extension (``ttp.tls_protocol``).
"""

from __future__ import annotations

import importlib
import ssl
from collections.abc import Callable

import uvicorn

from ttp.gc_policy import configure_gc
from ttp.logging_setup import configure_logging
from ttp.settings import SERVICES, Settings, get_settings
from ttp.tls import server_context
from ttp.tls_protocol import TLSHttpToolsProtocol


def uvicorn_config(service: str, settings: Settings | None = None, *, workers: int = 1) -> uvicorn.Config:
    """The uvicorn configuration for ``service``."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    settings = settings or get_settings()

    def ssl_factory(_config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return server_context(settings.pki, service)

    return uvicorn.Config(
        f"services.{service}.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port(service),
        http=TLSHttpToolsProtocol,
        loop="uvloop",
        ssl_context_factory=ssl_factory,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
        workers=workers,
    )


def serve(service: str) -> None:
    """Blocking: configure JSON logging and serve ``service`` until stopped."""
    settings = get_settings()
    configure_logging(service, settings.log_level, settings.log_file(service),
                      max_bytes=settings.log_max_bytes, backups=settings.log_backups)
    importlib.import_module(f"services.{service}.app")  # so the frozen generation holds the service's modules
    configure_gc()
    uvicorn.Server(uvicorn_config(service, settings)).run()
