"""``ttp submit``'s batch ids: stable for a resend, new for changed records, and never an unkeyed hash of them."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import orjson

from tests.helpers.records import valid_record
from ttp.cli.submit_cmd import batch_id_for, batch_id_key


def test_batch_ids_are_stable_new_for_changed_records_and_keyed(tmp_path: Path) -> None:
    records = [valid_record("r-1", bsn="999999999")]
    key = batch_id_key(tmp_path)
    assert len(key) == 32 and batch_id_key(tmp_path) == key  # created once, then reused
    assert stat.S_IMODE((tmp_path / "submit-batch-id.key").stat().st_mode) == 0o600
    first = batch_id_for(Path("levering.jsonl"), "98000001", 1, records, key)
    assert first == batch_id_for(Path("levering.jsonl"), "98000001", 1, records, key)  # a resend: same id
    changed = [{**records[0], "terminationReason": "02"}]
    assert batch_id_for(Path("levering.jsonl"), "98000001", 1, changed, key) != first
    # the id's digest is not the plain SHA-256 of the records, which the old ids were (a 48-bit prefix of it)
    unkeyed = hashlib.sha256(orjson.dumps(records)).hexdigest()[:12]
    assert not first.endswith(unkeyed)
    assert first.startswith("levering-98000001-00001-")
    # another machine's secret gives other ids: the digest cannot be recomputed without it
    assert batch_id_for(Path("levering.jsonl"), "98000001", 1, records, b"x" * 32) != first
