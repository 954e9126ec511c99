"""Merkle tree hashing, proofs and proof verification as in RFC 9162 (CT v2) / RFC 6962.

Why this shape:

* Leaves and interior nodes are hashed with different one-byte prefixes
  (``0x00`` and ``0x01``), so a leaf can never be passed off as a node (second
  preimage resistance of the tree, RFC 9162 section 2.1.1).
* The tree over ``n`` leaves is the RFC's: split at the largest power of two
  smaller than ``n``. Such a tree is a sequence of *perfect* subtrees (one per
  set bit of ``n``, largest first). A perfect subtree, once complete, never
  changes, which is what lets the log store subtree hashes once and never
  rehash the whole log for a root or a proof.
* Appending keeps only the *compact range* (the hashes of those perfect
  subtrees, at most 64) from one append to the next; a batch of new leaf hashes
  is folded into it in memory.

Nodes are addressed as ``(level, index)``: the perfect subtree of ``2**level``
leaves starting at leaf ``index * 2**level``. Everything here is pure and
side-effect free; storage lives in ``store.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The ``k`` of the RFC's split: the largest power of two strictly smaller than ``n`` (n > 1)."""
    if n < 2:
        raise ValueError("a split needs at least two leaves")
    return 1 << ((n - 1).bit_length() - 1)


