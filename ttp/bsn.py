"""The BSN 11-proef, shared by ingest (validating records) and report (refusing BSNs in free text)."""

from __future__ import annotations


def elfproef(bsn: str) -> bool:
    """The 11-proef of a 9-digit BSN: sum of digit x (9..2, then -1) divisible by 11.

    ``000000000`` passes the arithmetic but is not a BSN, so it is refused.
    Assumes ``bsn`` is 9 ASCII digits (callers check that first).
    """
    b = bsn.encode("ascii")
    total = (
        9 * b[0] + 8 * b[1] + 7 * b[2] + 6 * b[3] + 5 * b[4] + 4 * b[5] + 3 * b[6] + 2 * b[7]
        - b[8]
        - 48 * 43  # the ASCII offset of '0' times the sum of the weights
    )
    return total % 11 == 0 and bsn != "000000000"
