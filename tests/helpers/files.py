"""Hostile files for the delivery tests."""

from __future__ import annotations

import io
import zipfile


def zip_bomb(megabytes: int = 300) -> bytes:
    """An XLSX-shaped zip of a few hundred KB whose sheet unpacks to ``megabytes`` MB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as part:
            block = b" " * (1 << 20)
            for _ in range(megabytes):
                part.write(block)
    return buf.getvalue()
