"""Full garbage collections between the app's frames, not in the middle of one.

Python starts a full (generation 2) collection when enough objects have been
allocated, which in a Textual app is while it handles a key and paints: a full
collection took 0.05–0.2 s on the 2-core test machine, a key's frame 0.04 s. The app
instead raises the automatic full collection's threshold out of reach and runs the
collection itself from a timer once as many young collections have passed as Python
waits for: a key that arrives meanwhile waits for it, but no frame carries one. The young generations
are collected as before (milliseconds). What lives as long as the app is frozen out
of the collector's sight (`freeze`, once the app has loaded).
"""

from __future__ import annotations

import gc
from typing import Final

#: How often the timer looks whether a full collection is due (seconds).
CHECK_SECONDS: Final = 0.5
#: Python's own default: a full collection after this many generation-1 collections.
FULL_AFTER: Final = 10
#: The automatic full collection's threshold while the app collects (never reached).
OUT_OF_REACH: Final = 1_000_000


class IdleCollector:
    """Moves the full collections to a timer of the app (`check`), restoring Python's on stop."""

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        #: Full collections run by `check` so far.
        self.collections = 0

    def start(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _full = self._saved
            gc.set_threshold(young, middle, OUT_OF_REACH)

    def stop(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def check(self) -> None:
        """Collect every generation now if Python would have done so by itself by now."""
        if self._saved is not None and gc.isenabled() and gc.get_count()[2] >= FULL_AFTER:
            gc.collect()
            self.collections += 1


def freeze() -> None:
    """Hide what the process holds now from later collections (it lives as long as the app).

    Collected first: garbage frozen would never be freed.
    """
    gc.collect()
    gc.freeze()
