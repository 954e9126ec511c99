"""``ttp audit verify``: every single-entry tampering is detected and the entry is named.

A small log (several appends, so several embedded checkpoints) is exported
once; each test edits a copy of the export the way an attacker with write
access to the database or the file could, and runs the verifier.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from services.audit.export import export_log
from services.audit.sink import receipt_document
from services.audit.store import AuditStore
from tests.audit.conftest import INGEST_OIN, events, open_store
from ttp.audit_entry_format import canonical_json
from ttp.audit_verify import Report, verify_export
from ttp.checkpoint import CheckpointSigner
from ttp.cli.main import app as cli
from ttp.db import migrate
from ttp.merkle import leaf_hash

BATCHES = (5, 1, 9, 16, 3, 7)
SIZE = sum(BATCHES)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, dev_pki: Path) -> dict[str, Any]:
    """A log of 41 entries in 6 appends, its export, latest checkpoint and receipts."""
    tmp = tmp_path_factory.mktemp("log")
    url = f"sqlite:///{tmp / 'audit.sqlite3'}"
    migrate("audit", url)
    store = open_store(url, dev_pki)
    store.ensure_head()
    receipts = []
    for i, n in enumerate(BATCHES):
        res = store.append(events(n, f"b{i}", note="x" * i), INGEST_OIN)
        receipts.append(receipt_document(res, store.proofs(res)))
    export = tmp / "log.export"
    with export.open("wb") as fh:
        assert export_log(store, fh) == SIZE
    checkpoint = tmp / "checkpoint.txt"
    checkpoint.write_text(store.head().checkpoint)
    store.engine.dispose()
    return {"export": export, "checkpoint": checkpoint, "receipts": receipts, "url": url}


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def entry_line_no(all_lines: list[bytes], index: int) -> int:
    return next(i for i, ln in enumerate(all_lines) if ln.startswith(b"entry %d " % index))


def split_entry(line: bytes) -> tuple[bytes, bytes]:
    """(prefix up to and including the stored hash and space, entry bytes without newline)."""
    tag, idx, stored, body = line.rstrip(b"\n").split(b" ", 3)
    return b" ".join([tag, idx, stored]) + b" ", body


def write(tmp_path: Path, all_lines: list[bytes]) -> Path:
    out = tmp_path / "tampered.export"
    out.write_bytes(b"".join(all_lines))
    return out


def run(path: Path, public_key: Any, **kw: Any) -> Report:
    return verify_export(path, public_key, **kw)


def test_untouched_export_verifies_with_every_checkpoint_and_receipt(built: dict[str, Any], public_key: Any) -> None:
    report = run(built["export"], public_key, checkpoints=[built["checkpoint"].read_text()],
                 receipts=built["receipts"])
    assert report.ok, report.findings
    assert report.entries == SIZE and report.tree_size == SIZE
    assert report.checkpoints == len(BATCHES) + 2  # size 0, one per append, the external one
    assert report.receipts == len(BATCHES)
    assert report.proofs == SIZE


@pytest.mark.parametrize("index", range(SIZE))
def test_changing_one_byte_of_any_entry_names_it(index: int, built: dict[str, Any], public_key: Any,
                                                 tmp_path: Path) -> None:
    all_lines = lines(built["export"])
    n = entry_line_no(all_lines, index)
    prefix, body = split_entry(all_lines[n])
    pos = body.index(b'"recordId":"') + len(b'"recordId":"')  # a byte inside a value
    body = body[:pos] + (b"Z" if body[pos : pos + 1] != b"Z" else b"Y") + body[pos + 1 :]
    all_lines[n] = prefix + body + b"\n"
    report = run(write(tmp_path, all_lines), public_key)
    assert not report.ok
    assert report.first_bad_entry == index, report.findings


def test_every_byte_position_of_an_entry_is_covered(built: dict[str, Any], public_key: Any, tmp_path: Path) -> None:
    """Flip each byte of one entry in turn (structure, keys, values, index, timestamp)."""
    index = 17
    original = lines(built["export"])
    n = entry_line_no(original, index)
    prefix, body = split_entry(original[n])
    for pos in range(len(body)):
        all_lines = list(original)
        old = body[pos : pos + 1]
        new = b"0" if old != b"0" else b"1"
        all_lines[n] = prefix + body[:pos] + new + body[pos + 1 :] + b"\n"
        report = run(write(tmp_path, all_lines), public_key)
        assert report.first_bad_entry == index, (pos, report.findings)


@pytest.mark.parametrize("index", [0, 4, 5, 20, SIZE - 1])
def test_deleting_an_entry_names_it(index: int, built: dict[str, Any], public_key: Any, tmp_path: Path) -> None:
    all_lines = lines(built["export"])
    del all_lines[entry_line_no(all_lines, index)]
    report = run(write(tmp_path, all_lines), public_key)
    assert report.first_bad_entry == index, report.findings


@pytest.mark.parametrize(("i", "j"), [(0, 1), (3, 4), (6, 30), (SIZE - 2, SIZE - 1)])
def test_reordering_entries_names_the_first(i: int, j: int, built: dict[str, Any], public_key: Any,
                                            tmp_path: Path) -> None:
    all_lines = lines(built["export"])
    a, b = entry_line_no(all_lines, i), entry_line_no(all_lines, j)
    all_lines[a], all_lines[b] = all_lines[b], all_lines[a]
    report = run(write(tmp_path, all_lines), public_key)
    assert report.first_bad_entry == i, report.findings


@pytest.mark.parametrize("index", [0, 7, 22, SIZE - 1])
def test_inserting_an_entry_names_it(index: int, built: dict[str, Any], public_key: Any, tmp_path: Path) -> None:
    """A forged entry that claims position ``index``, with a matching stored hash, put before the real one."""
    all_lines = lines(built["export"])
    n = entry_line_no(all_lines, index)
    doc = orjson.loads(split_entry(all_lines[n])[1])
    doc["subject"]["recordId"] = "forged"
    body = canonical_json(doc)
    forged = b"entry %d %s %s\n" % (index, base64.b64encode(leaf_hash(body)), body)
    all_lines.insert(n, forged)
    report = run(write(tmp_path, all_lines), public_key)
    assert report.first_bad_entry == index, report.findings
    # a plain duplicate is named too
    all_lines = lines(built["export"])
    all_lines.insert(n + 1, all_lines[n])
    assert run(write(tmp_path, all_lines), public_key).first_bad_entry == index


def test_altered_stored_hash_alone_is_named(built: dict[str, Any], public_key: Any, tmp_path: Path) -> None:
    all_lines = lines(built["export"])
    n = entry_line_no(all_lines, 11)
    prefix, body = split_entry(all_lines[n])
    tag, idx, _stored = prefix.rstrip(b" ").split(b" ")
    all_lines[n] = b"%s %s %s %s\n" % (tag, idx, base64.b64encode(b"\x00" * 32), body)
    report = run(write(tmp_path, all_lines), public_key)
    assert report.first_bad_entry == 11
    assert "stored leaf hash" in str(report.findings[0])


def test_entry_and_stored_hash_rewritten_together_is_caught_within_its_batch(
    built: dict[str, Any], public_key: Any, tmp_path: Path
) -> None:
    """Without an authentic leaf hash the checkpoint narrows it to the append that held it."""
    index = 20  # in the fourth append: entries 15..30
    all_lines = lines(built["export"])
    n = entry_line_no(all_lines, index)
    doc = orjson.loads(split_entry(all_lines[n])[1])
    doc["subject"]["legalBasis"] = "toestemming"
    body = canonical_json(doc)
    all_lines[n] = b"entry %d %s %s\n" % (index, base64.b64encode(leaf_hash(body)), body)
    report = run(write(tmp_path, all_lines), public_key)
    assert not report.ok
    assert report.first_bad_entry == 15
    assert "15..30" in str(report.findings[0])


def test_truncation_and_silent_tail_removal(built: dict[str, Any], public_key: Any, tmp_path: Path) -> None:
    all_lines = lines(built["export"])
    assert not run(write(tmp_path, all_lines[:-1]), public_key).ok  # no end line
    # dropping the tail mid-append leaves a size the log never signed
    cut = entry_line_no(all_lines, SIZE - 1)
    assert run(write(tmp_path, [*all_lines[:cut], b"end %d\n" % (SIZE - 1)]), public_key).ok is False
    # dropping the whole last append and its checkpoint gives a valid-looking shorter export...
    first_of_last = SIZE - BATCHES[-1]
    cut = entry_line_no(all_lines, first_of_last)
    shorter = [*all_lines[:cut], b"end %d\n" % first_of_last]
    assert run(write(tmp_path, shorter), public_key).ok
    # ...that the auditor's independently fetched checkpoint exposes
    report = run(write(tmp_path, shorter), public_key, checkpoints=[built["checkpoint"].read_text()])
    assert report.first_bad_entry == first_of_last


def test_forged_checkpoint_signature_is_rejected(built: dict[str, Any], public_key: Any, tmp_path: Path) -> None:
    all_lines = lines(built["export"])
    n = next(i for i, ln in enumerate(all_lines) if ln.startswith(b"checkpoint ") and i > 10)
    note = base64.b64decode(all_lines[n][len(b"checkpoint ") :]).decode()
    other = CheckpointSigner(Ed25519PrivateKey.generate())
    body = note.partition("\n\n")[0].split("\n")
    forged = other.sign(int(body[1]), base64.b64decode(body[2]), dt.datetime.now(dt.UTC))
    all_lines[n] = b"checkpoint " + base64.b64encode(forged.encode()) + b"\n"
    report = run(write(tmp_path, all_lines), public_key)
    assert not report.ok
    assert "signature" in str(report.findings[0])


def test_receipt_contradicting_the_log_is_reported(built: dict[str, Any], public_key: Any, tmp_path: Path) -> None:
    """A provider's receipt proves what it delivered: a changed entry it covers is named by the receipt."""
    receipt = built["receipts"][2]  # entries 6..14
    all_lines = lines(built["export"])
    n = entry_line_no(all_lines, 8)
    prefix, body = split_entry(all_lines[n])
    body = body.replace(b"wettelijke-verplichting", b"toestemming")
    all_lines[n] = prefix + body + b"\n"
    report = run(write(tmp_path, all_lines), public_key, receipts=[receipt])
    assert report.first_bad_entry == 8
    assert "receipt" in str(report.findings[0])
    # and a tampered receipt does not verify on its own
    bad = json.loads(json.dumps(receipt))
    bad["inclusionProofs"][0]["hashes"][0] = base64.b64encode(b"\x01" * 32).decode()
    report = run(built["export"], public_key, receipts=[bad])
    assert not report.ok and "receipt 1 does not verify" in str(report.findings[0])


