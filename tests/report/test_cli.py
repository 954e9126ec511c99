"""``ttp report`` fetches a report to a file with the right party's certificate."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pypdf
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.helpers.asgi import AsParty
from tests.report.conftest import AGB, PERIOD, ReportEnv
from ttp.cli import main, report_cmd
from ttp.pki import cert_paths
from ttp.settings import Settings
from ttp.tls import client_context


class _Open:
    """``with open_client(...)`` without running the app's lifespan a second time."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def __enter__(self) -> TestClient:
        return self.client

    def __exit__(self, *_exc: object) -> None:
        return None


@pytest.fixture
def cli(report_env: ReportEnv, report_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    chosen: list[str] = []
    real = client_context

    def context(pki: Path, slug: str) -> Any:
        chosen.append(slug)
        return real(pki, slug)

    monkeypatch.setattr(report_cmd, "client_context", context)
    monkeypatch.setattr(report_cmd, "get_settings", lambda: report_settings)
    def client(_settings: Settings, _ctx: Any) -> _Open:
        pem = cert_paths(report_env.pki, chosen[-1])[0].read_text()
        # the real client's base URL carries /v1, as Settings.base_url does
        return _Open(TestClient(AsParty(report_env.app, pem), base_url="https://testserver/v1"))

    monkeypatch.setattr(report_cmd, "open_client", client)
    return chosen


def test_ttp_report_writes_the_pdf(cli: list[str], tmp_path: Path) -> None:
    out = tmp_path / "rapport.pdf"
    result = CliRunner().invoke(main.app, ["report", "--provider", AGB, "--period", PERIOD,
                                           "--variant", "intern", "--format", "pdf", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert cli == [f"provider-{AGB}"]
    assert len(pypdf.PdfReader(io.BytesIO(out.read_bytes())).pages) == 8


def test_ttp_report_as_gemeente_needs_a_share(cli: list[str], report_env: ReportEnv,
                                              tmp_path: Path) -> None:
    out = tmp_path / "gedeeld.csv"
    args = ["report", "--provider", AGB, "--period", PERIOD, "--variant", "deelbaar",
            "--format", "csv", "--gemeente", "GM0363", "--out", str(out)]
    refused = CliRunner().invoke(main.app, args)
    assert refused.exit_code == 1 and "403" in refused.output
    assert not out.exists()
    report_env.client(f"provider-{AGB}").put(
        f"/v1/providers/{AGB}/reports/{PERIOD}/shares/GM0363")
    result = CliRunner().invoke(main.app, args)
    assert result.exit_code == 0, result.output
    assert cli[-1] == "gemeente-GM0363"
    assert out.read_text(encoding="utf-8-sig").startswith("period,providerId,reportVariant")


def test_ttp_report_checks_its_arguments(cli: list[str]) -> None:
    for args in (["--provider", "123"], ["--period", "2026-1"], ["--variant", "alles"],
                 ["--format", "docx"], ["--gemeente", "Amsterdam"]):
        base = {"--provider": AGB, "--period": PERIOD}
        base.update(dict(zip(args[::2], args[1::2], strict=True)))
        argv = ["report", *[x for kv in base.items() for x in kv]]
        result = CliRunner().invoke(main.app, argv)
        assert result.exit_code == 2, args
    assert cli == []
