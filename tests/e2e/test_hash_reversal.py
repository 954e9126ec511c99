"""The attacks that reversed the old content hash, run against a live TTP: they find nothing now.

The old ``contentHash`` was an unkeyed SHA-256 over the whole record, stored
in the trajectory store and in every ``record-accepted`` log entry, beside
everything else of the record. Two attacks broke it (issue 15):

* **brute-force reversal**: for a record without a BSN (fallback key) the
  store holds PC4, the age at endDate and everything else; enumerating birth
  dates of that age x gender x the postcodes of the PC4 (about 740,000
  guesses) and hashing each candidate record hits the stored hash;
* **known-person linkage**: whoever knows one person's BSN, birth date,
  gender and postcode hashes their records and finds them in the store and
  the log without any key.

Both are run here against everything the storing services hold (database
dumps) and an exported audit log, as an attacker holding every non-identifying
field of the record (the most the store could give them). Negative controls:
the same enumeration against the old formula, computed here, recovers the
record's birth date, gender and postcode, and the linkage search finds the
old digests where the old code put them. Also here: identifiers carrying a
BSN (recordId, trajectoryId, batchId) are refused and land nowhere.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import itertools
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from services.audit.export import export_log
from services.audit.store import AuditStore, make_audit_engine
from services.ingest.minimise import normalised
from services.ingest.models import POSTCODE_PATTERN, RECORD_ADAPTER
from tests.e2e.test_privacy import dump_databases
from tests.helpers.cluster import Cluster
from tests.helpers.hashed_forms import BASE64_32, HEX64, hashed_identifiers, hashed_leaks, old_content_hash
from tests.helpers.records import valid_record
from ttp.periods import age_at

BSN = "111222333"  # a valid BSN (11-proef), used as an identifier in the attacks of part 2
KNOWN_BSN = "123456782"
_POSTCODE = re.compile(POSTCODE_PATTERN)


@dataclass
class Delivered:
    fallback: dict[str, Any]
    known: list[dict[str, Any]]
    haystack: str
    receipts: list[dict[str, Any]]
    batch_refusal: dict[str, Any]


def _post(cluster: Cluster, slug: str, batch_id: str, records: list[dict[str, Any]]) -> Any:
    with cluster.client(slug) as c:
        return c.post("/batches", json={"batchId": batch_id, "records": records})


def _export(cluster: Cluster) -> str:
    store = AuditStore(make_audit_engine(cluster.database_urls()["audit"]))
    try:
        out = io.BytesIO()
        export_log(store, out)
    finally:
        store.engine.dispose()
    return out.getvalue().decode()


@pytest.fixture(scope="module")
def delivered(cluster: Cluster) -> Delivered:
    end = dt.date.today() - dt.timedelta(days=40)
    fallback = valid_record("rev-fallback-1", bsn="999999999", gender="M", postcode="3512JK", end=end)
    known = [valid_record("rev-known-1", bsn=KNOWN_BSN, postcode="1011AB", end=end),
             valid_record("rev-known-2", provider="98000002", bsn=KNOWN_BSN, postcode="1011AB", end=end,
                          hulpvorm="04", startDate=(end - dt.timedelta(days=90)).isoformat())]
    # part 2: a BSN hidden in the identifier fields
    own_birth_date = valid_record("rev-hidden-3", bsn=KNOWN_BSN, end=end)
    own_birth_date["trajectoryId"] = "T-" + own_birth_date["birthDate"].replace("-", "")
    hidden = [valid_record(BSN, bsn="999999999", end=end),
              valid_record("rev-hidden-2", bsn=KNOWN_BSN, end=end, trajectoryId=f"T-{BSN}"),
              own_birth_date]
    receipts = []
    for slug, batch, recs in (("provider-98000001", "rev-1", [fallback, known[0], *hidden]),
                              ("provider-98000002", "rev-2", [known[1]])):
        resp = _post(cluster, slug, batch, recs)
        assert resp.status_code == 200, resp.text
        receipts.append(resp.json())
    refusal = _post(cluster, "provider-98000001", f"rev-{BSN}", [valid_record("rev-batch-1", end=end)])
    assert receipts[0]["counts"]["accepted"] == 2 and receipts[1]["counts"]["accepted"] == 1
    haystack = "\n".join([dump_databases(cluster), _export(cluster), orjson.dumps(receipts).decode(),
                          *(p.read_text(errors="replace") for p in (cluster.home / "log").glob("*"))])
    return Delivered(fallback, known, haystack, receipts,
                     {"status": refusal.status_code, "body": refusal.json(), "text": refusal.text})


def stored_digests(haystack: str) -> set[bytes]:
    """Every 32-byte value the attacker can read: each 64-hex and each 44-character base64 token."""
    found = {bytes.fromhex(t) for t in HEX64.findall(haystack)}
    for token in BASE64_32.findall(haystack):
        try:
            found.add(base64.b64decode(token, validate=True))
        except binascii.Error:
            continue
    return found


def candidates(rec: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(birth date, gender, postcode, canonical record) for every guess that fits what the store holds.

    The store keeps the age at endDate and the PC4; every other field is taken
    as known (the attacker's best case). Only birth date, gender and the two
    postcode letters are guessed: the old attack's search space.
    """
    end = dt.date.fromisoformat(rec["endDate"])
    age = age_at(dt.date.fromisoformat(rec["birthDate"]), end)
    pc4 = rec["postcode"][:4]
    base = normalised(RECORD_ADAPTER.validate_python(rec))
    base.update(birthDate="@@B@@", gender="@@G@@", postcode="@@P@@")
    template = orjson.dumps(base, option=orjson.OPT_SORT_KEYS).decode()
    template = template.replace("{", "{{").replace("}", "}}")
    template = template.replace("@@B@@", "{0}").replace("@@G@@", "{1}").replace("@@P@@", "{2}")
    births = [d for d in (end.replace(year=end.year - age - 1) + dt.timedelta(days=i) for i in range(370))
              if age_at(d, end) == age]
    letters = [a + b for a, b in itertools.product(string.ascii_uppercase, repeat=2)
               if _POSTCODE.fullmatch(pc4 + a + b)]
    for birth in births:
        iso = birth.isoformat()
        for gender in ("V", "M", "O"):
            for pair in letters:
                yield iso, gender, pc4 + pair, template.format(iso, gender, pc4 + pair)


