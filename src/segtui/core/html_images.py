"""The HTML report's images where A ≠ B: both models' masks side by side, disagreement in magenta.

Drawn with Visualize's own code (`visualize.ImageComparison`) at the report's score
threshold and match IoU, so a panel's instances and matches are the report row's. The
images shown are the ones where the two disagree most (the most unmatched instances,
then the largest |A − B|), at most `MAX_IMAGES`; each panel is scaled down to at most
480 px wide and embedded as a data: URI (JPEG or PNG, whichever is smaller).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from segtui.core.datasets import ImageReadError, load_image
from segtui.core.html_page import element, esc, void_element
from segtui.core.matching import BasicRow
from segtui.core.predictions import ImagePrediction
from segtui.core.progress import ProgressCallback, no_progress
from segtui.core.visualize import (
    DISAGREE_COLOR,
    ImageComparison,
    LegendEntry,
    RgbArray,
    Visualization,
    blank_image,
    fit_size,
    to_pil,
)

#: At most this many images are drawn (the page says how many more differ).
MAX_IMAGES = 24
PANEL_MAX_WIDTH = 480
PANEL_MAX_HEIGHT = 400
#: A narrower image is shown enlarged to this width (sharp pixels from twice its size on).
SHOWN_MIN_WIDTH = 360
#: A panel lists this many instances one by one; more are counted per class (listed folded).
LISTED_INSTANCES = 12
JPEG_QUALITY = 82


@dataclass(frozen=True)
class ReportImages:
    """What drawing needs of a report: predictions by image, where the images are, how it matched."""

    optimized: Mapping[str, ImagePrediction]
    parent: Mapping[str, ImagePrediction]
    paths: Mapping[str, Path]
    class_names: Sequence[str]
    threshold: float
    iou: float
    #: The B panel's title: the parent model (its predictions are what a report stores).
    b_title: str


@dataclass(frozen=True)
class EncodedPanel:
    """One panel as a data: URI, and the size it is shown at."""

    uri: str
    width: int
    height: int
    size_bytes: int
    #: Shown at twice its size or more: its pixels drawn as sharp squares.
    enlarged: bool


@dataclass(frozen=True)
class DrawnImage:
    row: BasicRow
    optimized: EncodedPanel
    parent: EncodedPanel
    visualization: Visualization
    #: Why the image could not be read (its masks are drawn on grey), or None.
    unreadable: str | None


def unmatched(row: BasicRow) -> int:
    """Instances of A or B without a counterpart in the other."""
    return row["a"] + row["b"] - 2 * row["matches"]


def images_to_show(basic: Sequence[BasicRow], limit: int = MAX_IMAGES) -> list[BasicRow]:
    """The rows where A ≠ B, the most unmatched first (then the largest |A − B|, then by name)."""
    differing = [row for row in basic if row["differs"]]
    differing.sort(key=lambda r: (-unmatched(r), -abs(r["a"] - r["b"]), r["image"]))
    return differing[: max(0, limit)]


def encode_panel(array: RgbArray) -> EncodedPanel:
    """The smaller of a JPEG and a PNG of the panel, as a data: URI."""
    image = to_pil(array)
    jpeg, png = io.BytesIO(), io.BytesIO()
    image.save(jpeg, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    image.save(png, format="PNG", optimize=True)
    mime, data = min(
        (("image/jpeg", jpeg.getvalue()), ("image/png", png.getvalue())), key=lambda m: len(m[1])
    )
    width, height = image.size
    shown = max(width, SHOWN_MIN_WIDTH)
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return EncodedPanel(
        uri, shown, max(1, round(height * shown / width)), len(uri), shown >= 2 * width
    )


def _comparison(images: ReportImages, name: str) -> tuple[ImageComparison, str | None]:
    """Both models' masks of one image, decoded; on grey where the image cannot be read."""
    optimized = images.optimized.get(name) or images.parent.get(name)
    if optimized is None:
        optimized = ImagePrediction(name, 1, 1, [])
    empty = ImagePrediction(name, optimized.width, optimized.height, [])
    parent = images.parent.get(name, empty)
    if name not in images.optimized:
        optimized = empty
    try:
        path = images.paths.get(name)
        if path is None:
            raise ImageReadError("no longer part of the dataset")
        pixels = load_image(path)
        if pixels.shape[:2] != (optimized.height, optimized.width):
            raise ImageReadError(
                f"its size changed since the report ({pixels.shape[1]}×{pixels.shape[0]})"
            )
        comparison = ImageComparison.from_bgr(
            pixels, optimized, parent, images.class_names, iou=images.iou
        )
        return comparison, None
    except ImageReadError as exc:
        canvas = blank_image(optimized.width, optimized.height)
        comparison = ImageComparison(canvas, optimized, parent, images.class_names, iou=images.iou)
        return comparison, str(exc)


def draw_image(images: ReportImages, row: BasicRow) -> DrawnImage:
    """One image's two panels at the report's threshold, at most 480 px wide."""
    comparison, unreadable = _comparison(images, row["image"])
    width, height = comparison.source_size
    size = None
    if width > PANEL_MAX_WIDTH or height > PANEL_MAX_HEIGHT:
        size = fit_size(width, height, PANEL_MAX_WIDTH, PANEL_MAX_HEIGHT)
    vis = comparison.render(images.threshold, size, highlight=True)
    return DrawnImage(row, encode_panel(vis.optimized), encode_panel(vis.parent), vis, unreadable)


