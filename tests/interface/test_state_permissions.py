"""After a run, nothing in the state directory is readable by anyone but its owner.

The shared cluster of this package has by now served the fuzzer, the problem
checks and a provider's delivery, so its state holds SQLite databases with
their -wal and -shm files, log files, the PKI, the HMAC key and the audit log's
signing key. The cluster was set up by this test process, whose umask is the
usual 022, so this also shows that each place that makes a state file gives it
an owner-only mode itself. The control: a file made the usual way is caught.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.helpers.cluster import Cluster
from tests.helpers.state_files import loose_permissions
from ttp.db import make_engine


def test_no_state_file_is_readable_by_group_or_others(live: Cluster) -> None:
    files = {p.relative_to(live.home).as_posix() for p in live.home.rglob("*") if p.is_file()}
    assert {"db/audit.sqlite3", "db/audit.sqlite3-wal", "log/audit.log", "keys/v1.key", "pki/audit-log.key",
            "pki/ca.pem"} <= files, sorted(files)
    assert not loose_permissions(live.home)


def test_control_sqlite_with_the_usual_umask_makes_a_readable_database(tmp_path: Path) -> None:
    """How the files were made before (SQLite's own create under umask 022), against make_engine now."""
    old = os.umask(0o022)
    try:
        sqlite3.connect(tmp_path / "plain.sqlite3").execute("CREATE TABLE t (x)").connection.close()
        engine = make_engine(f"sqlite:///{tmp_path / 'private' / 'ttp.sqlite3'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            loose_during = loose_permissions(tmp_path / "private")  # -wal and -shm exist while connected
        engine.dispose()
    finally:
        os.umask(old)
    tmp_path.chmod(0o700)
    assert loose_permissions(tmp_path) == ["plain.sqlite3 -rw-r--r--"]
    assert loose_during == []


def test_a_database_an_earlier_version_left_readable_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert oct(db.stat().st_mode & 0o777) == "0o600"
