"""A model's checksum: sha256 over its files, in order (no engine imported: import checks it)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_checksum(*paths: Path) -> str:
    """sha256 over the files, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
