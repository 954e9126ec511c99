"""content hashes are keyed: drop the unkeyed ones earlier versions stored

Earlier versions stored ``content_hash`` as an unkeyed SHA-256 over the whole
submitted record (BSN, birth date, gender, 6-position postcode included); with
everything else of the record stored beside it, that gives the identifiers
back by brute force. The hash is now an HMAC that only pseudonymise can
compute, and cannot be derived for the rows already stored, so:

* every stored ``content_hash`` is blanked: the next delivery of such a
  record is classified as a correction (replaced, and logged as
  ``record-corrected``), never as new, so nothing counts twice;
* the remembered batch outcomes are dropped, since their ``payload_hash`` is
  a hash over those unkeyed hashes: a resent old batch is classified again
  against the store (corrections, as above) instead of answering from memory.

Revision ID: 0005_keyed_content_hash
Revises: 0004_no_staged_payload
Create Date: 2026-12-08 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_keyed_content_hash"
down_revision: str | None = "0004_no_staged_payload"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE trajectories SET content_hash = ''")
    op.execute("DELETE FROM trajectory_batches")


def downgrade() -> None:
    # Nothing to restore: the unkeyed hashes must not come back, and blank ones are valid for the old code too.
    pass
