"""The cell-key method: every count a third party sees, perturbed consistently.

Why this method (docs/disclosure.md has the full argument):

* Cell suppression on a cell's ``n`` left every count *inside* a published
  cell exact (distribution bins, responses, value times n), and a count that
  crosses the threshold between two releases was pinned by the pair (a cell
  published at 10 and hidden at 9 is 10 then 9). Suppressing or merging each
  of those counts as a cell of its own would hide most of a gemeente's feed.
* CBS publishes youth-care counts per area rounded to 5 with 0 to 7 secret;
  ABS (TableBuilder) and ONS (Census 2021, the ``cell-key-perturbation``
  package) perturb each count with noise drawn from a public *perturbation
  table* by a *cell key*, so that the same cell contents always get the same
  noise (repeating or re-requesting a table averages nothing away) and small
  counts are never shown as such. Deterministic rounding was rejected: at a
  rounding boundary a change of one record moves the shown value by the whole
  base in every release pair, so a diff pins that record in one cell in five.

The perturbation table here (threshold ``t``, 10 by default) is the ONS
rule "perturb, then suppress below the threshold": a true count ``c`` is
shown as ``p = c + d``, with ``d`` in -3..3 drawn by the cell key with
probabilities .01 .06 .2 .46 .2 .06 .01 (mean 0, mean |d| 0.7), and a ``p``
below ``t`` is shown as afgeschermd. So:

* no value from 1 to t-1 is ever shown; true counts up to t-4 are always
  afgeschermd, t-3 to t-1 mostly, t to t+2 sometimes;
* every shown value stands for a range (:meth:`CellKeyMethod.range_of`) of at
  least seven counts: afgeschermd is 0..t+2, ``p`` is p-3..p+3 (never below 0);
* a count that changes by one record between two releases is not pinned by
  the pair unless both draws are extremes of opposite sign (-3 then +3, a
  chance of 1 in 10,000); in particular a cell dropping below the threshold
  by one record is not pinned, because afgeschermd overlaps every shown value
  up to t+5. Tails this thin are why the noise reaches 3 and not 2: with
  -2..2 at .05 each, one diff in 400 pinned a count.

Shares and means are computed from the shown counts only, so they give
nothing more back.

The cell key. ABS sums per-record keys over a cell's records. Here a count's
key is HMAC-SHA-256, under a secret only the aggregate service holds, of the
cell's whole count vector (every count of every indicator of that
population) and the name of the count. Identical contents get identical noise
in every output and release, as with record keys; the key is derived from no
identifier at all, and without the secret nobody can compute the noise. (A
count whose own records stay the same while other counts of the cell change
gets a fresh draw; that only makes successive releases less alike.)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from ttp.private_files import secret_file

#: The noise for counts at or above the threshold: (d, probability).
NOISE: Final[tuple[tuple[int, float], ...]] = (
    (-3, 0.01), (-2, 0.06), (-1, 0.2), (0, 0.46), (1, 0.2), (2, 0.06), (3, 0.01),
)
#: Largest |d|: a shown count p stands for p - SPREAD .. p + SPREAD.
SPREAD: Final = 3
KEY_BYTES: Final = 32

#: What an output asks of its counts: (true value, name of the count) -> shown value,
#: None for afgeschermd. The internal report shows the true value.
CountRule = Callable[[int, str], int | None]


def exact(value: int, _name: str) -> int | None:
    """The internal report's rule: every count as it is."""
    return value


@dataclass(frozen=True)
class CellKeyMethod:
    """The perturbation table and the secret the cell keys are drawn with."""

    secret: bytes
    threshold: int = 10

    def __post_init__(self) -> None:
        if len(self.secret) < KEY_BYTES:
            raise ValueError(f"the cell-key secret must hold at least {KEY_BYTES} bytes")
        if self.threshold < 2:
            raise ValueError("the threshold must be at least 2")

    def uniform(self, content: bytes, name: str) -> float:
        """The cell key of one count, in [0, 1)."""
        digest = hmac.new(self.secret, content + b"\x00" + name.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def noise(self, u: float) -> int:
        """The perturbation a cell key stands for (the inverse of the noise's distribution)."""
        cumulative = 0.0
        for d, p in NOISE:
            cumulative += p
            if u < cumulative:
                return d
        return NOISE[-1][0]

    def perturb(self, count: int, u: float) -> int | None:
        """The shown value of a true count with cell key ``u`` (None: afgeschermd)."""
        shown = count + self.noise(u)
        return shown if shown >= self.threshold else None

    def range_of(self, shown: int | None) -> tuple[int, int]:
        """Every true count that can give ``shown``: what a reader who knows this table may assume."""
        if shown is None:
            return 0, self.threshold - 1 + SPREAD
        return max(0, shown - SPREAD), shown + SPREAD

    def rule(self, counts: np.ndarray) -> CountRule:
        """The count rule of one population cell, keyed by the cell's whole count vector."""
        content = np.ascontiguousarray(counts, dtype=np.int64).tobytes()

        def shown(value: int, name: str) -> int | None:
            return self.perturb(int(value), self.uniform(content, name))

        return shown

    @classmethod
    def load(cls, path: Path, threshold: int) -> CellKeyMethod:
        """The secret from ``path``, created (0600, 32 random bytes) on first use.

        Only the aggregate service reads it: whoever holds it can compute the noise,
        but whoever holds the aggregate store has the true counts anyway. Every
        instance of the service must share it (mount it as a secret), or they would
        publish different noise for the same cell.
        """
        return cls(secret_file(path, KEY_BYTES), threshold)
