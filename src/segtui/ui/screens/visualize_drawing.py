"""Visualize's drawing, done in thread workers: an image decoded with its masks, then drawn
at a threshold into panels of a given size, legends included.

A drawing is planned from the panels' size alone (`PanelGeometry`): the legends are
wrapped first and the image gets the rows they leave, so that showing a drawing never
changes the space it was drawn for (no second drawing after the legends arrive), and
a drawing made ahead of time (the next image) fits when it is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PIL import Image
from rich.color import ColorSystem
from rich.text import Text

from segtui.core.errors import SegtuiError
from segtui.core.predictions import ImagePrediction
from segtui.core.report import ReportImages
from segtui.core.visualize import (
    ImageComparison,
    LegendEntry,
    Panel,
    Visualization,
    half_block_size,
    report_image,
    to_pil,
)
from segtui.ui.screens.visualize_session import ViewMode
from segtui.ui.widgets.half_blocks import HalfBlocks

#: A legend takes at most this share of its panel's rows (the image keeps the rest).
LEGEND_SHARE = 0.4
#: What a panel shows: half-block cells, or a PIL image for a terminal-graphics widget.
Picture = HalfBlocks | Image.Image


@dataclass(frozen=True)
class PreparedImage:
    name: str
    comparison: ImageComparison
    unreadable: str | None  # why the image could not be read (the masks are drawn on grey)


def prepare_image(report: ReportImages, name: str) -> PreparedImage:
    """Decode one image and both models' masks of it."""
    optimized = report.optimized.get(name) or report.parent.get(name)
    if optimized is None:
        raise SegtuiError(f"The report has no predictions for {name!r}.", "Re-run the report.")
    empty = ImagePrediction(name, optimized.width, optimized.height, [])
    parent = report.parent.get(name, empty)
    if name not in report.optimized:
        optimized = empty
    pixels, unreadable = report_image(report.paths.get(name), optimized.width, optimized.height)
    comparison = ImageComparison(pixels, optimized, parent, report.class_names, iou=report.iou)
    return PreparedImage(name, comparison, unreadable)


def legend_text(entries: list[LegendEntry], *, error_style: str, width: int = 0) -> Text:
    """The instances of one panel as coloured chips, strongest first; ✗ where there is no match.

    Chips wrap as wholes within `width` cells (0: one line), never inside a chip.
    """
    if not entries:
        return Text("no instances at this threshold", style="dim")
    text = Text()
    used = 0
    for entry in entries:
        chip = Text()
        r, g, b = entry.color
        chip.append("■ ", style=f"rgb({r},{g},{b})")
        chip.append(f"{entry.class_name} {entry.score:.2f}")
        if not entry.matched:
            chip.append(" ✗", style=error_style)
        if used:
            if width and used + 2 + chip.cell_len > width:
                text.append("\n")
                used = 0
            else:
                text.append("  ")
                used += 2
        text.append_text(chip)
        used += chip.cell_len
    return text


def overlay_legend(
    optimized: list[LegendEntry], parent: list[LegendEntry], *, error_style: str, width: int
) -> Text:
    """Both models' instances under the overlay: A's chips, then B's."""
    inner = max(0, width - 3)
    return Text.assemble(
        ("A: ", "bold"),
        legend_text(optimized, error_style=error_style, width=inner),
        "\n",
        ("B: ", "bold"),
        legend_text(parent, error_style=error_style, width=inner),
    )


def _lines(text: Text) -> int:
    return max(1, len(text.plain.splitlines()))


@dataclass(frozen=True)
class PanelGeometry:
    """The space of each drawn panel: its content (title, image and legend) in cells."""

    panels: tuple[Panel, ...]
    width: int
    height: int

    @property
    def legend_rows(self) -> int:
        """The most rows a legend may take."""
        return max(1, int(self.height * LEGEND_SHARE))


@dataclass(frozen=True)
class DrawRequest:
    """One drawing: an image at a threshold in a view, for panels of a size (a cache key)."""

    name: str
    threshold: float
    highlight: bool
    mode: ViewMode
    sharp: bool
    geometry: PanelGeometry
    error_style: str
    #: The terminal's colours (half blocks are made for them; None: worked out when painted).
    color_system: ColorSystem | None = None


@dataclass(frozen=True)
class Drawing:
    """A finished drawing: the panels' pictures, legends, and the rows the legends take."""

    request: DrawRequest
    prepared: PreparedImage
    vis: Visualization
    pictures: Mapping[Panel, Picture]
    legends: Mapping[Panel, Text]
    legend_rows: int
    #: The cells the image was fitted into (columns, rows).
    cells: tuple[int, int]


def _legends(
    legends: tuple[list[LegendEntry], list[LegendEntry]], request: DrawRequest
) -> dict[Panel, Text]:
    (a, b), width, style = legends, request.geometry.width, request.error_style
    if request.mode == "overlay":
        return {"overlay": overlay_legend(a, b, error_style=style, width=width)}
    return {
        "optimized": legend_text(a, error_style=style, width=width),
        "parent": legend_text(b, error_style=style, width=width),
    }


def draw(
    report: ReportImages,
    prepared: PreparedImage | None,
    request: DrawRequest,
    cancelled: Callable[[], bool] = lambda: False,
) -> Drawing | None:
    """Decode the image (unless `prepared`), then draw it as `request` asks (None if cancelled).

    The legends are laid out first; the image fits the rows they leave under the title.
    """
    prepared = prepared if prepared is not None else prepare_image(report, request.name)
    if cancelled():
        return None
    comparison = prepared.comparison
    geometry = request.geometry
    # Legends first (only they decide the rows left for the image).
    legends = _legends(comparison.legends(request.threshold), request)
    rows_for_legends = min(max(_lines(t) for t in legends.values()), geometry.legend_rows)
    columns = max(4, geometry.width)
    rows = max(2, geometry.height - 1 - rows_for_legends)
    width, height = comparison.working_size
    # Terminal graphics get every pixel of the working resolution; half blocks two per cell.
    size = None if request.sharp else half_block_size(width, height, columns, rows)
    vis = comparison.render(request.threshold, size, highlight=request.highlight)
    pictures: dict[Panel, Picture] = {}
    for panel in geometry.panels:
        if cancelled():
            return None
        pixels = vis.panel(panel)
        pictures[panel] = (
            to_pil(pixels) if request.sharp else HalfBlocks.from_rgb(pixels, request.color_system)
        )
    return Drawing(request, prepared, vis, pictures, legends, rows_for_legends, (columns, rows))
