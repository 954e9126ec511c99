"""The audit API refuses a leaf index or tree size beyond 64 bits with 400, not 500.

Schemathesis sent ``treeSize=9223372036854775808`` and ``start=9223372036854775808``
(2**63) 55 times and got 500: the number reached the database driver. The
control shows that the store itself still cannot take it, so it is the declared
bound (``MAX_INDEX`` on every integer parameter) that turns the crash into a 400.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from services.audit.routes import MAX_INDEX
from services.audit.store import AuditStore
from tests.helpers.asgi import party_client

OVERFLOW = 9223372036854775808  # 2**63

CASES = [
    ("/v1/audit/checkpoint", {"treeSize": OVERFLOW}, "treeSize"),
    ("/v1/audit/entries", {"start": OVERFLOW}, "start"),
    ("/v1/audit/entries", {"end": OVERFLOW}, "end"),
    ("/v1/audit/proofs/inclusion", {"leafIndex": OVERFLOW}, "leafIndex"),
    ("/v1/audit/proofs/inclusion", {"leafIndex": 0, "treeSize": OVERFLOW}, "treeSize"),
    ("/v1/audit/proofs/consistency", {"fromTreeSize": OVERFLOW}, "fromTreeSize"),
    ("/v1/audit/proofs/consistency", {"fromTreeSize": 0, "toTreeSize": OVERFLOW}, "toTreeSize"),
]


@pytest.mark.parametrize(("url", "params", "name"), CASES)
def test_an_index_beyond_64_bits_is_a_400_problem_naming_it(
    audit_app: FastAPI, dev_pki: Path, url: str, params: dict[str, int], name: str
) -> None:
    client = party_client(audit_app, dev_pki, "auditor", raise_server_exceptions=False)
    response = client.get(url, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert [p for p in problem["invalidParams"] if name in p["name"]], problem
    assert str(OVERFLOW) not in response.text


def test_the_largest_64_bit_index_is_still_a_valid_question(audit_app: FastAPI, dev_pki: Path) -> None:
    client = party_client(audit_app, dev_pki, "auditor")
    assert client.get("/v1/audit/entries", params={"start": MAX_INDEX}).json()["entries"] == []
    assert client.get("/v1/audit/checkpoint", params={"treeSize": MAX_INDEX}).status_code == 404


def test_control_the_store_cannot_take_an_index_beyond_64_bits(store: AuditStore) -> None:
    """Without the declared bound the value reached this call, and its exception became a 500."""
    with pytest.raises((OverflowError, DBAPIError, psycopg.Error)):
        store.entries(start=OVERFLOW, end=OVERFLOW + 1, limit=10)
    with pytest.raises((OverflowError, DBAPIError, psycopg.Error)):
        store.checkpoint(OVERFLOW)
