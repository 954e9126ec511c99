"""Offline verification of the audit log: an export, checkpoints, receipts, consistency.

Runs without the audit service or its database, so an auditor can check the
log on their own machine with only the log's public key. What it establishes:

* every checkpoint (in the export, given separately, or inside a receipt) is
  signed by the log key;
* the entries, hashed as read, rebuild exactly the root of every checkpoint,
  so no entry was changed, dropped, inserted or reordered since it was
  logged;
* each entry is well formed: its ``index`` is its position, it is canonical
  JSON, timestamps never go backwards, and it names no personal identifier;
* every inclusion proof in a receipt leads to its signed root and matches the
  entry at that index.

On failure it names the first bad entry. Entries carry their own index, so a
dropped, inserted or swapped entry is caught at its position. A changed entry
is caught when the next checkpoint's root does not match; the verifier then
replays that stretch with the leaf hashes the log's database stored: if those
rebuild the signed root they are authentic, and the first entry whose content
no longer hashes to its stored hash is the altered one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ttp.audit_batches import BatchLedger
from ttp.audit_entry_format import canonical_json, personal_data_paths
from ttp.audit_events import EVENT_KINDS
from ttp.audit_export import (
    CheckpointLine,
    EndLine,
    EntryLine,
    ExportFormatError,
    numbered,
    parse_line,
    read_header,
)
from ttp.checkpoint import Checkpoint, CheckpointError, parse_time, verify_checkpoint
from ttp.merkle import CompactRange, ProofError, leaf_hash, verify_consistency, verify_inclusion

ENTRY_KEYS = {"index", "timestamp", "kind", "actorOin", "recordedBy", "subject"}
OPTIONAL_KEYS = {"idempotencyKey", "relayedBy"}


@dataclass(frozen=True)
class Finding:
    """One thing wrong, located as precisely as the evidence allows."""

    message: str
    entry: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = []
        if self.entry is not None:
            where.append(f"entry {self.entry}")
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass
class Report:
    """Outcome of a verification run."""

    entries: int = 0
    checkpoints: int = 0
    receipts: int = 0
    proofs: int = 0
    tree_size: int | None = None
    root_hash: bytes | None = None
    findings: list[Finding] = field(default_factory=list)
    #: Delivered batches by what the log shows of them: stored, or prepared and abandoned.
    #: Not a finding: an abandoned batch is an honest log of a delivery the TTP never acknowledged.
    batches: BatchLedger = field(default_factory=BatchLedger)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_bad_entry(self) -> int | None:
        located = [f.entry for f in self.findings if f.entry is not None]
        return min(located) if located else None


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@dataclass
class ReceiptCheck:
    """A receipt's signed root and the leaves it vouches for, checked against the export."""

    checkpoint: Checkpoint
    leaves: dict[int, bytes]
    source: str


def verify_receipt(
    receipt: dict[str, Any], public_key: Ed25519PublicKey, *, sample: int | None = None, origin: str | None = None
) -> ReceiptCheck:
    """Check a batch receipt on its own: signed checkpoint, matching head, inclusion proofs.

    ``sample`` limits the proofs checked to that many (first and last first),
    which is what a service does on its hot path; auditors check all.
    Raises ``ProofError`` or ``CheckpointError`` on the first failure.
    """
    checkpoint = verify_checkpoint(str(receipt["checkpoint"]), public_key, origin)
    if int(receipt["treeSize"]) != checkpoint.tree_size:
        raise ProofError("receipt treeSize differs from its checkpoint")
    if _b64(str(receipt["rootHash"])) != checkpoint.root_hash:
        raise ProofError("receipt rootHash differs from its checkpoint")
    proofs: Sequence[dict[str, Any]] = receipt.get("inclusionProofs") or []
    if sample is not None and len(proofs) > sample:
        proofs = [proofs[0], proofs[-1], *proofs[1 : max(1, sample - 1)]][:sample]
    leaves: dict[int, bytes] = {}
    for proof in proofs:
        index, size = int(proof["leafIndex"]), int(proof["treeSize"])
        if size != checkpoint.tree_size:
            raise ProofError(f"proof of leaf {index} is for another tree size")
        leaf = _b64(str(proof["leafHash"]))
        verify_inclusion(leaf, index, size, [_b64(h) for h in proof["hashes"]], checkpoint.root_hash)
        leaves[index] = leaf
    return ReceiptCheck(checkpoint, leaves, "receipt")


