"""The byte form of an audit log entry and the personal-data guard on it.

Shared by the audit service, which writes entries, and by ``ttp audit verify``,
which reads them back over the API and re-checks each one: an entry's bytes
must be exactly the canonical JSON of its fields (keys sorted at every depth,
no whitespace, UTF-8), and no key in its subject may name a personal
identifier. Both sides using this one module is what makes a verifier's
"the bytes are canonical" check mean the same as the writer's.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson

#: Normalised key names (lower case, letters and digits only) that name a
#: person's identifier. A key equal to or ending in one of these is refused.
FORBIDDEN_KEYS: tuple[str, ...] = (
    "bsn",
    "burgerservicenummer",
    "birthdate",
    "dateofbirth",
    "geboortedatum",
    "postcode",
    "zipcode",
    "pseudonym",
    "pseudonyms",
)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the one serialisation of an entry."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@lru_cache(maxsize=4096)
def is_personal_key(key: str) -> bool:
    """Does this key name a personal identifier? Cached: batches repeat the same few keys."""
    norm = re.sub(r"[^a-z0-9]", "", key.lower())
    return any(norm == bad or norm.endswith(bad) for bad in FORBIDDEN_KEYS)


def _has_personal_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(is_personal_key(str(k)) or _has_personal_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_personal_key(v) for v in value)
    return False


def personal_data_paths(value: Any, path: str = "") -> list[str]:
    """JSON pointers of every key in ``value`` that names a personal identifier."""
    if not _has_personal_key(value):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            here = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if is_personal_key(str(key)):
                found.append(here)
            found.extend(personal_data_paths(child, here))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found.extend(personal_data_paths(child, f"{path}/{i}"))
    return found
