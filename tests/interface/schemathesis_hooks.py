"""Schemathesis hooks for the fuzz test: how to put a generated XLSX body on the wire.

Schemathesis has no serializer for the spreadsheet media type ingest accepts
beside JSON and CSV; the generated value (bytes, or a string for a binary
schema) is sent as it is, so ingest's file reader gets arbitrary bytes and must
answer them with a 400 problem, never a 500.
"""

from __future__ import annotations

from typing import Any

import schemathesis

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@schemathesis.serializer(XLSX)
def xlsx(_ctx: Any, value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
