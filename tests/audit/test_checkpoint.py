"""Checkpoints are C2SP signed notes that standard tooling reads: format, key id, signature."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ttp.checkpoint import (
    CheckpointError,
    CheckpointSigner,
    key_id,
    parse_checkpoint,
    parse_verifier_key,
    verifier_key,
    verify_checkpoint,
)

# The worked example of golang.org/x/mod/sumdb/note (the signed-note reference implementation).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SEED = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="

ROOT = hashlib.sha256(b"root").digest()
WHEN = dt.datetime(2026, 7, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)


def test_key_id_and_signature_match_the_go_reference_vector() -> None:
    name, public = parse_verifier_key(GO_VKEY)
    assert name == "PeterNeumann"
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(name, public) == hashlib.sha256(b"PeterNeumann\n\x01" + raw).digest()[:4]
    assert key_id(name, public).hex() == "c74f20a3"
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(GO_SEED)[1:])
    assert verifier_key(name, private.public_key()) == GO_VKEY
    line = base64.b64encode(key_id(name, public) + private.sign(GO_TEXT.encode())).decode()
    assert line == GO_SIG


def test_verifier_keys_round_trip_whatever_their_base64() -> None:
    """Base64 may contain '+', the field separator: parsing must not split inside it."""
    seen_plus = 0
    for _ in range(200):
        key = Ed25519PrivateKey.generate().public_key()
        vkey = verifier_key("example.org/log", key)
        seen_plus += "+" in vkey.split("+", 2)[2]
        assert parse_verifier_key(vkey) == ("example.org/log", key)
    assert seen_plus > 0


def test_checkpoint_text_format() -> None:
    signer = CheckpointSigner(Ed25519PrivateKey.generate(), origin="example.org/log")
    note = signer.sign(42, ROOT, WHEN)
    body, sig = note.split("\n\n")
    assert body.split("\n") == [
        "example.org/log", "42", base64.b64encode(ROOT).decode(), "time 2026-07-01T10:00:00.123456Z",
    ]
    assert sig.startswith("\u2014 example.org/log ") and sig.endswith("\n") and sig.count("\n") == 1
    blob = base64.b64decode(sig.split(" ")[2])
    assert blob[:4] == key_id("example.org/log", signer.public_key)
    signer.public_key.verify(blob[4:], (body + "\n").encode())
    cp = verify_checkpoint(note, signer.public_key)
    assert (cp.origin, cp.tree_size, cp.root_hash, cp.time) == ("example.org/log", 42, ROOT, WHEN)
    assert parse_verifier_key(signer.verifier_key())[1] == signer.public_key


def test_cosignatures_are_tolerated() -> None:
    signer = CheckpointSigner(Ed25519PrivateKey.generate())
    witness = Ed25519PrivateKey.generate()
    note = signer.sign(1, ROOT, WHEN)
    body = note.partition("\n\n")[0] + "\n"
    cosig = base64.b64encode(key_id("witness", witness.public_key()) + witness.sign(body.encode())).decode()
    verify_checkpoint(note + f"\u2014 witness {cosig}\n", signer.public_key)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda n: n.replace("\n42\n", "\n43\n"),                       # tree size
        lambda n: n.replace("time 2026", "time 2027"),                 # signed time
        lambda n: n.replace("example.org/log\n", "example.org/other\n", 1),  # origin
        lambda n: n.replace("\u2014 ", "- "),                           # not a signature line
        lambda n: n.partition("\n\n")[0] + "\n",                        # signature stripped
        lambda n: n.replace("\n\n", "\n"),                              # no blank line
        lambda n: n.rstrip("\n"),                                       # no final newline
        lambda n: n.replace("\n", "\r\n"),                              # CRLF
    ],
)
def test_any_change_to_a_checkpoint_is_rejected(mutate: object) -> None:
    signer = CheckpointSigner(Ed25519PrivateKey.generate(), origin="example.org/log")
    note = signer.sign(42, ROOT, WHEN)
    assert callable(mutate)
    with pytest.raises(CheckpointError):
        verify_checkpoint(mutate(note), signer.public_key, origin="example.org/log")


def test_other_key_or_root_bytes_are_rejected() -> None:
    signer = CheckpointSigner(Ed25519PrivateKey.generate())
    note = signer.sign(7, ROOT, WHEN)
    with pytest.raises(CheckpointError, match="no signature by the log key"):
        verify_checkpoint(note, Ed25519PrivateKey.generate().public_key())
    bad_root = note.replace(base64.b64encode(ROOT).decode(), base64.b64encode(b"\x00" * 32).decode())
    with pytest.raises(CheckpointError, match="not valid"):
        verify_checkpoint(bad_root, signer.public_key)
    with pytest.raises(CheckpointError, match="32 bytes"):
        parse_checkpoint(note.replace(base64.b64encode(ROOT).decode(), base64.b64encode(b"x").decode()))
    with pytest.raises(CheckpointError):
        parse_verifier_key(GO_VKEY.replace("c74f20a3", "c74f20a4"))
