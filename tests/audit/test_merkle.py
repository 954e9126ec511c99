"""Known-answer tests of the tree hashes and proofs against RFC 9162's own definitions.

The expected values come from a direct, recursive transcription of RFC 9162
section 2.1 written here in the test (``mth``, ``path``, ``proof``), not from
the code under test, plus the published test vectors of the CT reference
implementation for the first eight roots.
"""

from __future__ import annotations

import hashlib
import itertools

import pytest

from ttp.merkle import (
    EMPTY_ROOT,
    CompactRange,
    Levels,
    ProofError,
    consistency_proof,
    inclusion_proofs,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# ---- RFC 9162 section 2.1, transcribed literally ------------------------------------------

def sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + d[0])
    k = k_of(n)
    return sha(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = k_of(n)
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = k_of(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return subproof(m, d, True)


# ---- test data -----------------------------------------------------------------------------

#: Inputs and roots of the CT reference implementation's tree tests (sizes 1..8).
CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

DATA = [f"entry-{i}".encode() for i in range(70)]


class Memory:
    """A NodeSource computed straight from the data with the reference MTH."""

    def __init__(self, d: list[bytes]) -> None:
        self.d = d

    def perfect(self, level: int, index: int) -> bytes:
        return mth(self.d[index << level : (index + 1) << level])


def test_prefixes_separate_leaves_from_nodes() -> None:
    assert leaf_hash(b"x") == sha(b"\x00x")
    assert node_hash(b"a" * 32, b"b" * 32) == sha(b"\x01" + b"a" * 32 + b"b" * 32)
    assert sha(b"") == EMPTY_ROOT
    # A node's preimage passed as a leaf does not give the node's hash.
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert leaf_hash(left + right) != node_hash(left, right)


def test_roots_match_ct_reference_vectors() -> None:
    for n in range(1, 9):
        leaves = [leaf_hash(x) for x in CT_LEAVES[:n]]
        assert root_from_leaf_hashes(leaves).hex() == CT_ROOTS[n - 1]
        assert mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]


@pytest.mark.parametrize("n", range(0, 70))
def test_root_equals_rfc_mth(n: int) -> None:
    assert root_from_leaf_hashes([leaf_hash(x) for x in DATA[:n]]) == mth(DATA[:n])


def test_incremental_appends_in_any_batching_give_the_rfc_root() -> None:
    for cuts in ([1] * 20, [3, 5, 8, 1, 13], [16, 1, 15, 2, 30], [64, 6]):
        cr = CompactRange.empty()
        for c in cuts:
            start = cr.size
            cr, levels = cr.append([leaf_hash(x) for x in DATA[start : start + c]])
            assert cr.root() == mth(DATA[: cr.size])
            # every node the append reports is the true subtree hash
            for level, (first, run) in enumerate(levels.runs):
                for i, h in enumerate(run):
                    assert h == mth(DATA[(first + i) << level : (first + i + 1) << level])
            roundtrip = CompactRange.from_bytes(cr.size, cr.to_bytes())
            assert roundtrip == cr


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64, 70])
def test_inclusion_proofs_equal_rfc_path(n: int) -> None:
    d = DATA[:n]
    got = inclusion_proofs(Memory(d), range(n), n)
    for m in range(n):
        assert got[m] == path(m, d), (m, n)
        verify_inclusion(leaf_hash(d[m]), m, n, got[m], mth(d))


def test_append_levels_prove_new_leaves_like_the_rfc() -> None:
    for old, new in [(0, 9), (5, 8), (6, 7), (13, 70), (32, 33), (31, 64)]:
        base = CompactRange.empty().extended([leaf_hash(x) for x in DATA[:old]])
        _, levels = base.append([leaf_hash(x) for x in DATA[old:new]])
        assert isinstance(levels, Levels)
        got = inclusion_proofs(levels, range(old, new), new)
        assert got == [path(m, DATA[:new]) for m in range(old, new)]


@pytest.mark.parametrize("n", range(1, 34))
def test_consistency_proofs_between_every_pair_of_sizes(n: int) -> None:
    d = DATA[:n]
    for m in range(0, n + 1):
        got = consistency_proof(Memory(d), m, n)
        if 0 < m < n:
            assert got == proof(m, d), (m, n)
        else:
            assert got == []
        verify_consistency(m, n, got, mth(d[:m]), mth(d))


def test_tampered_proofs_fail() -> None:
    d = DATA[:13]
    root = mth(d)
    p = path(6, d)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(d[7]), 6, 13, p, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(d[6]), 7, 13, p, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(d[6]), 6, 13, p[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(d[6]), 6, 13, [*p, p[0]], root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(d[6]), 6, 7, p, root)
    for i in range(len(p)):
        bad = list(p)
        bad[i] = sha(bad[i])
        with pytest.raises(ProofError):
            verify_inclusion(leaf_hash(d[6]), 6, 13, bad, root)
    assert root_from_inclusion_proof(leaf_hash(d[6]), 6, 13, p) == root


def test_consistency_rejects_a_fork() -> None:
    """Two logs that share 5 entries then differ: no proof from one links to the other."""
    a = DATA[:9]
    b = [*DATA[:5], b"forged", *DATA[6:9]]
    for m, n in itertools.product(range(6, 10), range(6, 10)):
        if m > n:
            continue
        honest = proof(m, b) if 0 < m < n else []
        with pytest.raises(ProofError):
            verify_consistency(m, n, honest, mth(a[:m]), mth(b[:n]))
    # the shared prefix is still consistent
    verify_consistency(5, 9, proof(5, b), mth(a[:5]), mth(b))
    with pytest.raises(ProofError, match="forked"):
        verify_consistency(9, 9, [], mth(a), mth(b))


def test_consistency_rejects_bad_shapes() -> None:
    d = DATA[:10]
    good = proof(4, d)
    with pytest.raises(ProofError):
        verify_consistency(4, 10, [], mth(d[:4]), mth(d))
    with pytest.raises(ProofError):
        verify_consistency(4, 10, good[:-1], mth(d[:4]), mth(d))
    with pytest.raises(ProofError):
        verify_consistency(4, 10, [*good, good[0]], mth(d[:4]), mth(d))
    with pytest.raises(ProofError):
        verify_consistency(10, 4, good, mth(d), mth(d[:4]))
