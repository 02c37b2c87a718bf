"""The HTML report's images where A ≠ B: the models' masks side by side, disagreement hatched.

Drawn with Visualize's own code (`visualize.ImageComparison`) at the report's score
threshold and match IoU, so a panel's instances and matches are the report row's: A
against the parent's predictions, or (annotations reports) A against the annotations,
with the parent model beside them, matched against the annotations too. The pixels
where the two disagree are hatched in magenta and white stripes (Visualize paints them
solid magenta, which a magenta object in the image would look like). The images shown
are the ones where the two disagree most (the most unmatched instances, then the
largest |A − B|), at most `MAX_IMAGES`; each panel is scaled down to at most 480 px
wide and embedded as a data: URI (JPEG or PNG, whichever is smaller).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from segtui.core.html_page import element, esc, void_element
from segtui.core.matching import BasicRow
from segtui.core.predictions import ImagePrediction
from segtui.core.progress import ProgressCallback, no_progress
from segtui.core.report import ReportImages
from segtui.core.visualize import (
    DISAGREE_COLOR,
    ImageComparison,
    LegendEntry,
    RgbArray,
    fit_size,
    report_image,
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
#: The hatching of the disagreement: stripes this many pixels apart, magenta then white.
STRIPE_PERIOD = 6
STRIPE_LIGHT = (255, 255, 255)
#: A pixel Visualize's highlight changed by more than this (0-255) is a disagreement pixel.
PAINTED_TOLERANCE = 12
#: A stored prediction claiming a larger side than this is damaged (never drawn on grey).
MAX_SIDE = 20_000
#: The legend's and the page's sample of the hatching.
_R, _G, _B = DISAGREE_COLOR
HATCH_CSS = f"repeating-linear-gradient(135deg, rgb({_R},{_G},{_B}) 0 3px, #fff 3px 6px)"
Side = Literal["a", "b", "ref"]


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
class DrawnPanel:
    """One side of an image: its title, its picture and its instances."""

    title: str
    side: Side
    image: EncodedPanel
    legend: Sequence[LegendEntry]
    #: Whether its legend shows scores (annotations have none).
    scored: bool = True


@dataclass(frozen=True)
class DrawnImage:
    row: BasicRow
    panels: Sequence[DrawnPanel]
    #: Share of the masked pixels where A and B disagree.
    disagreement_share: float
    #: Why the image could not be read (its masks are drawn on grey), or None.
    unreadable: str | None

    @property
    def size_bytes(self) -> int:
        return sum(panel.image.size_bytes for panel in self.panels)


class DrawError(Exception):
    """An image's stored masks cannot be drawn (a damaged predictions file); says why."""


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


def hatch(plain: RgbArray, highlighted: RgbArray) -> RgbArray:
    """`plain` with diagonal magenta and white stripes where `highlighted` was painted on it."""
    change = np.abs(highlighted.astype(np.int16) - plain.astype(np.int16)).max(axis=2)
    painted = change > PAINTED_TOLERANCE
    rows, columns = np.indices(painted.shape)
    dark = (rows + columns) % STRIPE_PERIOD < STRIPE_PERIOD // 2
    out = plain.copy()
    out[painted & dark] = DISAGREE_COLOR
    out[painted & ~dark] = STRIPE_LIGHT
    return out


def _panels(
    comparison: ImageComparison, threshold: float, size: tuple[int, int] | None
) -> tuple[RgbArray, RgbArray, list[LegendEntry], list[LegendEntry], float]:
    """Both sides of one comparison, the disagreement hatched; legends; share that differs."""
    plain = comparison.render(threshold, size, highlight=False)
    painted = comparison.render(threshold, size, highlight=True)
    return (
        hatch(plain.optimized, painted.optimized),
        hatch(plain.parent, painted.parent),
        painted.optimized_legend,
        painted.parent_legend,
        painted.disagreement_share,
    )


def draw_image(images: ReportImages, row: BasicRow) -> DrawnImage:
    """One image's panels at the report's threshold, at most 480 px wide (DrawError: damaged)."""
    name = row["image"]
    reference = images.truth if images.truth is not None else images.parent
    known = images.optimized.get(name) or reference.get(name) or images.parent.get(name)
    width, height = (known.width, known.height) if known is not None else (1, 1)
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise DrawError(f"its stored size {width}×{height} is not an image's")
    empty = ImagePrediction(name, width, height, [])
    optimized = images.optimized.get(name, empty)
    pixels, unreadable = report_image(images.paths.get(name), width, height)
    size = None
    if width > PANEL_MAX_WIDTH or height > PANEL_MAX_HEIGHT:
        size = fit_size(width, height, PANEL_MAX_WIDTH, PANEL_MAX_HEIGHT)
    names, iou, threshold = images.class_names, images.iou, images.threshold
    try:
        b = ImageComparison(pixels, optimized, reference.get(name, empty), names, iou=iou)
        a_panel, b_panel, a_legend, b_legend, share = _panels(b, threshold, size)
        panels = [
            DrawnPanel("A · optimized", "a", encode_panel(a_panel), a_legend),
            DrawnPanel(
                "B · parent" if images.truth is None else "B · annotations",
                "b",
                encode_panel(b_panel),
                b_legend,
                scored=images.truth is None,
            ),
        ]
        if images.truth is not None:
            # The parent against the same annotations: does the parent get this image right?
            parent = images.parent.get(name, empty)
            ref = ImageComparison(pixels, parent, reference.get(name, empty), names, iou=iou)
            parent_panel, _, parent_legend, _, _ = _panels(ref, threshold, size)
            panels.append(
                DrawnPanel(
                    "Parent model · against the annotations",
                    "ref",
                    encode_panel(parent_panel),
                    parent_legend,
                )
            )
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise DrawError(f"its stored masks cannot be decoded ({exc})") from exc
    return DrawnImage(row, panels, share, unreadable)