def _swatch(color: tuple[int, int, int]) -> str:
    r, g, b = color
    return f'<span class="swatch" style="background:rgb({r},{g},{b})"></span>'


def _chip(swatch: str, text: str, unmatched: int, *, count: bool = False) -> str:
    """A legend chip: an instance (red with ✗ without a match) or a class's count (its
    unmatched in red)."""
    if not unmatched:
        return element("span", swatch + esc(text), {"class": "chip"})
    if count:
        miss = element("span", f"({unmatched} ✗)", {"class": "miss"})
        return element("span", f"{swatch}{esc(text)} {miss}", {"class": "chip"})
    return element(
        "span", f"{swatch}{esc(text)} ✗", {"class": "chip unmatched", "title": "without a match"}
    )


def legend_html(entries: Sequence[LegendEntry]) -> str:
    """The panel's instances, strongest first: class colour, name and score, ✗ without a match.

    Past `LISTED_INSTANCES`, a count per class (and its unmatched), the instances folded below.
    """
    if not entries:
        return "<div class='legend'><span class='count'>no instances at this threshold</span></div>"
    chips = [
        _chip(_swatch(e.color), f"{e.class_name} {e.score:.2f}", int(not e.matched))
        for e in entries
    ]
    if len(entries) <= LISTED_INSTANCES:
        return element("div", "".join(chips), {"class": "legend"})
    by_class: dict[str, list[LegendEntry]] = {}
    for entry in entries:
        by_class.setdefault(entry.class_name, []).append(entry)
    counts = [
        _chip(
            _swatch(group[0].color),
            f"{name} × {len(group)}",
            sum(not e.matched for e in group),
            count=True,
        )
        for name, group in sorted(by_class.items(), key=lambda item: -len(item[1]))
    ]
    folded = element(
        "details",
        f"<summary>every instance ({len(entries)})</summary>"
        + element("div", "".join(chips), {"class": "legend"}),
    )
    return element("div", "".join(counts), {"class": "legend"}) + folded


def _panel(
    title: str, side: str, panel: EncodedPanel, legend: Sequence[LegendEntry], alt: str
) -> str:
    image = void_element(
        "img",
        {
            "src": panel.uri,
            "width": panel.width,
            "height": panel.height,
            "alt": alt,
            "class": "small" if panel.enlarged else None,
        },
    )
    head = element("h4", esc(title), {"class": f"side-{side}"})
    return element("div", head + image + legend_html(legend), {"class": "panel"})


def figure_html(drawn: DrawnImage, b_title: str) -> str:
    """One image: caption with the row's counts, then A's and B's panels."""
    row, vis = drawn.row, drawn.visualization
    caption = (
        f"<span class='image-name'>{esc(row['image'])}</span> · A {row['a']} · B {row['b']} · "
        f"{row['matches']} match{'' if row['matches'] == 1 else 'es'} · "
        f"{unmatched(row)} unmatched · {vis.disagreement_share * 100:.1f} % of masked pixels differ"
    )
    if drawn.unreadable:
        caption += f" · <em>image not readable ({esc(drawn.unreadable)}): masks on grey</em>"
    name = row["image"]
    panels = _panel(
        "A · optimized", "a", drawn.optimized, vis.optimized_legend, f"{name}: optimized model"
    ) + _panel(b_title, "b", drawn.parent, vis.parent_legend, f"{name}: {b_title}")
    inner = f"<figcaption>{caption}</figcaption>" + element("div", panels, {"class": "panels"})
    return element("figure", inner, {"class": "pair", "data-image": name})


def images_html(
    images: ReportImages,
    basic: Sequence[BasicRow],
    *,
    limit: int = MAX_IMAGES,
    progress: ProgressCallback = no_progress,
) -> tuple[str, int]:
    """The section's HTML and the bytes its embedded images take."""
    chosen = images_to_show(basic, limit)
    differing = sum(row["differs"] for row in basic)
    if not differing:
        return "<p class='note'>A and B agree on every image: nothing to show.</p>", 0
    figures, image_bytes = [], 0
    for n, row in enumerate(chosen):
        progress(n / len(chosen), f"Drawing {row['image']}")
        drawn = draw_image(images, row)
        image_bytes += drawn.optimized.size_bytes + drawn.parent.size_bytes
        figures.append(figure_html(drawn, images.b_title))
    more = differing - len(chosen)
    r, g, b = DISAGREE_COLOR
    intro = (
        f"<p class='note'>{len(chosen)} of the {differing} images where A ≠ B, the most "
        "unmatched instances first"
        + (f"; {more} more are in the tables (filter: only images where A ≠ B)" if more else "")
        + f". Drawn at score ≥ {images.threshold:g}, matched at IoU ≥ {images.iou:g}; "
        f"embedded images: {image_bytes / 1024:.0f} KiB.</p>"
        f"<p class='key'><span class='swatch' style='background:rgb({r},{g},{b})'></span>"
        "pixels where the two disagree (covered by different classes, or by one model only), "
        "painted on the panel of the model that covers them · ✗ an instance without a match "
        "in the other model.</p>"
    )
    return intro + element("div", "".join(figures), {"class": "figures"}), image_bytes