class _Stretch:
    """Entries since the last checkpoint whose root matched: the unverified tail."""

    def __init__(self, base: CompactRange) -> None:
        self.base = base
        self.recomputed: list[bytes] = []
        self.stored: list[bytes] = []
        self.out_of_order: Finding | None = None

    @property
    def end(self) -> int:
        return self.base.size + len(self.recomputed)

    def root_at(self, size: int, *, stored: bool = False) -> bytes:
        hashes = self.stored if stored else self.recomputed
        return self.base.extended(hashes[: size - self.base.size]).root()

    def locate(self, size: int, signed_root: bytes, *, confirmed: int | None = None) -> Finding:
        """Name the first altered entry below ``size`` in this stretch.

        ``confirmed`` is given when ``signed_root`` comes from outside the export
        (an auditor's checkpoint, a receipt): then the export's own checkpoints
        may be the other side of a fork, signed by the same key, and cannot
        bound the range; only the last size external evidence confirmed can.
        """
        start = self.base.size
        mismatch = next(
            (start + i for i in range(size - start) if self.recomputed[i] != self.stored[i]), None
        )
        if self.root_at(size, stored=True) == signed_root:
            if mismatch is None:  # pragma: no cover - impossible: stored == recomputed gives the same root
                return Finding(f"entries {start}..{size - 1} do not rebuild the signed root", start)
            return Finding("entry content was altered: it no longer hashes to the leaf hash the log "
                           "stored, and the stored hashes rebuild the signed root", mismatch)
        if mismatch is not None:
            return Finding("entry content was altered (its stored leaf hash was altered too, so the "
                           "checkpoint cannot confirm which; this is the first entry that differs)", mismatch)
        if confirmed is not None:
            return Finding(f"the export is not the log that signed this root: it forked or was rewritten "
                           f"at one of entries {confirmed}..{size - 1} (the last size independently "
                           f"confirmed is {confirmed})", confirmed)
        return Finding(f"entries {start}..{size - 1} and their stored leaf hashes were altered "
                       "consistently; the first bad entry is in this range", start)

    def advance(self, size: int) -> None:
        """Accept everything below ``size`` as verified."""
        k = size - self.base.size
        self.base = self.base.extended(self.recomputed[:k])
        del self.recomputed[:k]
        del self.stored[:k]