def test_personal_data_in_an_entry_is_reported(dev_pki: Path, public_key: Any, tmp_path: Path) -> None:
    """An entry with a personal identifier that got past the API guard still fails verification."""
    url = f"sqlite:///{tmp_path / 'p.sqlite3'}"
    migrate("audit", url)
    store = open_store(url, dev_pki)
    store.ensure_head()
    ev = events(1, "p")[0]
    ev.subject["client"] = {"geboorteDatum": "2010-01-01"}
    store.append([ev], INGEST_OIN)
    out = tmp_path / "p.export"
    with out.open("wb") as fh:
        export_log(store, fh)
    store.engine.dispose()
    report = run(out, public_key)
    assert report.first_bad_entry == 0
    assert "personal identifier" in str(report.findings[0])


# ---- the command line -----------------------------------------------------------------------

def test_cli_verify_ok_and_fail(built: dict[str, Any], dev_pki: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    key = str(dev_pki / "audit-log.pub")
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(built["receipts"][0]))
    ok = runner.invoke(cli, ["audit", "verify", str(built["export"]), "--key", key,
                             "-c", str(built["checkpoint"]), "-r", str(receipt)])
    assert ok.exit_code == 0, ok.output
    assert f"OK: {SIZE} entries" in ok.output
    all_lines = lines(built["export"])
    n = entry_line_no(all_lines, 13)
    all_lines[n] = all_lines[n].replace(b"b2-7", b"b2-8")
    bad = runner.invoke(cli, ["audit", "verify", str(write(tmp_path, all_lines)), "--key", key])
    assert bad.exit_code == 1
    assert "first bad entry: 13" in bad.output
    missing = runner.invoke(cli, ["audit", "verify", str(tmp_path / "nope"), "--key", key])
    assert missing.exit_code == 2


def test_cli_export_then_verify(built: dict[str, Any], dev_pki: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.export"
    res = runner.invoke(cli, ["audit", "export", str(out), "--database-url", built["url"]])
    assert res.exit_code == 0, res.output
    assert out.read_bytes() == built["export"].read_bytes()
    res = runner.invoke(cli, ["audit", "verify", str(out), "--key", str(dev_pki / "audit-log.pub")])
    assert res.exit_code == 0, res.output


def test_export_is_identical_on_postgresql_and_verifies(db_url: str, dev_pki: Path, tmp_path: Path,
                                                         public_key: Any) -> None:
    migrate("audit", db_url)
    store: AuditStore = open_store(db_url, dev_pki)
    store.ensure_head()
    for i, n in enumerate((4, 11, 1)):
        store.append(events(n, f"e{i}"), INGEST_OIN)
    out = tmp_path / "db.export"
    with out.open("wb") as fh:
        export_log(store, fh)
    store.engine.dispose()
    report = run(out, public_key)
    assert report.ok, report.findings
    assert report.entries == 16
