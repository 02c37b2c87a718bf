"""The settings form's preview, made in a thread worker: one image predicted with the stored
settings (before) and with the form's (after), drawn side by side as half-block pixels.

Predictions are kept between drawings: a resize only draws again, a change of the form
predicts only the after side, and the before side is predicted again only when the stored
settings change (a save). Another image (ctrl+n, ctrl+b) predicts both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from rich.color import ColorSystem
from rich.text import Text

from segtui.core.accuracy_settings import settings_preview
from segtui.core.datasets import ImageReadError, load_image
from segtui.core.predictions import ImagePrediction, Instance
from segtui.core.visualize import (
    ImageComparison,
    LegendEntry,
    blank_image,
    class_name,
    half_block_size,
)
from segtui.core.workspace import Workspace
from segtui.ui.screens.visualize_drawing import legend_text
from segtui.ui.widgets.half_blocks import HalfBlocks

#: Every instance the decoder keeps is drawn: its score threshold is one of the settings.
DRAW_THRESHOLD = 0.0
#: A legend takes at most this share of its panel's rows (the image keeps the rest).
LEGEND_SHARE = 0.35
#: Instances match across the two sides at this mask IoU (as the accuracy report matches).
MATCH_IOU = 0.5


@dataclass(frozen=True)
class PreviewImage:
    """The image the preview predicts: its path, and its name in the dataset."""

    path: Path
    name: str


@dataclass(frozen=True)
class PreviewRequest:
    """One preview: the form's pending changes, drawn for panels of a size."""

    model_id: int
    image: PreviewImage
    #: The stored settings' version (the before side is predicted again when it changes).
    before_version: str
    #: What the after side runs with: the form's changes, and keys back to detected.
    changes: Mapping[str, object]
    resets: frozenset[str]
    #: A hashable form of `changes` (the after side is predicted again when it changes).
    changes_key: tuple[tuple[str, str], ...]
    class_names_before: tuple[str, ...]
    class_names_after: tuple[str, ...]
    columns: int
    rows: int
    error_style: str = "bold red"
    color_system: ColorSystem | None = None


@dataclass(frozen=True)
class PreviewPredictions:
    """Both sides' instances and the image with their masks decoded (kept between drawings)."""

    image: PreviewImage
    before_version: str
    changes_key: tuple[tuple[str, str], ...]
    before: tuple[Instance, ...]
    after: tuple[Instance, ...]
    comparison: ImageComparison
    #: Why the image could not be read (the masks are drawn on grey), or "".
    unreadable: str


@dataclass(frozen=True)
class PreviewDrawing:
    """A finished preview: each side's picture and legend, and what they were made from."""

    request: PreviewRequest
    predictions: PreviewPredictions
    before: HalfBlocks
    after: HalfBlocks
    before_legend: Text
    after_legend: Text
    layout: LegendLayout
    #: Instances on either side with no counterpart on the other (same class, mask IoU ≥ 0.5).
    differing: int


def _comparison(
    image: PreviewImage,
    before: tuple[Instance, ...],
    after: tuple[Instance, ...],
    class_names: tuple[str, ...],
) -> tuple[ImageComparison, str]:
    try:
        pixels = load_image(image.path)
        height, width = pixels.shape[:2]
        a = ImagePrediction(image.name, width, height, list(after))
        b = ImagePrediction(image.name, width, height, list(before))
        return ImageComparison.from_bgr(pixels, a, b, class_names, iou=MATCH_IOU), ""
    except ImageReadError as exc:
        sizes = [inst.rle["size"] for inst in (*after, *before)]
        height, width = (int(sizes[0][0]), int(sizes[0][1])) if sizes else (64, 64)
        a = ImagePrediction(image.name, width, height, list(after))
        b = ImagePrediction(image.name, width, height, list(before))
        canvas = blank_image(width, height)
        return ImageComparison(canvas, a, b, class_names, iou=MATCH_IOU), str(exc)


def predict(
    ws: Workspace, request: PreviewRequest, kept: PreviewPredictions | None
) -> PreviewPredictions:
    """Both sides' predictions: those in `kept` where they still hold, the others run now."""
    before: tuple[Instance, ...] | None = None
    after: tuple[Instance, ...] | None = None
    if kept is not None and kept.image != request.image:
        kept = None  # another image: both sides are predicted again
    if kept is not None and kept.before_version == request.before_version:
        before = kept.before
        if kept.changes_key == request.changes_key:
            after = kept.after
    if before is None:
        before = tuple(settings_preview(ws, request.model_id, {}, request.image.path))
    if after is None:
        after = (
            tuple(
                settings_preview(
                    ws, request.model_id, request.changes, request.image.path, reset=request.resets
                )
            )
            if request.changes or request.resets
            else before
        )
    unchanged = kept is not None and (before, after) == (kept.before, kept.after)
    if kept is not None and unchanged and kept.comparison.class_names == request.class_names_after:
        # Only the stored version or the form's text moved (e.g. "0, 0, 0" for "0,0,0").
        return replace(kept, before_version=request.before_version, changes_key=request.changes_key)
    comparison, unreadable = _comparison(request.image, before, after, request.class_names_after)
    return PreviewPredictions(
        request.image,
        request.before_version,
        request.changes_key,
        before,
        after,
        comparison,
        unreadable,
    )


