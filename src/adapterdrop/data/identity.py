"""What a training run's data was, by content: part of the run's identity.

Two data directories with different files for one task must not share a result (the second run
would replace the first's metrics), while the same files in another folder, or on another
machine, are the same data. So a split is identified by a hash of its bytes, not its path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from adapterdrop.data.spec import TaskSpec

#: Hex digits kept: as for result ids, 64 bits make collisions negligible.
DIGEST_LENGTH = 16


def file_digest(path: Path, length: int | None = DIGEST_LENGTH) -> str:
    """``sha256:<hex>`` of a file's bytes, cut to ``length`` hex digits (``None``: all)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()[:length]}"


def content_digests(files: Mapping[str, Path | None], spec: TaskSpec) -> dict[str, str]:
    """``{split: sha256 prefix}`` of each local split file; a hub split (``None``) is named by
    its dataset id and config (the hub's own revision is not pinned)."""
    return {
        split: file_digest(path)
        if path is not None
        else f"hub:{spec.hub_id}:{spec.hub_config}:{split}"
        for split, path in sorted(files.items())
    }
