"""Submitted identifiers in hashed form, for the suite's privacy greps.

A BSN, a fallback key or a whole record is as good as stored when its
unkeyed SHA-256 is: anyone can hash a guess and compare. So besides the
identifiers themselves the greps look for the SHA-256 (hex and base64) of
each submitted BSN, each fallback key (``gender|birthDate|postcode``, as
pseudonymise normalises it) and each record's canonical form (the form the
content hash used to be an unkeyed hash of).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from services.ingest.minimise import canonical_content

HEX64 = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
BASE64_32 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=")


def sha256_forms(text: str) -> set[str]:
    """The SHA-256 of ``text`` (UTF-8) as lower-case hex and as base64."""
    digest = hashlib.sha256(text.encode()).digest()
    return {digest.hex(), base64.b64encode(digest).decode()}


def old_content_hash(rec: dict[str, Any]) -> str:
    """The ``contentHash`` as versions before the keyed one stored it: plain SHA-256 of the canonical record."""
    return hashlib.sha256(canonical_content(rec).encode()).hexdigest()


def fallback_key(rec: dict[str, Any]) -> str | None:
    """The fallback key of a raw record as pseudonymise normalises it, or None if it lacks a part."""
    parts = (rec.get("gender"), rec.get("birthDate"), rec.get("postcode"))
    if not all(isinstance(p, str) for p in parts):
        return None
    return "|".join(str(p).replace(" ", "").upper() for p in parts)


def hashed_identifiers(records: Iterable[Any]) -> set[str]:
    """Hex and base64 SHA-256 of every submitted BSN, fallback key and canonical record."""
    found: set[str] = set()
    for rec in records:
        if not isinstance(rec, dict):
            continue
        if isinstance(rec.get("bsn"), str):
            found |= sha256_forms(rec["bsn"])
        key = fallback_key(rec)
        if key is not None:
            found |= sha256_forms(key)
        with contextlib.suppress(ValidationError):  # an invalid record has no canonical form; parts covered above
            found |= sha256_forms(canonical_content(rec))
    return found


def hashed_leaks(haystack: str, hashed: set[str]) -> list[str]:
    """Which of ``hashed`` stand in ``haystack`` as a token of their own (hex or base64)."""
    tokens = {t.lower() for t in HEX64.findall(haystack)} | set(BASE64_32.findall(haystack))
    return sorted(tokens & hashed)
