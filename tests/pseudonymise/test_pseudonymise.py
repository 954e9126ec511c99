"""The pseudonymise service: keyed, versioned, domain-separated, and strict about its key."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path

import pytest

from services.aggregate import persons
from services.aggregate.wire import WirePseudonym, WireTrajectory
from services.pseudonymise.app import create_app
from services.pseudonymise.keyring import CONTENT_TAG, DOMAIN_TAGS, Keyring, KeyringError
from tests.helpers.asgi import party_client
from ttp.db import make_engine, migrate
from ttp.settings import Settings


class _NoAudit:
    async def append(self, events: list[object]) -> dict[str, object]:
        return {}

    def append_soon(self, events: list[object]) -> None:
        pass


def _settings(tmp_path: Path, pki: Path) -> Settings:
    return Settings(home=tmp_path, pki_dir=pki, key_dir=tmp_path / "keys")


def _app(settings: Settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    app.state.audit_sink = _NoAudit()
    return app


def test_refuses_to_start_without_a_strong_key(tmp_path: Path, dev_pki: Path) -> None:
    settings = _settings(tmp_path, dev_pki)
    (tmp_path / "keys").mkdir()
    with pytest.raises(KeyringError, match="No HMAC key"):
        create_app(settings)
    (tmp_path / "keys" / "v1.key").write_bytes(b"short")
    with pytest.raises(KeyringError, match="fewer than 32 bytes"):
        create_app(settings)


def test_pseudonym_is_hmac_of_tagged_identifier(tmp_path: Path, dev_pki: Path) -> None:
    settings = _settings(tmp_path, dev_pki)
    (tmp_path / "keys").mkdir()
    key = b"k" * 32
    (tmp_path / "keys" / "v1.key").write_bytes(key)
    app = _app(settings)
    from fastapi.testclient import TestClient

    with TestClient(app):
        c = party_client(app, dev_pki, "service-ingest")
        r = c.post("/v1/pseudonyms", json={"identifiers": [
            {"kind": "bsn", "value": "111222333"}, {"kind": "fallback", "value": "V|2012-03-04|1234 ab"},
        ]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["keyVersions"] == [1]
        expected = hmac.new(key, DOMAIN_TAGS["bsn"] + b"111222333", hashlib.sha256).hexdigest()
        assert body["pseudonyms"][0] == [expected]
        fallback = hmac.new(key, DOMAIN_TAGS["fallback"] + b"V|2012-03-04|1234AB", hashlib.sha256).hexdigest()
        assert body["pseudonyms"][1] == [fallback]
        # the same digits as BSN and inside a fallback key can never collide
        assert body["pseudonyms"][0] != body["pseudonyms"][1]
        # only services may ask; a provider gets 403 problem+json
        p = party_client(app, dev_pki, "provider-98000001").post(
            "/v1/pseudonyms", json={"identifiers": [{"kind": "bsn", "value": "111222333"}]})
        assert p.status_code == 403 and p.headers["content-type"].startswith("application/problem+json")
        # errors never echo the identifier
        bad = c.post("/v1/pseudonyms", json={"identifiers": [{"kind": "bsn", "value": "11122233x;"}]})
        assert bad.status_code == 400 and "11122233" not in bad.text


def test_content_digest_is_a_tagged_hmac_under_every_key_version(tmp_path: Path, dev_pki: Path) -> None:
    """The record's fingerprint is keyed: without the key nobody can recompute it from guessed data."""
    settings = _settings(tmp_path, dev_pki)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "v1.key").write_bytes(b"1" * 32)
    (tmp_path / "keys" / "v2.key").write_bytes(b"2" * 32)
    app = _app(settings)
    content = '{"birthDate":"2012-03-04","bsn":"999999999","gender":"V","postcode":"1234AB"}'
    from fastapi.testclient import TestClient

    with TestClient(app):
        c = party_client(app, dev_pki, "service-ingest")
        r = c.post("/v1/pseudonyms", json={"identifiers": [
            {"kind": "fallback", "value": "V|2012-03-04|1234AB", "content": content},
            {"kind": "bsn", "value": "111222333"},
        ]})
        assert r.status_code == 200, r.text
        body = r.json()
    assert body["keyVersions"] == [2, 1]
    expected = [hmac.new(k, CONTENT_TAG + content.encode(), hashlib.sha256).hexdigest() for k in (b"2" * 32, b"1" * 32)]
    assert body["contentDigests"] == [expected, None]
    assert hashlib.sha256(content.encode()).hexdigest() not in r.text  # not the unkeyed digest
    assert not set(expected) & set(body["pseudonyms"][0])  # a content digest is never a pseudonym


def _trajectory(record_id: str, pseudonyms: list[tuple[int, str]], start: dt.date) -> WireTrajectory:
    return WireTrajectory(
        recordId=record_id, contentHashes=[WirePseudonym(keyVersion=v, value="a" * 64) for v, _ in pseudonyms],
        pseudonyms=[WirePseudonym(keyVersion=v, value=p) for v, p in pseudonyms], bsnKnown=True,
        trajectoryRef=record_id, pc4="1234", gemeente="GM0363", ageAtEnd=10, ageBand="4-11",
        sector="jeugdhulp", freelyAccessible=False, hulpvorm="02", referrer="01", startedInCrisis=False,
        startDate=start, endDate=start + dt.timedelta(days=90), period="2026-H1", terminationReason="01",
        legalBasis="wettelijke-verplichting",
    )


def test_rotation_keeps_linkage(tmp_path: Path, db_url: str) -> None:
    """A person seen under key v1 is the same person after rotation to v2 (indicator 3.2)."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "v1.key").write_bytes(b"1" * 32)
    ring = Keyring.load(keys)
    before = ring.pseudonymise("bsn", "111222333")
    (keys / "v2.key").write_bytes(b"2" * 32)
    ring.reload()
    after = ring.pseudonymise("bsn", "111222333")
    assert ring.versions == [2, 1] and after[1] == before[0] and after[0] != before[0]

    migrate("aggregate", db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        first = persons.resolve_persons(conn, [_trajectory("a", [(1, before[0])], dt.date(2026, 1, 5))], create=True)
        second = persons.resolve_persons(
            conn, [_trajectory("b", [(2, after[0]), (1, after[1])], dt.date(2026, 3, 5))], create=True
        )
        # after v1 is retired, the v2 pseudonym alone still finds the person
        third = persons.resolve_persons(conn, [_trajectory("c", [(2, after[0])], dt.date(2026, 5, 5))], create=True)
    engine.dispose()
    assert first == second == third