def decomposition(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that make up a tree of ``size`` leaves, left to right."""
    out: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hash a left-to-right list of decreasing perfect subtrees into one root."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The tree head of a list of leaf hashes, computed bottom-up in memory."""
    return CompactRange.empty().extended(hashes).root()


class NodeSource(Protocol):
    """Anything that can produce the hash of a complete perfect subtree."""

    def perfect(self, level: int, index: int) -> bytes:
        """Hash of the ``2**level`` leaves starting at ``index * 2**level``."""
        ...


def range_hash(source: NodeSource, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)`` where ``start`` is aligned as in the RFC recursion.

    The ranges the proof recursions ask for are either perfect subtrees or the
    right edge of a tree, so this folds at most ``log2(end - start)`` perfect
    subtrees and never visits individual leaves.
    """
    n = end - start
    if n <= 0:
        raise ValueError("empty range")
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return source.perfect(level, start >> level)
    k = largest_power_of_two_below(n)
    if start % k:
        raise ValueError(f"range [{start}, {end}) is not a subtree of an RFC 9162 tree")
    level = k.bit_length() - 1
    return node_hash(source.perfect(level, start >> level), range_hash(source, start + k, end))


def inclusion_proofs(source: NodeSource, indexes: Iterable[int], size: int) -> list[list[bytes]]:
    """RFC 9162 inclusion proofs (``PATH(m, D[n])``) of several leaves in a tree of ``size``.

    Structured rather than recursive so that a batch of thousands of leaves
    shares the work: a leaf's path is the siblings inside the perfect subtree
    that holds it, then the hash of everything to the right of that subtree,
    then the perfect subtrees to its left, nearest first. The tail after the
    in-subtree siblings is the same for every leaf of the subtree.
    """
    blocks = decomposition(size)
    block_hashes = [source.perfect(level, index) for level, index in blocks]
    tails: dict[int, list[bytes]] = {}
    proofs: list[list[bytes]] = []
    for m in indexes:
        if not 0 <= m < size:
            raise ValueError(f"leaf {m} is not in a tree of size {size}")
        j, level = _block_of(blocks, m)
        path = [source.perfect(lv, (m >> lv) ^ 1) for lv in range(level)]
        tail = tails.get(j)
        if tail is None:
            tail = []
            if j + 1 < len(blocks):
                tail.append(fold_right(block_hashes[j + 1 :]))
            tail.extend(reversed(block_hashes[:j]))
            tails[j] = tail
        proofs.append(path + tail)
    return proofs


def _block_of(blocks: list[tuple[int, int]], m: int) -> tuple[int, int]:
    for j, (level, index) in enumerate(blocks):
        start = index << level
        if start <= m < start + (1 << level):
            return j, level
    raise ValueError(f"leaf {m} not covered")  # pragma: no cover - guarded by the caller


def consistency_proof(source: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 consistency proof ``PROOF(m, D[n])`` between two sizes of the same log."""
    if not 0 <= old_size <= new_size:
        raise ValueError("need 0 <= old size <= new size")
    if old_size == 0 or old_size == new_size:
        return []
    out: list[bytes] = []
    _subproof(source, old_size, 0, new_size, True, out)
    return out


def _subproof(source: NodeSource, m: int, start: int, end: int, whole: bool, out: list[bytes]) -> None:
    n = end - start
    if m == n:
        if not whole:
            out.append(range_hash(source, start, end))
        return
    k = largest_power_of_two_below(n)
    if m <= k:
        _subproof(source, m, start, start + k, whole, out)
        out.append(range_hash(source, start + k, end))
    else:
        _subproof(source, m - k, start + k, end, False, out)
        out.append(range_hash(source, start, start + k))


class ProofError(ValueError):
    """A proof does not verify; the message says what failed."""


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root implied by a leaf hash and its inclusion proof."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ``ProofError`` unless ``proof`` shows leaf ``index`` with hash ``leaf`` under ``root``."""
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the root of size {size}")


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 section 2.1.4.2: raise ``ProofError`` unless the new tree extends the old one."""
    if old_size > new_size:
        raise ProofError("the old tree is larger than the new one")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("two different roots for the same tree size: the log has forked")
        return
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than expected")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than expected")
    if fr != old_root:
        raise ProofError(f"the log at size {new_size} does not contain the tree of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the root of size {new_size}")


@dataclass
class Levels:
    """Perfect-subtree hashes known after an append, per level, as contiguous runs.

    ``runs[level] = (first_index, hashes)``. Holds every complete node that
    touches the appended range plus the old compact range, which is exactly
    what the inclusion proofs of the appended leaves need.
    """

    runs: list[tuple[int, list[bytes]]] = field(default_factory=list)

    def perfect(self, level: int, index: int) -> bytes:
        if level < len(self.runs):
            first, hashes = self.runs[level]
            if first <= index < first + len(hashes):
                return hashes[index - first]
        raise KeyError(f"node ({level}, {index}) is not in this append's levels")


@dataclass(frozen=True)
class CompactRange:
    """The perfect subtrees covering leaves ``[0, size)``, largest first (RFC 9162 tree edge)."""

    size: int
    hashes: tuple[bytes, ...]

    @classmethod
    def empty(cls) -> CompactRange:
        return cls(0, ())

    def __post_init__(self) -> None:
        if len(self.hashes) != self.size.bit_count():
            raise ValueError("a compact range holds one hash per set bit of its size")

    def root(self) -> bytes:
        return fold_right(self.hashes)

    def nodes(self) -> list[tuple[int, int, bytes]]:
        """``(level, index, hash)`` of each subtree."""
        return [(lv, ix, h) for (lv, ix), h in zip(decomposition(self.size), self.hashes, strict=True)]

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> CompactRange:
        if len(blob) != HASH_SIZE * size.bit_count():
            raise ValueError("compact range blob has the wrong length for its size")
        return cls(size, tuple(blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)))

    def extended(self, leaf_hashes: Sequence[bytes]) -> CompactRange:
        """The compact range after appending ``leaf_hashes`` (no intermediate levels kept)."""
        return self.append(leaf_hashes)[0]

    def append(self, leaf_hashes: Sequence[bytes]) -> tuple[CompactRange, Levels]:
        """Append leaves; returns the new range and every node touching the new leaves.

        Works level by level over contiguous runs: level 0 is the new leaves
        (preceded by the old range's single leaf, if the old size was odd);
        each higher level pairs up the level below and is preceded by the old
        range's node at that level, if any. Cost: one hash per new node.
        """
        start, new_size = self.size, self.size + len(leaf_hashes)
        old = {lv: (ix, h) for lv, ix, h in self.nodes()}
        levels = Levels()
        first, run = start, list(leaf_hashes)
        level = 0
        while True:
            if level in old:
                ix, h = old[level]
                if run and ix != first - 1:
                    raise AssertionError("compact range is not adjacent to the appended leaves")
                first, run = ix, [h, *run]
            levels.runs.append((first, run))
            if level >= new_size.bit_length():
                break
            lo = (first + 1) // 2
            hi = (first + len(run)) // 2
            offset = 2 * lo - first
            run = [node_hash(run[offset + 2 * i], run[offset + 2 * i + 1]) for i in range(hi - lo)]
            first = lo if run else (start >> (level + 1)) + 1
            level += 1
        new = CompactRange(new_size, tuple(levels.perfect(lv, ix) for lv, ix in decomposition(new_size)))
        return new, levels
