"""Export each service's OpenAPI document to ``openapi/<service>.json``, or check it.

The documents are the contract with providers, gemeenten, the Rijk and
auditors, so they are committed and reviewed like code. They are produced by
the apps themselves (``app.openapi()``, shaped by ``ttp.openapi_nl``), never
written by hand, and a test fails when a committed document differs from what
the code produces: a route change without a re-export cannot land unnoticed.

Building an app needs no running dependency, but some services read key
material when they are created (pseudonymise refuses to start without an
HMAC key), so the apps are built against a throw-away home directory with a
fresh dev PKI and key. Nothing of it ends up in a document.
"""

from __future__ import annotations

import difflib
import importlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ttp.settings import SERVICES, Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
API_PREFIX = "/v1"
OPENAPI_DIR = REPO_ROOT / "openapi"
SERVICES_DIR = REPO_ROOT / "services"


def document_path(service: str, out_dir: Path = OPENAPI_DIR) -> Path:
    """Where the committed document of ``service`` lives."""
    return out_dir / f"{service}.json"


def services_with_app() -> list[str]:
    """The services whose app module exists, in the canonical order.

    A service is listed as soon as ``services/<name>/app.py`` exists; if that
    module then fails to import, the export fails loudly instead of skipping it.
    """
    return [s for s in SERVICES if (SERVICES_DIR / s / "app.py").is_file()]


def render(doc: dict[str, Any]) -> str:
    """The committed text of a document: stable, readable, diff-friendly JSON."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


@contextmanager
def scratch_settings() -> Iterator[Settings]:
    """Settings on a throw-away home with a fresh dev PKI and HMAC key, enough to build any app."""
    from ttp.pki import ensure_hmac_key, init_pki

    with tempfile.TemporaryDirectory(prefix="ttp-openapi-") as tmp:
        home = Path(tmp)
        init_pki(home / "pki")
        ensure_hmac_key(home / "keys")
        # Explicit values, so that TTP_* variables of the caller's shell cannot change a document.
        yield Settings(home=home, host="127.0.0.1", trusted_proxy_mode=False)


def create_service_app(name: str, settings: Settings) -> FastAPI:
    """Build (not start) the app of service ``name``."""
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; expected one of {', '.join(SERVICES)}")
    module = importlib.import_module(f"services.{name}.app")
    app: FastAPI = module.create_app(settings)
    return app


def build_documents(services: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Build each service's app and return its OpenAPI document, by service name."""
    names = services if services is not None else services_with_app()
    docs: dict[str, dict[str, Any]] = {}
    with scratch_settings() as settings:
        for name in names:
            app = create_service_app(name, settings)
            # A deep copy through JSON: the app caches its document and later calls must not see edits.
            docs[name] = json.loads(json.dumps(app.openapi()))
    return docs


@dataclass(frozen=True)
class Difference:
    """A committed document that is missing or differs from the generated one."""

    service: str
    path: Path
    diff: str


def export(out_dir: Path = OPENAPI_DIR, services: list[str] | None = None) -> list[Path]:
    """Write the documents; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, doc in build_documents(services).items():
        path = document_path(name, out_dir)
        path.write_text(render(doc), encoding="utf-8")
        written.append(path)
    return written


def check(out_dir: Path = OPENAPI_DIR, services: list[str] | None = None) -> list[Difference]:
    """Compare the committed documents with the generated ones; empty when all match."""
    differences: list[Difference] = []
    for name, doc in build_documents(services).items():
        path = document_path(name, out_dir)
        expected = render(doc)
        actual = path.read_text(encoding="utf-8") if path.exists() else ""
        if actual != expected:
            diff = "".join(
                difflib.unified_diff(
                    actual.splitlines(keepends=True), expected.splitlines(keepends=True),
                    fromfile=f"{path} (committed)", tofile=f"{path} (generated)", n=2,
                )
            )
            differences.append(Difference(name, path, diff or f"{path} is missing"))
    return differences
