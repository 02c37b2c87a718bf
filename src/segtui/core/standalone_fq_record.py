"""What an optimization stored about its standalone quantizers, and how it reads.

Kept apart from `core.standalone_fq` (which compiles models) so that the project page
and the command line can word a stored record without loading OpenVINO.
"""

from __future__ import annotations

from typing import TypedDict

#: Why a dropped quantizer was dropped (one wording, stored with each).
DROP_REASON = "ran as a layer of its own and fed no INT8 input of a compute layer"


class DroppedQuantizerJson(TypedDict):
    """A FakeQuantize taken out of the INT8 model: its consumers read its input instead."""

    name: str
    #: The runtime layer it ran as.
    layer: str
    reason: str
    #: The operations that read it (they now read its input).
    consumers: list[str]


class StandaloneQuantizersRecord(TypedDict):
    """The standalone quantizers of the calibrated INT8 model, and what was done with them."""

    #: Quantizers that ran as layers of their own in the compiled INT8 model.
    found: int
    dropped: list[DroppedQuantizerJson]
    #: FakeQuantize names kept because they feed an INT8 input of a compute layer.
    kept: list[str]
    #: Dropped, then put back: without them fewer compute layers ran in INT8.
    restored: list[str]
    #: INT8 compute layers of the compiled model before and after (equal: nothing lost).
    int8_compute_before: int
    int8_compute_after: int


def standalone_text(record: StandaloneQuantizersRecord | None) -> str:
    """'6 found: 1 dropped (fed no INT8 compute: fq_a), 5 kept (feed INT8 compute)'; '' without
    a record."""
    if not record:
        return ""
    names = [d["name"] for d in record.get("dropped", [])]
    kept, restored = record.get("kept", []), record.get("restored", [])
    parts = []
    if names:
        parts.append(f"{len(names)} dropped (fed no INT8 compute: {', '.join(names)})")
    if kept:
        parts.append(f"{len(kept)} kept (feed INT8 compute)")
    if restored:
        parts.append(f"{len(restored)} put back (INT8 compute needed them: {', '.join(restored)})")
    found = record.get("found", 0)
    return f"{found} found" + (f": {', '.join(parts)}" if parts else "")


__all__ = [
    "DROP_REASON",
    "DroppedQuantizerJson",
    "StandaloneQuantizersRecord",
    "standalone_text",
]