def brute_force(rec: dict[str, Any], targets: set[bytes], *, stop_at_first: bool) -> tuple[list[tuple[str, ...]], int]:
    """Hash every candidate record and report those whose SHA-256 is among ``targets``."""
    hits: list[tuple[str, ...]] = []
    tried = 0
    sha256 = hashlib.sha256
    for birth, gender, postcode, text in candidates(rec):
        tried += 1
        if sha256(text.encode()).digest() in targets:
            hits.append((birth, gender, postcode))
            if stop_at_first:
                break
    return hits, tried


def test_control_the_brute_force_recovers_a_fallback_record_from_the_old_hash(delivered: Delivered) -> None:
    """Negative control: against the unkeyed formula the enumeration finds the person."""
    rec = delivered.fallback
    old = bytes.fromhex(old_content_hash(rec))
    hits, _ = brute_force(rec, {old}, stop_at_first=True)
    assert hits == [(rec["birthDate"], rec["gender"], rec["postcode"])]


def test_brute_force_reversal_of_the_stored_hashes_finds_nothing(delivered: Delivered) -> None:
    rec = delivered.fallback
    targets = stored_digests(delivered.haystack)
    assert len(targets) > 20  # content hashes, pseudonyms, leaf hashes: there was something to attack
    hits, tried = brute_force(rec, targets, stop_at_first=False)
    assert 600_000 < tried < 800_000  # the whole bounded search space of the old attack
    assert hits == []


def test_known_person_linkage_finds_nothing_in_the_store_or_the_exported_log(delivered: Delivered) -> None:
    """Knowing a person's BSN, birth date, gender and postcode gives no handle on their records."""
    old_digests = {old_content_hash(r) for r in delivered.known}
    assert len(old_digests) == 2
    hashed = hashed_identifiers(delivered.known)
    assert old_digests <= hashed
    assert hashed_leaks(delivered.haystack, hashed) == []
    # control: where the old code put them (the content hash of a record-accepted entry), they would be found
    old_entry = orjson.dumps({"kind": "record-accepted", "subject": {"contentHash": sorted(old_digests)[0]}})
    assert hashed_leaks(delivered.haystack + old_entry.decode(), hashed) == sorted(old_digests)[:1]
    # the records themselves did arrive: the linkage finds nothing because there is nothing to find
    assert "rev-known-1" in delivered.haystack and "rev-known-2" in delivered.haystack


def test_every_identifier_of_the_delivered_people_is_absent_in_hashed_form(delivered: Delivered) -> None:
    everyone = [delivered.fallback, *delivered.known]
    assert hashed_leaks(delivered.haystack, hashed_identifiers(everyone)) == []


def test_a_bsn_as_record_or_trajectory_id_is_refused_by_index_and_stored_nowhere(delivered: Delivered) -> None:
    rejected = {r["index"]: r for r in delivered.receipts[0]["rejected"]}
    assert rejected[2]["recordId"] is None
    assert [(p["name"], p["code"]) for p in rejected[2]["problems"]] == [  # its trajectoryId is T-<recordId>
        ("/records/2/recordId", "identifier-bsn"), ("/records/2/trajectoryId", "identifier-bsn")]
    assert [(p["name"], p["code"]) for p in rejected[3]["problems"]] == [
        ("/records/3/trajectoryId", "identifier-bsn")]
    assert [(p["name"], p["code"]) for p in rejected[4]["problems"]] == [
        ("/records/4/trajectoryId", "identifier-birth-date")]
    assert not re.search(rf"(?<![0-9]){BSN}(?![0-9])", delivered.haystack)


def test_a_bsn_in_the_batch_id_gets_400_for_the_whole_batch(delivered: Delivered) -> None:
    refusal = delivered.batch_refusal
    assert refusal["status"] == 400
    assert [(p["name"], p["code"]) for p in refusal["body"]["invalidParams"]] == [("/batchId", "identifier-bsn")]
    assert BSN not in refusal["text"]
    assert "rev-batch-1" not in delivered.haystack  # nothing of the batch was processed
