"""The HMAC keys, by version, read from files; the only thing of value here.

Each version keys two things, kept apart by domain tags: person pseudonyms
(:data:`DOMAIN_TAGS`) and records' content digests (:data:`CONTENT_TAG`).

Keys live in ``<key_dir>/v<N>.key`` (at least 32 random bytes each). The
highest version is current; older versions stay loaded while data
pseudonymised under them is still inside its retention, so indicator 3.2 can
link a person across a rotation. Retiring a version is deleting its file.
Key bytes are never logged or returned.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

MIN_KEY_BYTES = 32
_KEY_FILE = re.compile(r"^v([1-9][0-9]{0,3})\.key$")

#: Domain tags: a BSN and a fallback key can never produce the same pseudonym.
DOMAIN_TAGS: dict[str, bytes] = {
    "bsn": b"outcome-ttp/person/bsn/v1\x00",
    "fallback": b"outcome-ttp/person/fallback/v1\x00",
}


#: Domain tag of a record's keyed content digest (``Keyring.content_digests``): never equal
#: to a person identifier's input, so a content digest is never a pseudonym and vice versa.
CONTENT_TAG: bytes = b"outcome-ttp/record-content/v1\x00"


class KeyringError(RuntimeError):
    """No usable key: the service must not start."""


@dataclass
class Keyring:
    """Loaded key versions, newest first; reloads when the key directory changes."""

    key_dir: Path
    keys: dict[int, bytes] = field(default_factory=dict)
    _mtime: float = 0.0
    _checked: float = 0.0

    @classmethod
    def load(cls, key_dir: Path) -> Keyring:
        ring = cls(key_dir)
        ring.reload()
        return ring

    def reload(self) -> None:
        """Read all ``v<N>.key`` files; refuse weak or missing keys."""
        if not self.key_dir.is_dir():
            raise KeyringError(f"Key directory {self.key_dir} does not exist; run 'ttp pki init'.")
        keys: dict[int, bytes] = {}
        for path in self.key_dir.iterdir():
            m = _KEY_FILE.match(path.name)
            if not m:
                continue
            data = path.read_bytes()
            if len(data) < MIN_KEY_BYTES:
                raise KeyringError(f"Key file {path.name} holds fewer than {MIN_KEY_BYTES} bytes.")
            keys[int(m.group(1))] = data
        if not keys:
            raise KeyringError(f"No HMAC key (v<N>.key) in {self.key_dir}; refusing to start.")
        self.keys = dict(sorted(keys.items(), reverse=True))
        self._mtime = self.key_dir.stat().st_mtime

    def refresh(self) -> None:
        """Pick up a rotation without a restart (checked at most once a second)."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        if self.key_dir.stat().st_mtime != self._mtime:
            self.reload()

    @property
    def versions(self) -> list[int]:
        return list(self.keys)

    @property
    def current(self) -> int:
        return next(iter(self.keys))

    def pseudonymise(self, kind: str, value: str) -> list[str]:
        """Hex HMAC-SHA256 of the tagged, normalised identifier under every loaded version."""
        msg = DOMAIN_TAGS[kind] + normalise(kind, value).encode("utf-8")
        return [hmac.digest(key, msg, "sha256").hex() for key in self.keys.values()]

    def content_digests(self, canonical: str) -> list[str]:
        """Hex HMAC-SHA256 of a record's canonical form, domain-tagged, under every loaded version.

        The record's fingerprint for duplicate and correction detection and
        the audit log. Keyed because the record holds the BSN, birth date and
        postcode and the stores hold everything else of it: an unkeyed hash
        could be reversed by enumerating the few candidates that fit (about
        740,000 for a record without a BSN). Under every loaded version, like
        the pseudonyms, so a record stored before a rotation is still
        recognised as unchanged after it.
        """
        msg = CONTENT_TAG + canonical.encode("utf-8")
        return [hmac.digest(key, msg, "sha256").hex() for key in self.keys.values()]


def normalise(kind: str, value: str) -> str:
    """One spelling per identifier, so formatting differences never split a person."""
    if kind == "bsn":
        return value.strip().zfill(9)
    return "|".join(part.strip().upper().replace(" ", "") for part in value.split("|"))
