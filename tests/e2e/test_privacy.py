"""After a full run, no BSN, birth date or 6-position postcode is anywhere on disk or in a log.

Greps the raw database files and a full SQL dump (SQLite) or pg_dump
(PostgreSQL) of every service, every service log, and every receipt, for the
identifiers and for their SHA-256 (hex and base64: of each BSN, fallback key
and canonical record, ``tests.helpers.hashed_forms``).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from tests.helpers.cluster import Cluster
from tests.helpers.hashed_forms import hashed_identifiers, hashed_leaks, old_content_hash
from tests.helpers.records import generated


def dump_databases(cluster: Cluster) -> str:
    """Everything every storing service holds, as text."""
    parts: list[str] = []
    for service, url in cluster.database_urls().items():
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = Path(str(parsed.database))
            for f in path.parent.glob(path.name + "*"):
                parts.append(f.read_bytes().decode("latin-1"))
            with sqlite3.connect(path) as conn:
                parts.append("\n".join(conn.iterdump()))
        else:
            out = subprocess.run(
                ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--data-only", "--inserts", str(parsed.database)],
                capture_output=True, text=True, check=True,
            )
            parts.append(out.stdout)
        assert parts[-1], f"empty dump for {service}"
    return "\n".join(parts)


def identifiers(records: list[dict[str, Any]]) -> tuple[set[str], set[str], set[str]]:
    """BSNs, birth dates and full postcodes that were submitted.

    A birth date that is also some record's start, end or consent date is left
    out: those dates are stored legitimately, so finding them proves nothing.
    """
    other_dates: set[str] = set()
    for r in records:
        other_dates.update({r.get("startDate"), r.get("endDate")})
        if isinstance(r.get("consent"), dict):
            other_dates.add(r["consent"].get("givenOn"))
        measurements = r.get("measurements")
        for m in measurements if isinstance(measurements, list) else []:
            if isinstance(m, dict):
                other_dates.add(m.get("measuredOn"))
    bsns = {r["bsn"] for r in records if isinstance(r.get("bsn"), str) and r["bsn"] not in ("000000000", "999999999")}
    births = {r["birthDate"] for r in records if isinstance(r.get("birthDate"), str)} - other_dates
    postcodes = {str(r["postcode"]).replace(" ", "").upper() for r in records if isinstance(r.get("postcode"), str)}
    postcodes = {p for p in postcodes if re.fullmatch(r"[1-9][0-9]{3}[A-Z]{2}", p)}
    return bsns, births, postcodes


BSN_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9]{9}(?![0-9A-Za-z])")
DATE_TOKEN = re.compile(r"(?<![0-9])[0-9]{4}-[0-9]{2}-[0-9]{2}(?![0-9])")
POSTCODE_TOKEN = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{3}) ?([A-Za-z]{2})(?![0-9A-Za-z])")


def find_leaks(haystack: str, bsns: set[str], births: set[str], postcodes: set[str]) -> list[str]:
    """Every submitted identifier that stands in ``haystack`` as a token of its own.

    Tokens, not substrings: a 9-digit run inside a hex hash or base64 signature
    is not a BSN, but a BSN anywhere between separators is.
    """
    leaks = [f"bsn {b[:2]}…" for b in set(BSN_TOKEN.findall(haystack)) & bsns]
    leaks += [f"birth date {d}" for d in set(DATE_TOKEN.findall(haystack)) & births]
    found_pc = {(a + b).upper() for a, b in POSTCODE_TOKEN.findall(haystack)}
    leaks += [f"postcode {p}" for p in found_pc & postcodes]
    return leaks


def test_no_identifier_on_disk_in_logs_or_receipts(cluster: Cluster) -> None:
    records = generated(1500, seed=99, invalid_share=0.1)
    receipts: list[str] = []
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        agb = str(r.get("providerAgb")) if isinstance(r, dict) else "98000001"
        by_provider.setdefault(agb, []).append(r)
    for agb, recs in by_provider.items():
        known = (cluster.home / "pki" / "clients" / f"provider-{agb}.pem").exists()
        slug = f"provider-{agb}" if known else "provider-98000001"
        with cluster.client(slug) as c:
            resp = c.post("/batches", json={"batchId": f"priv-{agb}", "records": recs})
            assert resp.status_code == 200, resp.text
            receipts.append(resp.text)
            # a withdrawal and a bad withdrawal: both carry a BSN in, neither may leave one behind
            first = next(r for r in recs if isinstance(r, dict) and isinstance(r.get("bsn"), str)
                         and len(r["bsn"]) == 9)
            c.post("/consent-withdrawals", json={"bsn": first["bsn"], "withdrawnOn": "2026-01-02"})
            c.post("/consent-withdrawals", json={"bsn": "123456789", "withdrawnOn": "2026-01-02"})
    bsns, births, postcodes = identifiers([r for r in records if isinstance(r, dict)])
    assert bsns and births and postcodes
    # the grep itself works: the submitted records are full of what it looks for
    assert len(find_leaks(orjson.dumps(records).decode(), bsns, births, postcodes)) > 100
    hashed = hashed_identifiers(records)
    # ... and so is the hashed grep: the audit entries earlier versions wrote (an unkeyed content hash each) trip it
    old_entries = []
    for r in records:
        try:
            old_entries.append(orjson.dumps({"subject": {"contentHash": old_content_hash(r)}}))
        except (ValidationError, TypeError):
            continue  # not a valid record: it was never accepted, so never hashed
    assert len(hashed_leaks(b"\n".join(old_entries).decode(), hashed)) == len(set(old_entries)) > 1000
    cluster.stop()  # flush logs and WAL
    try:
        logs = "\n".join(p.read_text(errors="replace") for p in (cluster.home / "log").glob("*"))
        assert logs, "services wrote no logs at all"
        assert not find_leaks(dump_databases(cluster), bsns, births, postcodes)
        assert not find_leaks(logs, bsns, births, postcodes)
        assert not find_leaks("\n".join(receipts), bsns, births, postcodes)
        for where in (dump_databases(cluster), logs, "\n".join(receipts)):
            assert not hashed_leaks(where, hashed)
    finally:
        cluster.start()
