"""What a check of the state directory's permissions looks at."""

from __future__ import annotations

import stat
from pathlib import Path


def loose_permissions(home: Path) -> list[str]:
    """Every file or directory under ``home`` (and ``home`` itself) that group or others may use at all."""
    return [f"{p.relative_to(home)} {stat.filemode(p.lstat().st_mode)}"
            for p in [home, *home.rglob("*")] if not p.is_symlink() and p.lstat().st_mode & 0o077]
