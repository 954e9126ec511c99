"""A forked log (two histories under one key) is caught; an honest log's checkpoints are consistent.

The fork is made the way an insider would: copy the log's database, then let
the copy and the original grow apart while both sign with the log key.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from services.audit.export import export_log
from services.audit.store import AuditStore
from tests.audit.conftest import INGEST_OIN, events, open_store
from ttp.audit_verify import verify_export
from ttp.cli.main import app as cli
from ttp.db import migrate


def proof_doc(store: AuditStore, old: int, new: int) -> dict[str, Any]:
    import base64

    return {"fromTreeSize": old, "toTreeSize": new,
            "hashes": [base64.b64encode(h).decode() for h in store.consistency_proof(old, new)]}


@pytest.fixture
def fork(tmp_path: Path, dev_pki: Path) -> dict[str, Any]:
    url_a = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    migrate("audit", url_a)
    a = open_store(url_a, dev_pki)
    a.ensure_head()
    for i, n in enumerate((4, 6, 3)):
        a.append(events(n, f"shared{i}"), INGEST_OIN)
    a.engine.dispose()
    shutil.copy(tmp_path / "a.sqlite3", tmp_path / "b.sqlite3")
    b = open_store(f"sqlite:///{tmp_path / 'b.sqlite3'}", dev_pki)
    a = open_store(url_a, dev_pki)
    old_a = a.head().checkpoint
    a.append(events(5, "only-a"), INGEST_OIN)
    b.append(events(2, "only-b"), INGEST_OIN)
    b.append(events(9, "only-b2"), INGEST_OIN)
    files = {}
    for name, note in (("old_a", old_a), ("a", a.head().checkpoint), ("b", b.head().checkpoint)):
        files[name] = tmp_path / f"{name}.checkpoint"
        files[name].write_text(note)
    files["proof_a"] = tmp_path / "proof_a.json"
    files["proof_a"].write_text(json.dumps(proof_doc(a, 13, 18)))
    files["proof_b"] = tmp_path / "proof_b.json"
    files["proof_b"].write_text(json.dumps(proof_doc(b, 18, 24)))
    files["export_b"] = tmp_path / "b.export"
    with files["export_b"].open("wb") as fh:
        export_log(b, fh)
    a.engine.dispose()
    b.engine.dispose()
    return files


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", "verify", *args])


def test_honest_growth_is_consistent(fork: dict[str, Any], dev_pki: Path) -> None:
    key = str(dev_pki / "audit-log.pub")
    res = invoke("--consistency", str(fork["old_a"]), str(fork["a"]), "--proof", str(fork["proof_a"]),
                 "--key", key)
    assert res.exit_code == 0, res.output
    assert "extends the log at size 13" in res.output


def test_fork_is_detected_by_a_consistency_proof(fork: dict[str, Any], dev_pki: Path) -> None:
    """The auditor saw A at 18; B at 24 cannot prove it extends that."""
    key = str(dev_pki / "audit-log.pub")
    res = invoke("--consistency", str(fork["a"]), str(fork["b"]), "--proof", str(fork["proof_b"]), "--key", key)
    assert res.exit_code == 1
    assert "FAIL" in res.output


def test_fork_is_detected_in_an_export_at_the_first_divergent_entry(fork: dict[str, Any], public_key: Any,
                                                                    dev_pki: Path) -> None:
    # with only A's checkpoint at 18, the fork is somewhere below 18 (B signed its own prefix too)
    report = verify_export(fork["export_b"], public_key, checkpoints=[fork["a"].read_text()])
    assert not report.ok
    assert report.first_bad_entry == 0 and "0..17" in str(report.findings[0])
    # with the auditor's earlier checkpoint at 13 as well, it is pinned to the first entry after the copy
    report = verify_export(fork["export_b"], public_key,
                           checkpoints=[fork["old_a"].read_text(), fork["a"].read_text()])
    assert report.first_bad_entry == 13
    key = str(dev_pki / "audit-log.pub")
    res = invoke(str(fork["export_b"]), "--consistency", str(fork["a"]), str(fork["b"]), "--key", key,
                 "-c", str(fork["old_a"]))
    assert res.exit_code == 1 and "first bad entry: 13" in res.output
    # while B's export on its own is a perfectly valid log: only the auditor's checkpoint exposes it
    assert verify_export(fork["export_b"], public_key).ok


def test_consistency_needs_a_proof_or_an_export(fork: dict[str, Any], dev_pki: Path) -> None:
    res = invoke("--consistency", str(fork["old_a"]), str(fork["a"]), "--key", str(dev_pki / "audit-log.pub"))
    assert res.exit_code == 2
