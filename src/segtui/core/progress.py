"""Progress reporting and cancellation for long core functions."""

from __future__ import annotations

import threading
from collections.abc import Callable

from segtui.core.errors import Cancelled

#: Called with a fraction in [0, 1] and a short stage text.
ProgressCallback = Callable[[float, str], None]


def no_progress(fraction: float, stage: str) -> None:
    """A progress callback that ignores everything."""


class CancelToken:
    """A flag a long function polls; `raise_if_cancelled` turns it into `Cancelled`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()
