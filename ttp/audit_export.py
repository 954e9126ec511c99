"""The audit log's export file: what ``ttp audit export`` writes and ``ttp audit verify`` reads.

A line-oriented UTF-8 text file (LF line ends), chosen so that each entry's
exact leaf bytes appear verbatim and can be hashed as read, the file streams
(constant memory on both sides), and a person can inspect it with ``less``::

    ttp-audit-export 1
    origin <log origin>
    checkpoint <base64 of the signed note for tree size 0>
    entry <index> <base64 stored leaf hash> <canonical entry JSON>
    entry ...
    checkpoint <base64 of the signed note the log issued after that append>
    ...
    end <tree size>

* ``entry`` lines come in index order. The JSON after the second space is the
  leaf data itself (the Merkle leaf hash is SHA-256 of 0x00 followed by those
  bytes). The stored leaf hash is what the log's database claims; the
  verifier uses it only to pin down which entry was altered.
* ``checkpoint`` lines hold every checkpoint the log signed, each placed right
  after the entry that completes its tree size (C2SP tlog-checkpoint notes,
  base64 so each fits on one line). The last one is for the export's size.
* ``end`` closes the file; a missing trailer means a truncated export.

What the entries say is described in ``services/audit/README.md``. One field
matters for whoever keeps an export: ``subject.contentHash`` of a
``record-accepted`` or ``record-corrected`` entry is an HMAC-SHA256 keyed
with the key version ``subject.contentKeyVersion`` that only the TTP's
pseudonymise service holds (over the domain tag
``outcome-ttp/record-content/v1`` NUL and the record's canonical JSON). It
cannot be recomputed from a guessed BSN, birth date or postcode, so an
export holds nothing that identifies a person. Exports of a log with the
earlier origin ``outcome-ttp.example.nl/audit`` (whose content hashes were
unkeyed SHA-256 digests of whole records) do: keep them as personal data.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

MAGIC = "ttp-audit-export 1"


class ExportFormatError(ValueError):
    """A line of an export file is not in the documented format."""

    def __init__(self, line_no: int, message: str) -> None:
        super().__init__(f"line {line_no}: {message}")
        self.line_no = line_no


@dataclass(frozen=True)
class EntryLine:
    line_no: int
    index: int
    stored_hash: bytes
    body: bytes


@dataclass(frozen=True)
class CheckpointLine:
    line_no: int
    note: str


@dataclass(frozen=True)
class EndLine:
    line_no: int
    tree_size: int


ExportLine = EntryLine | CheckpointLine | EndLine


def header_lines(origin: str) -> list[bytes]:
    return [MAGIC.encode() + b"\n", b"origin " + origin.encode() + b"\n"]


def entry_line(index: int, stored_hash: bytes, body: bytes) -> bytes:
    return b"entry %d %s %s\n" % (index, base64.b64encode(stored_hash), body)


def checkpoint_line(note: str) -> bytes:
    return b"checkpoint " + base64.b64encode(note.encode()) + b"\n"


def end_line(tree_size: int) -> bytes:
    return b"end %d\n" % tree_size


def write_export(
    out: IO[bytes],
    origin: str,
    entries: Iterable[tuple[int, bytes, bytes]],
    checkpoints: Iterable[tuple[int, str]],
    tree_size: int,
) -> None:
    """Interleave entries and checkpoints (both ascending) into an export of ``tree_size``."""
    for line in header_lines(origin):
        out.write(line)
    cps = iter(checkpoints)
    pending = next(cps, None)
    written = 0
    while pending is not None and pending[0] <= written:
        out.write(checkpoint_line(pending[1]))
        pending = next(cps, None)
    for index, stored_hash, body in entries:
        out.write(entry_line(index, stored_hash, body))
        written = index + 1
        while pending is not None and pending[0] <= written:
            out.write(checkpoint_line(pending[1]))
            pending = next(cps, None)
    out.write(end_line(tree_size))


def read_header(lines: Iterator[tuple[int, bytes]]) -> str:
    """Check the magic line and return the origin."""
    first = next(lines, None)
    if first is None or first[1].rstrip(b"\n") != MAGIC.encode():
        raise ExportFormatError(1, f"not an audit export (expected {MAGIC!r})")
    second = next(lines, None)
    if second is None or not second[1].startswith(b"origin "):
        raise ExportFormatError(2, "missing origin line")
    return second[1][len(b"origin ") :].rstrip(b"\n").decode()


def parse_line(line_no: int, raw: bytes) -> ExportLine:
    """One body line of an export."""
    if not raw.endswith(b"\n"):
        raise ExportFormatError(line_no, "line is not terminated (truncated file?)")
    line = raw[:-1]
    tag, _, rest = line.partition(b" ")
    if tag == b"entry":
        parts = rest.split(b" ", 2)
        if len(parts) != 3 or not parts[0].isdigit():
            raise ExportFormatError(line_no, "entry line needs an index, a leaf hash and the entry")
        try:
            stored = base64.b64decode(parts[1], validate=True)
        except binascii.Error as exc:
            raise ExportFormatError(line_no, "stored leaf hash is not base64") from exc
        return EntryLine(line_no, int(parts[0]), stored, parts[2])
    if tag == b"checkpoint":
        try:
            note = base64.b64decode(rest, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ExportFormatError(line_no, "checkpoint is not base64 of a UTF-8 note") from exc
        return CheckpointLine(line_no, note)
    if tag == b"end":
        if not rest.isdigit():
            raise ExportFormatError(line_no, "end line needs the tree size")
        return EndLine(line_no, int(rest))
    raise ExportFormatError(line_no, "unknown line type")


def numbered(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Lines of a binary file with 1-based line numbers."""
    yield from enumerate(fh, start=1)
