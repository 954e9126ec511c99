"""The BSN 11-proef, shared by ingest (validating records) and report (refusing BSNs in free text)."""

from __future__ import annotations

import re


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


#: A maximal run of exactly nine digits (no digit directly before or after it).
_NINE_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])")


def carries_bsn(text: str) -> bool:
    """Does ``text`` hold, as a separate run of digits, a 9-digit number that passes the 11-proef?

    "Separate" means the run has no digit directly before or after it: in
    ``R-111222333-2`` and ``TR111222333`` the run is a BSN-shaped number, in
    ``1112223334`` it is part of a 10-digit number and not one. Used wherever
    free identifiers (record, trajectory and batch ids, request parameters)
    must not carry a citizen service number.
    """
    return any(elfproef(run) for run in _NINE_DIGIT_RUN.findall(text))
