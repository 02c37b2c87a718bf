"""Images in half-block characters: each cell shows two pixels, one above the other.

A cell is "▄" in the lower pixel's colour on the upper pixel's colour (as
rich-pixels draws it). The rows are built once, in a thread, as Textual strips
(runs of equal cells in one segment, each colour pair's style made once, with its
terminal codes worked out there too) and the widget hands them to the compositor as
they are: painting a new image costs the event loop what painting text does, not the
work of a few thousand new colours (about 50 ms a panel, measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rich.color import Color, ColorSystem
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

#: Styles and colours are kept for the next image (neighbouring images share most of
#: them), up to this many; then the cache starts again.
STYLE_CACHE_LIMIT = 1 << 16
LOWER_HALF = "▄"

_colors: dict[int, Color] = {}
_styles: dict[int, Style] = {}


def _color(rgb: int) -> Color:
    color = _colors.get(rgb)
    if color is None:
        color = _colors[rgb] = Color.from_rgb(rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF)
    return color


def _style(upper: int, lower: int, color_system: ColorSystem | None) -> Style:
    key = upper << 24 | lower
    style = _styles.get(key)
    if style is None:
        if len(_styles) > STYLE_CACHE_LIMIT:
            _styles.clear()
            _colors.clear()
        style = Style.from_color(_color(lower), _color(upper))
        if color_system is not None:
            # Rendering once keeps the style's terminal codes (colours downgraded to the
            # terminal's) for every later paint.
            style.render(LOWER_HALF, color_system=color_system)
        _styles[key] = style
    return style


#: The xterm 256-colour palette's RGB values (indices 16–255: the 6×6×6 cube, then greys).
_CUBE = np.array([0, 95, 135, 175, 215, 255], np.uint8)
_PALETTE = np.zeros((256, 3), np.uint8)
_PALETTE[16:232] = np.stack(np.meshgrid(_CUBE, _CUBE, _CUBE, indexing="ij"), -1).reshape(-1, 3)
_PALETTE[232:] = (8 + 10 * np.arange(24, dtype=np.uint8))[:, None]


def to_256_colors(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Each pixel as the xterm colour a 256-colour terminal shows for it.

    The mapping is Rich's (`Color.downgrade`: greys below 15 % saturation to the grey
    ramp, the rest to the 6×6×6 cube, rounding half to even), done for all pixels at
    once: the image looks as it would, and has a few hundred colours, not thousands.
    """
    channels = rgb.astype(np.float64) / 255
    high, low = channels.max(axis=-1), channels.min(axis=-1)
    lightness = (high + low) / 2
    spread = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        saturation = np.where(
            spread == 0,
            0.0,
            np.where(lightness <= 0.5, spread / (high + low), spread / (2.0 - high - low)),
        )
    grey = np.round(lightness * 25.0).astype(np.int64)
    grey_index = np.where(grey == 0, 16, np.where(grey == 25, 231, 231 + grey))
    values = rgb.astype(np.float64)
    six = np.round(np.where(values < 95, values / 95, 1 + (values - 95) / 40)).astype(np.int64)
    cube_index = 16 + 36 * six[..., 0] + 6 * six[..., 1] + six[..., 2]
    index = np.where(saturation < 0.15, grey_index, cube_index)
    return _PALETTE[index]


def _packed(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    channels = rgb.astype(np.uint32)
    return np.asarray(channels[..., 0] << 16 | channels[..., 1] << 8 | channels[..., 2])


@dataclass(frozen=True)
class HalfBlocks:
    """An RGB image as rows of half-block cells: `width` cells by len(strips) rows."""

    strips: tuple[Strip, ...]
    width: int

    @classmethod
    def from_rgb(
        cls, rgb: npt.NDArray[np.uint8], color_system: ColorSystem | None = None
    ) -> HalfBlocks:
        """From an H×W×3 array (an odd last row is drawn over black), for a terminal with
        `color_system` (None: worked out when painted)."""
        height, width = rgb.shape[:2]
        if color_system == ColorSystem.EIGHT_BIT:
            rgb = to_256_colors(rgb)
        if height % 2:
            rgb = np.concatenate([rgb, np.zeros((1, width, 3), np.uint8)])
        packed = _packed(rgb)
        strips = []
        for y in range(0, packed.shape[0], 2):
            upper, lower = packed[y].tolist(), packed[y + 1].tolist()
            segments = []
            start = 0
            for x in range(1, width + 1):
                if x == width or upper[x] != upper[start] or lower[x] != lower[start]:
                    style = _style(upper[start], lower[start], color_system)
                    segments.append(Segment(LOWER_HALF * (x - start), style))
                    start = x
            strips.append(Strip(segments, width))
        return cls(tuple(strips), width)


class HalfBlockImage(Widget):
    """A `HalfBlocks` image, or a line of text where it will be (while it is drawn)."""

    DEFAULT_CSS = """
    HalfBlockImage {
        width: auto;
        height: auto;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.image: HalfBlocks | None = None
        self._strips: tuple[Strip, ...] = ()
        self._width = 0

    def show(self, image: HalfBlocks) -> None:
        """Draw `image` (its size sets the widget's)."""
        self.image = image
        self._set(image.strips, image.width)

    def show_text(self, text: str, style: str = "dim") -> None:
        """One line of text instead of an image."""
        self.image = None
        line = Text(text, style=style, no_wrap=True)
        self._set((Strip(list(line.render(self.app.console))),), line.cell_len)

    def _set(self, strips: tuple[Strip, ...], width: int) -> None:
        resized = (width, len(strips)) != (self._width, len(self._strips))
        self._strips, self._width = strips, width
        # Inline sizes: the stylesheet's panel rules would stretch the widget otherwise.
        self.styles.width = width
        self.styles.height = len(strips)
        self.refresh(layout=resized)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self._width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._strips)

    def render_line(self, y: int) -> Strip:
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width)