def _swatch(color: tuple[int, int, int]) -> str:
    r, g, b = color
    return f'<span class="swatch" style="background:rgb({r},{g},{b})"></span>'


def hatch_swatch() -> str:
    """The legend's sample of the disagreement hatching."""
    return f'<span class="swatch hatch" style="background:{HATCH_CSS}"></span>'


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


def legend_html(entries: Sequence[LegendEntry], *, scored: bool = True) -> str:
    """The panel's instances, strongest first: class colour, name and score, ✗ without a match.

    Past `LISTED_INSTANCES`, a count per class (and its unmatched), the instances folded below.
    """
    if not entries:
        return "<div class='legend'><span class='count'>no instances at this threshold</span></div>"
    chips = [
        _chip(
            _swatch(e.color),
            f"{e.class_name} {e.score:.2f}" if scored else e.class_name,
            int(not e.matched),
        )
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


def _panel(panel: DrawnPanel, name: str) -> str:
    encoded = panel.image
    image = void_element(
        "img",
        {
            "src": encoded.uri,
            "width": encoded.width,
            "height": encoded.height,
            "alt": f"{name}: {panel.title}",
            "class": "small" if encoded.enlarged else None,
        },
    )
    head = element("h4", esc(panel.title), {"class": f"side-{panel.side}"})
    legend = legend_html(panel.legend, scored=panel.scored)
    return element("div", head + image + legend, {"class": "panel"})


def _caption(row: BasicRow) -> str:
    return (
        f"<span class='image-name'>{esc(row['image'])}</span> · A {row['a']} · B {row['b']} · "
        f"{row['matches']} match{'' if row['matches'] == 1 else 'es'} · "
        f"{unmatched(row)} unmatched"
    )


def figure_html(drawn: DrawnImage) -> str:
    """One image: caption with the row's counts, then its panels (A's, B's, the parent's)."""
    row = drawn.row
    caption = _caption(row) + f" · {drawn.disagreement_share * 100:.1f} % of masked pixels differ"
    if drawn.unreadable:
        caption += f" · <em>image not readable ({esc(drawn.unreadable)}): masks on grey</em>"
    panels = "".join(_panel(panel, row["image"]) for panel in drawn.panels)
    inner = f"<figcaption>{caption}</figcaption>" + element("div", panels, {"class": "panels"})
    attrs = {"class": f"pair panels-{len(drawn.panels)}", "data-image": row["image"]}
    return element("figure", inner, attrs)


def undrawn_html(row: BasicRow, why: str) -> str:
    """An image whose masks cannot be drawn: its counts and why."""
    caption = _caption(row) + f" · <em>not drawn: {esc(why)}</em>"
    inner = f"<figcaption>{caption}</figcaption>"
    return element("figure", inner, {"class": "pair undrawn", "data-image": row["image"]})


def _intro(images: ReportImages, shown: int, differing: int, image_bytes: int) -> str:
    more = differing - shown
    b_is = "the parent's predictions" if images.truth is None else "the annotations"
    parent = (
        ""
        if images.truth is None
        else " The parent model is drawn beside them, matched against the annotations too."
    )
    return (
        f"<p class='note'>{shown} of the {differing} images where A (the optimized model) "
        f"≠ B ({b_is}), the most unmatched instances first"
        + (f"; {more} more are in the tables (filter: only images where A ≠ B)" if more else "")
        + f". Drawn at score ≥ {images.threshold:g}, matched at IoU ≥ {images.iou:g}; "
        f"embedded images: {image_bytes / 1024:.0f} KiB.{parent}</p>"
        f"<p class='key'>{hatch_swatch()}hatched: pixels where the two disagree (covered by "
        "different classes, or by one side only), on the panel of the side that covers them "
        "· ✗ an instance without a match on the other side.</p>"
    )


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
        try:
            drawn = draw_image(images, row)
        except DrawError as exc:
            figures.append(undrawn_html(row, str(exc)))
            continue
        image_bytes += drawn.size_bytes
        figures.append(figure_html(drawn))
    intro = _intro(images, len(chosen), differing, image_bytes)
    return intro + element("div", "".join(figures), {"class": "figures"}), image_bytes
