"""After a full run, no BSN, birth date or 6-position postcode is anywhere on disk or in a log.

Greps the raw database files and a full SQL dump (SQLite) or pg_dump
(PostgreSQL) of every service, every service log, and every receipt.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tests.helpers.cluster import Cluster
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
        for m in r.get("measurements") or []:
            other_dates.add(m.get("measuredOn"))
    bsns = {r["bsn"] for r in records if isinstance(r.get("bsn"), str) and r["bsn"] != "999999999"}
    births = {r["birthDate"] for r in records if isinstance(r.get("birthDate"), str)} - other_dates
    postcodes = {str(r["postcode"]).replace(" ", "").upper() for r in records if isinstance(r.get("postcode"), str)}
    return bsns, births, postcodes


def find_leaks(haystack: str, bsns: set[str], births: set[str], postcodes: set[str]) -> list[str]:
    leaks = []
    for bsn in bsns:
        if re.search(rf"(?<![0-9a-f]){bsn}(?![0-9a-f])", haystack):
            leaks.append(f"bsn {bsn[:2]}…")
    for b in births:
        if b in haystack:
            leaks.append(f"birth date {b}")
    for pc in postcodes:
        if re.search(rf"{pc[:4]} ?{pc[4:]}", haystack, flags=re.IGNORECASE):
            leaks.append(f"postcode {pc}")
    return leaks


def test_no_identifier_on_disk_in_logs_or_receipts(cluster: Cluster) -> None:
    records = generated(1500, seed=99, invalid_share=0.1)
    receipts: list[str] = []
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_provider.setdefault(str(r.get("providerAgb")), []).append(r)
    for agb, recs in by_provider.items():
        known = (cluster.home / "pki" / "clients" / f"provider-{agb}.pem").exists()
        slug = f"provider-{agb}" if known else "provider-98000001"
        with cluster.client(slug) as c:
            resp = c.post("/batches", json={"batchId": f"priv-{agb}", "records": recs})
            assert resp.status_code == 200, resp.text
            receipts.append(resp.text)
            # a withdrawal and a bad withdrawal: both carry a BSN in, neither may leave one behind
            first = next(r for r in recs if isinstance(r.get("bsn"), str) and len(r["bsn"]) == 9)
            c.post("/consent-withdrawals", json={"bsn": first["bsn"], "withdrawnOn": "2026-01-02"})
            c.post("/consent-withdrawals", json={"bsn": "123456789", "withdrawnOn": "2026-01-02"})
    bsns, births, postcodes = identifiers(records)
    assert bsns and births and postcodes
    cluster.stop()  # flush logs and WAL
    try:
        logs = "\n".join(p.read_text(errors="replace") for p in (cluster.home / "log").glob("*"))
        assert logs, "services wrote no logs at all"
        assert not find_leaks(dump_databases(cluster), bsns, births, postcodes)
        assert not find_leaks(logs, bsns, births, postcodes)
        assert not find_leaks("\n".join(receipts), bsns, births, postcodes)
    finally:
        cluster.start()
