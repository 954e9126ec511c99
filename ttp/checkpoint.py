"""Signed checkpoints in the C2SP tlog-checkpoint format (a C2SP signed note).

We use the public formats rather than one of our own so that standard
transparency-log tooling and witnesses can read and cosign our checkpoints:

* c2sp.org/tlog-checkpoint: the note body is the origin line, the tree size
  in decimal, the base64 root hash, then optional extension lines. We add one
  extension line, ``time <RFC 3339 UTC>``, the moment the log signed it.
* c2sp.org/signed-note: the body (which ends with a newline) is followed by a
  blank line and signature lines ``— <key name> <base64(key id || signature)>``
  (U+2014 em dash). For Ed25519 the key id is the first four bytes of
  ``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)`` and the signature
  is over the body bytes exactly.

Example::

    outcome-ttp.example.nl/audit/v2
    1024
    3q2+7w...=
    time 2026-07-01T10:00:00.000000Z

    — outcome-ttp.example.nl/audit/v2 Ab3dEf...

The verifier key in signed-note form (``<name>+<hex key id>+<base64(0x01 ||
public key)>``) is what an auditor or witness configures to trust this log.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: The log's origin line and key name. Unique per log instance, per tlog-checkpoint.
#: ``/v2``: the log whose record entries carry only keyed content hashes. Logs of the
#: earlier origin (``outcome-ttp.example.nl/audit``) held unkeyed SHA-256 digests of
#: whole records and are not continued (``services/audit/README.md``, "Log origins").
DEFAULT_ORIGIN = "outcome-ttp.example.nl/audit/v2"
ED25519_ALGORITHM = 0x01
SIGNATURE_PREFIX = "\u2014 "
TIME_EXTENSION = "time "
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class CheckpointError(ValueError):
    """A checkpoint is malformed, or its signature is missing or wrong."""


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds: the log's one way of writing a time."""
    return moment.astimezone(dt.UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """signed-note key id: first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_ALGORITHM]) + raw).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The signed-note verifier key string ``<name>+<hex id>+<base64(0x01 || key)>``."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = base64.b64encode(bytes([ED25519_ALGORITHM]) + raw).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{blob}"


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """Name and public key of a signed-note verifier key string; checks the embedded key id."""
    try:
        # key names never contain "+" (signed-note); the base64 key may
        name, hex_id, blob = vkey.strip().split("+", 2)
        raw = base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise CheckpointError("not a signed-note verifier key") from exc
    if len(raw) != 33 or raw[0] != ED25519_ALGORITHM:
        raise CheckpointError("verifier key is not an Ed25519 key")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, public_key).hex() != hex_id.lower():
        raise CheckpointError("verifier key id does not match its name and key")
    return name, public_key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The log's signing key (PKCS#8 PEM, written by ``ttp pki init``)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The log's public key from a PEM file or a signed-note verifier key file."""
    data = path.read_bytes()
    if b"-----BEGIN" not in data:
        return parse_verifier_key(data.decode())[1]
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} is not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class Checkpoint:
    """The signed body of a checkpoint: what the log commits to."""

    origin: str
    tree_size: int
    root_hash: bytes
    time: dt.datetime | None = None

    def body(self) -> str:
        """The note text that is signed, ending with a newline."""
        lines = [self.origin, str(self.tree_size), base64.b64encode(self.root_hash).decode()]
        if self.time is not None:
            lines.append(TIME_EXTENSION + format_time(self.time))
        return "\n".join(lines) + "\n"


class CheckpointSigner:
    """Signs checkpoints with the log key; one per log process."""

    def __init__(self, private_key: Ed25519PrivateKey, origin: str = DEFAULT_ORIGIN) -> None:
        self.private_key = private_key
        self.origin = origin
        self.public_key = private_key.public_key()
        self._key_id = key_id(origin, self.public_key)

    def sign(self, tree_size: int, root_hash: bytes, time: dt.datetime) -> str:
        """The full signed note for this tree head."""
        body = Checkpoint(self.origin, tree_size, root_hash, time).body()
        signature = self.private_key.sign(body.encode())
        blob = base64.b64encode(self._key_id + signature).decode()
        return f"{body}\n{SIGNATURE_PREFIX}{self.origin} {blob}\n"

    def verifier_key(self) -> str:
        return verifier_key(self.origin, self.public_key)


def parse_checkpoint(note: str) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its checkpoint and ``(name, key id, signature)`` lines.

    Does not check signatures; ``verify_checkpoint`` does.
    """
    if "\r" in note:
        raise CheckpointError("checkpoint contains a carriage return")
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise CheckpointError("checkpoint has no blank line before its signatures")
    lines = body.split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint body needs origin, tree size and root hash lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise CheckpointError("checkpoint origin line is empty")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError("checkpoint tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("checkpoint root hash is not base64") from exc
    if len(root) != 32:
        raise CheckpointError("checkpoint root hash is not 32 bytes")
    moment: dt.datetime | None = None
    for ext in extensions:
        if not ext:
            raise CheckpointError("checkpoint has an empty extension line")
        if ext.startswith(TIME_EXTENSION):
            try:
                moment = parse_time(ext[len(TIME_EXTENSION) :])
            except ValueError as exc:
                raise CheckpointError("checkpoint time extension is malformed") from exc
    signatures: list[tuple[str, bytes, bytes]] = []
    if not sigs.endswith("\n"):
        raise CheckpointError("checkpoint does not end with a newline")
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError("checkpoint signature line does not start with an em dash")
        try:
            name, blob = line[len(SIGNATURE_PREFIX) :].split(" ")
            raw = base64.b64decode(blob, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise CheckpointError("checkpoint signature line is malformed") from exc
        if len(raw) < 5:
            raise CheckpointError("checkpoint signature is too short")
        signatures.append((name, raw[:4], raw[4:]))
    if not signatures:
        raise CheckpointError("checkpoint carries no signature")
    return Checkpoint(origin, int(size_text), root, moment), signatures


def verify_checkpoint(note: str, public_key: Ed25519PublicKey, origin: str | None = None) -> Checkpoint:
    """Parse a checkpoint and require a valid Ed25519 signature by the log key.

    The signature must be under the key name equal to the origin (or ``origin``
    if given), with the matching key id; cosignatures by witnesses may follow
    and are ignored here.
    """
    checkpoint, signatures = parse_checkpoint(note)
    name = origin or checkpoint.origin
    if checkpoint.origin != name:
        raise CheckpointError(f"checkpoint is for origin {checkpoint.origin!r}, expected {name!r}")
    wanted_id = key_id(name, public_key)
    body = note.partition("\n\n")[0] + "\n"
    for sig_name, sig_id, signature in signatures:
        if sig_name == name and sig_id == wanted_id:
            try:
                public_key.verify(signature, body.encode())
            except InvalidSignature as exc:
                raise CheckpointError("checkpoint signature is not valid for the log key") from exc
            return checkpoint
    raise CheckpointError("checkpoint carries no signature by the log key")
