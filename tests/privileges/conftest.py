"""All five services in-process on SQLite, each with a recording audit sink, called by certificate.

Each call carries a real dev certificate in the ASGI TLS extension (tests/helpers/asgi.py), the
exact place the TLS protocol puts it; the TLS layer itself is covered by tests/interface.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.helpers.asgi import party_client
from tests.report.conftest import RecordingSink
from tests.report.factory import standard_figures
from ttp.audit_events import AuditEvent
from ttp.pki import ensure_hmac_key, issue_client_certificate
from ttp.registry import load_yaml
from ttp.settings import SERVICES, Settings

#: A certificate the dev CA signed for an OIN the registry does not know.
UNREGISTERED = "unregistered-ca-signed"
UNREGISTERED_OIN = "00000099990000000001"


@dataclass
class Cluster:
    """The five apps, their sinks and the dev PKI."""

    apps: dict[str, FastAPI]
    sinks: dict[str, RecordingSink]
    pki: Path

    def call(self, slug: str, service: str, method: str, path: str, *, json: Any = None,
             headers: dict[str, str] | None = None) -> Any:
        client = party_client(self.apps[service], self.pki, slug)
        return client.request(method, path, json=json, headers=headers)

    def refusals(self, service: str) -> list[AuditEvent]:
        sink = self.sinks[service]
        return [e for e in sink.durable + sink.soon if e.kind == "refusal"]

    def events(self, service: str) -> list[AuditEvent]:
        sink = self.sinks[service]
        return sink.durable + sink.soon


def oin(pki: Path, slug: str) -> str:
    if slug == UNREGISTERED:
        return UNREGISTERED_OIN
    return next(p.oin for p in load_yaml(pki / "parties.yaml") if p.slug == slug)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, dev_pki: Path) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("privileges")
    issue_client_certificate(dev_pki, UNREGISTERED, UNREGISTERED_OIN, "Niet geregistreerd B.V.")
    ensure_hmac_key(home / "keys")
    settings = Settings(home=home, pki_dir=dev_pki, recompute_interval=0)
    from services.aggregate.app import create_app as aggregate
    from services.audit.app import create_app as audit
    from services.ingest.app import create_app as ingest
    from services.pseudonymise.app import create_app as pseudonymise
    from services.report.app import create_app as report

    apps: dict[str, FastAPI] = {
        "ingest": ingest(settings), "pseudonymise": pseudonymise(settings), "aggregate": aggregate(settings),
        "report": report(settings, figures=standard_figures()), "audit": audit(settings),
    }
    sinks = {name: RecordingSink() for name in SERVICES}
    for name, app in apps.items():
        if name != "audit":
            app.state.audit_sink = sinks[name]
    with ExitStack() as stack:
        for app in apps.values():
            stack.enter_context(TestClient(app))
        # the log's own refusals normally go to its local sink; record them like the others'
        apps["audit"].state.audit_sink = sinks["audit"]
        yield Cluster(apps, sinks, dev_pki)
