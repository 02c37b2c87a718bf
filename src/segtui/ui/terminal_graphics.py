"""Whether the terminal can show sharp images (kitty or sixel), asked once before the app runs.

Apart from the Visualize screen so that `run_app` can ask without importing what
that screen draws with (PIL, OpenCV through core).
"""

from __future__ import annotations

import os
import sys

from textual.widget import Widget

_GRAPHICS_OFF = ("0", "off", "no", "false")
#: The sharp-image widget class found by `prepare_terminal_graphics` (empty: half blocks only).
_terminal_graphics: list[type[Widget]] = []


def prepare_terminal_graphics() -> bool:
    """Find out, before the app runs, whether the terminal can show sharp images.

    textual-image asks the terminal when it is imported, which is impossible
    once Textual owns the terminal, so `run_app` calls this first. Off when
    SEGTUI_GRAPHICS is "off", when stdout is not a terminal, or without the
    `graphics` extra; then Visualize draws half blocks.
    """
    if os.environ.get("SEGTUI_GRAPHICS", "auto").strip().lower() in _GRAPHICS_OFF:
        return False
    if not (sys.__stdout__ is not None and sys.__stdout__.isatty()):
        return False
    try:
        from textual_image import renderable  # type: ignore[import-not-found, unused-ignore]
        from textual_image.widget import (  # type: ignore[import-not-found, unused-ignore]
            SixelImage,
            TGPImage,
        )
    except ImportError:
        return False
    found: type[Widget] | None = None
    if renderable.Image is renderable.SixelImage:
        found = SixelImage
    elif renderable.Image is renderable.TGPImage:
        found = TGPImage
    _terminal_graphics[:] = [found] if found is not None else []
    return found is not None


def terminal_graphics_widget() -> type[Widget] | None:
    """The sharp-image widget class for this terminal, if `prepare_terminal_graphics` found one."""
    return _terminal_graphics[0] if _terminal_graphics else None