def _renamed(entries: list[LegendEntry], names: tuple[str, ...]) -> list[LegendEntry]:
    """The before side's entries under the stored class names (the form may rename them)."""
    return [replace(e, class_name=class_name(names, e.class_id)) for e in entries]


def _lines(text: Text) -> int:
    return max(1, len(text.plain.splitlines()))


def _clipped(text: Text, rows: int) -> Text:
    """`text` in at most `rows` lines, the last saying how many more there were."""
    lines = text.split("\n")
    if len(lines) <= rows:
        return text
    kept = lines[: max(0, rows - 1)]
    more = Text(f"… {len(lines) - len(kept)} more", style="dim")
    return Text("\n").join([*kept, more])


@dataclass(frozen=True)
class LegendLayout:
    """Where the legends go: under the images (`width` 0) or beside them, `width` cells wide."""

    width: int
    rows: int
    image_size: tuple[int, int]


def legend_layout(
    image_size: tuple[int, int], chips: tuple[int, int], lines_below: int, columns: int, rows: int
) -> LegendLayout:
    """The placement that leaves the larger image: legends under it (at most a share of the
    rows), or beside it one instance a line (`chips`: the widest chip, the most instances).

    A square image in a wide panel has columns to spare: beside, it gets every row.
    """
    width, height = image_size
    legend_rows = min(lines_below, max(1, int(rows * LEGEND_SHARE)))
    below = half_block_size(width, height, columns, max(2, rows - legend_rows))
    widest, count = chips
    beside_width = min(widest, columns // 2)
    beside = half_block_size(width, height, max(4, columns - beside_width - 1), rows)
    if count and beside[0] * beside[1] > below[0] * below[1]:
        return LegendLayout(beside_width, rows, beside)
    return LegendLayout(0, legend_rows, below)


def _legend(entries: list[LegendEntry], error_style: str, width: int) -> Text:
    """The instances as chips (Visualize's), or a line saying there are none: every
    instance the decoder keeps is drawn, so there is no threshold to speak of."""
    if not entries:
        return Text("no instances found", style="dim")
    return legend_text(entries, error_style=error_style, width=width)


def _widest_chip(entries: list[LegendEntry]) -> int:
    return max((len(e.text()) + 2 for e in entries), default=0)


def draw(predictions: PreviewPredictions, request: PreviewRequest) -> PreviewDrawing:
    """Both sides at the request's size: the legends laid out first (under the images or
    beside them, whichever leaves the larger image), the images in the space left."""
    comparison = predictions.comparison
    after_entries, before_entries = comparison.legends(DRAW_THRESHOLD)
    before_entries = _renamed(before_entries, request.class_names_before)
    if predictions.after == predictions.before:
        # One prediction on both sides: nothing differs (an empty mask matches no mask,
        # itself included, and would be marked ✗).
        after_entries, before_entries = (
            [replace(e, matched=True) for e in entries]
            for entries in (after_entries, before_entries)
        )
    columns, rows = max(4, request.columns), max(2, request.rows)
    style = request.error_style
    below = [_legend(e, style, columns) for e in (before_entries, after_entries)]
    layout = legend_layout(
        comparison.working_size,
        (
            max(_widest_chip(before_entries), _widest_chip(after_entries)),
            max(len(before_entries), len(after_entries)),
        ),
        max(_lines(text) for text in below),
        columns,
        rows,
    )
    if layout.width:
        before_legend, after_legend = (
            _clipped(_legend(e, style, layout.width), rows) for e in (before_entries, after_entries)
        )
    else:
        before_legend, after_legend = (_clipped(text, layout.rows) for text in below)
    vis = comparison.render(DRAW_THRESHOLD, layout.image_size, highlight=True)
    differing = sum(not e.matched for e in (*after_entries, *before_entries))
    return PreviewDrawing(
        request=request,
        predictions=predictions,
        before=HalfBlocks.from_rgb(vis.parent, request.color_system),
        after=HalfBlocks.from_rgb(vis.optimized, request.color_system),
        before_legend=before_legend,
        after_legend=after_legend,
        layout=layout,
        differing=differing,
    )


def make_preview(
    ws: Workspace, request: PreviewRequest, kept: PreviewPredictions | None
) -> PreviewDrawing:
    """Predict what `kept` does not hold, then draw (in a thread worker)."""
    return draw(predict(ws, request, kept), request)