class ExportVerifier:
    """Streams an export once and checks it against every checkpoint and receipt it is given."""

    def __init__(
        self,
        public_key: Ed25519PublicKey,
        *,
        checkpoints: Sequence[str] = (),
        receipts: Sequence[dict[str, Any]] = (),
        origin: str | None = None,
    ) -> None:
        self.public_key = public_key
        self.origin = origin
        self.report = Report()
        #: The largest tree size whose root an external checkpoint or receipt confirmed.
        self.confirmed = 0
        self.external: dict[int, list[tuple[bytes, str]]] = {}
        self.receipt_leaves: dict[int, list[tuple[bytes, str]]] = {}
        for i, note in enumerate(checkpoints, start=1):
            self._add_external(note, f"checkpoint {i}")
        for i, receipt in enumerate(receipts, start=1):
            try:
                check = verify_receipt(receipt, public_key, origin=origin)
            except (CheckpointError, ProofError, KeyError, ValueError, binascii.Error) as exc:
                self.report.findings.append(Finding(f"receipt {i} does not verify: {exc}"))
                continue
            self.report.receipts += 1
            self.report.proofs += len(check.leaves)
            self.external.setdefault(check.checkpoint.tree_size, []).append(
                (check.checkpoint.root_hash, f"receipt {i}"))
            for index, leaf in check.leaves.items():
                self.receipt_leaves.setdefault(index, []).append((leaf, f"receipt {i}"))

    def _add_external(self, note: str, source: str) -> None:
        try:
            cp = verify_checkpoint(note, self.public_key, self.origin)
        except CheckpointError as exc:
            self.report.findings.append(Finding(f"{source} does not verify: {exc}"))
            return
        self.report.checkpoints += 1
        self.external.setdefault(cp.tree_size, []).append((cp.root_hash, source))

    def verify(self, path: Path) -> Report:
        if self.report.findings:
            return self.report
        with path.open("rb") as fh:
            try:
                self._run(numbered(fh))
            except ExportFormatError as exc:
                self.report.findings.append(Finding(str(exc), self.report.entries, exc.line_no))
        return self.report

    def _fail(self, finding: Finding) -> None:
        self.report.findings.append(finding)

    def _run(self, lines: Iterator[tuple[int, bytes]]) -> None:
        origin = read_header(lines)
        if self.origin is None:
            self.origin = origin
        elif origin != self.origin:
            self._fail(Finding(f"export is of log {origin!r}, expected {self.origin!r}"))
            return
        stretch = _Stretch(CompactRange.empty())
        if not self._check_external(stretch, 0, 2):
            return
        last_time = ""
        last_checkpoint: int | None = None
        ended = False
        for line_no, raw in lines:
            if ended:
                self._fail(Finding("content after the end line", stretch.end, line_no))
                return
            item = parse_line(line_no, raw)
            if isinstance(item, EntryLine):
                position = stretch.end
                problem = self._check_entry(item, position)
                if problem is not None:
                    self._fail(problem)
                    return
                stamp = orjson.loads(item.body)["timestamp"]
                if stamp < last_time and stretch.out_of_order is None:
                    # Held back: a later timestamp on the entry before is just as likely the
                    # alteration; the checkpoint decides, and this only counts if it matches.
                    stretch.out_of_order = Finding("entry timestamp is earlier than the entry before it",
                                                   position, item.line_no)
                last_time = stamp
                recomputed = leaf_hash(item.body)
                stretch.recomputed.append(recomputed)
                stretch.stored.append(item.stored_hash)
                self.report.entries += 1
                if not self._check_external(stretch, stretch.end, line_no):
                    return
            elif isinstance(item, CheckpointLine):
                if not self._check_embedded(stretch, item):
                    return
                last_checkpoint = stretch.end
            elif isinstance(item, EndLine):
                if item.tree_size != stretch.end:
                    self._fail(Finding(f"end line says {item.tree_size} entries, the export holds "
                                       f"{stretch.end}", min(item.tree_size, stretch.end), line_no))
                    return
                ended = True
        size = stretch.end
        if not ended:
            self._fail(Finding("export has no end line: it is truncated", size))
            return
        if last_checkpoint != size:
            self._fail(Finding("no checkpoint signed for the export's tree size", size))
            return
        beyond = [s for s in self.external if s > size]
        if beyond:
            self._fail(Finding(f"a checkpoint or receipt covers {max(beyond)} entries but the export "
                               f"ends at {size}: entries are missing", size))
            return
        if stretch.stored != stretch.recomputed:  # pragma: no cover - caught at the last checkpoint
            self._fail(stretch.locate(size, stretch.root_at(size)))
            return
        self.report.tree_size = size
        self.report.root_hash = stretch.base.root()

    def _check_entry(self, item: EntryLine, position: int) -> Finding | None:
        """Structural checks of one entry that need no hashing."""
        if item.index > position:
            return Finding(f"entry {position} is missing or moved: entry {item.index} is in its place",
                           position, item.line_no)
        if item.index < position:
            return Finding(f"entry {item.index} appears again at position {position}: an entry was "
                           "inserted or duplicated", item.index, item.line_no)
        try:
            doc = orjson.loads(item.body)
        except orjson.JSONDecodeError:
            return Finding("entry is not valid JSON", position, item.line_no)
        if not isinstance(doc, dict):
            return Finding("entry is not a JSON object", position, item.line_no)
        keys = set(doc)
        if not keys >= ENTRY_KEYS or keys - ENTRY_KEYS - OPTIONAL_KEYS:
            return Finding("entry does not have exactly the entry fields", position, item.line_no)
        if doc["index"] != position:
            return Finding(f"entry says it is entry {doc['index']} but is at position {position}",
                           position, item.line_no)
        if canonical_json(doc) != item.body:
            return Finding("entry is not in canonical form (sorted keys, no whitespace)", position,
                           item.line_no)
        if doc["kind"] not in EVENT_KINDS:
            return Finding("entry has an unknown kind", position, item.line_no)
        try:
            parse_time(str(doc["timestamp"]))
        except ValueError:
            return Finding("entry timestamp is malformed", position, item.line_no)
        personal = personal_data_paths(doc["subject"], "/subject")
        if personal:
            return Finding(f"entry holds a personal identifier at {personal[0]}", position, item.line_no)
        self.report.batches.add(position, str(doc["kind"]), doc["subject"])
        for leaf, source in self.receipt_leaves.get(position, []):
            if leaf != leaf_hash(item.body):
                return Finding(f"entry differs from the one {source} proved was logged", position,
                               item.line_no)
        return None

    def _check_embedded(self, stretch: _Stretch, item: CheckpointLine) -> bool:
        try:
            cp = verify_checkpoint(item.note, self.public_key, self.origin)
        except CheckpointError as exc:
            self._fail(Finding(f"embedded checkpoint does not verify: {exc}", stretch.end, item.line_no))
            return False
        self.report.checkpoints += 1
        if cp.tree_size != stretch.end:
            first = min(cp.tree_size, stretch.end)
            self._fail(Finding(f"checkpoint for {cp.tree_size} entries follows entry {stretch.end - 1}: "
                               "entries were dropped or inserted", first, item.line_no))
            return False
        return self._check_root(stretch, cp.tree_size, cp.root_hash, "its checkpoint", item.line_no)

    def _check_external(self, stretch: _Stretch, size: int, line_no: int) -> bool:
        for root, source in self.external.get(size, []):
            if not self._check_root(stretch, size, root, source, line_no, external=True):
                return False
            self.confirmed = size
        return True

    def _check_root(
        self, stretch: _Stretch, size: int, root: bytes, source: str, line_no: int, *, external: bool = False
    ) -> bool:
        if stretch.root_at(size) == root:
            stored_bad = next((stretch.base.size + i for i in range(size - stretch.base.size)
                               if stretch.stored[i] != stretch.recomputed[i]), None)
            if stored_bad is not None:
                self._fail(Finding("the log's stored leaf hash was altered (the entry itself matches "
                                   f"{source})", stored_bad))
                return False
            order = stretch.out_of_order
            if order is not None and order.entry is not None and order.entry < size:
                self._fail(order)
                return False
            stretch.advance(size)
            return True
        finding = stretch.locate(size, root, confirmed=self.confirmed if external else None)
        self._fail(Finding(f"{finding.message} [root of {size} entries differs from {source}]",
                           finding.entry, line_no if finding.entry is None else None))
        return False


def verify_export(
    path: Path,
    public_key: Ed25519PublicKey,
    *,
    checkpoints: Sequence[str] = (),
    receipts: Sequence[dict[str, Any]] = (),
    origin: str | None = None,
) -> Report:
    """Verify an export file; see the module docstring for what is checked."""
    return ExportVerifier(public_key, checkpoints=checkpoints, receipts=receipts, origin=origin).verify(path)


def verify_checkpoint_consistency(
    old_note: str,
    new_note: str,
    public_key: Ed25519PublicKey,
    proof: Sequence[bytes],
    *,
    origin: str | None = None,
) -> tuple[Checkpoint, Checkpoint]:
    """Check that the log of ``new_note`` extends the log of ``old_note`` (no fork, no rewrite)."""
    old = verify_checkpoint(old_note, public_key, origin)
    new = verify_checkpoint(new_note, public_key, origin or old.origin)
    verify_consistency(old.tree_size, new.tree_size, proof, old.root_hash, new.root_hash)
    return old, new


def load_proof_hashes(doc: dict[str, Any]) -> list[bytes]:
    """The hashes of a proof document as served by ``/v1/audit/proofs/consistency``."""
    return [_b64(str(h)) for h in doc["hashes"]]
