"""Rendering an image with both models' masks, and their disagreement (core, no UI)."""

from __future__ import annotations

import numpy as np
import pytest

from segtui.core.matching import match_instances
from segtui.core.predictions import ImagePrediction, Instance, encode_mask
from segtui.core.settings import VISUALIZE
from segtui.core.visualize import (
    DEFAULT_THRESHOLD,
    DISAGREE_ALPHA,
    DISAGREE_COLOR,
    MASK_ALPHA,
    WORKING_MAX_SIDE,
    ImageComparison,
    class_color,
    fit_size,
    half_block_size,
    score_text,
    step_threshold,
    summary_line,
    to_pil,
)

H, W = 40, 60
GREY = 100


def _rect(y0: int, y1: int, x0: int, x1: int, h: int = H, w: int = W) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask


def _inst(mask: np.ndarray, class_id: int = 0, score: float = 0.9) -> Instance:
    ys, xs = np.nonzero(mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    return Instance(class_id, score, box, encode_mask(mask))


def _blend(color: tuple[int, int, int], alpha: float, base: float = GREY) -> np.ndarray:
    return np.rint(base * (1 - alpha) + np.asarray(color, float) * alpha).astype(np.uint8)


def _magenta_over(color: tuple[int, int, int]) -> np.ndarray:
    """A class colour over the image, then the disagreement colour over that."""
    under = GREY * (1 - MASK_ALPHA) + np.asarray(color, float) * MASK_ALPHA
    over = under * (1 - DISAGREE_ALPHA) + np.asarray(DISAGREE_COLOR, float) * DISAGREE_ALPHA
    return np.rint(over).astype(np.uint8)


def _comparison(a: list[Instance], b: list[Instance], h: int = H, w: int = W) -> ImageComparison:
    image = np.full((h, w, 3), GREY, np.uint8)
    return ImageComparison(
        image,
        ImagePrediction("img.png", w, h, a),
        ImagePrediction("img.png", w, h, b),
        ["person", "car", "dog"],
    )


def test_mask_pixels_get_the_class_colour_and_the_rest_stays_untouched() -> None:
    mask = _rect(5, 20, 10, 30)
    comp = _comparison([_inst(mask, 1)], [_inst(mask, 1)])
    vis = comp.render(0.5, highlight=True)
    expected = _blend(class_color(1), MASK_ALPHA)
    for panel in (vis.optimized, vis.parent, vis.overlay):
        assert (panel[mask == 1] == expected).all()
        assert (panel[mask == 0] == GREY).all()
    assert not vis.disagreement.any()
    assert vis.disagreement_pixels == 0 and vis.covered_pixels == int(mask.sum())


def test_disagreement_is_exactly_where_only_one_model_covers_a_pixel() -> None:
    a_mask = _rect(5, 20, 10, 30)
    b_mask = _rect(10, 25, 20, 40)
    comp = _comparison([_inst(a_mask, 0)], [_inst(b_mask, 0)])
    vis = comp.render(0.5)
    xor = (a_mask ^ b_mask).astype(bool)
    assert (vis.disagreement == xor).all()
    assert vis.disagreement_pixels == int(xor.sum())
    assert vis.covered_pixels == int((a_mask | b_mask).sum())
    magenta = _blend(DISAGREE_COLOR, DISAGREE_ALPHA)
    # Overlay: agreement in the class colour, disagreement magenta, elsewhere the image.
    both = (a_mask & b_mask).astype(bool)
    assert (vis.overlay[xor] == magenta).all()
    assert (vis.overlay[both] == _blend(class_color(0), MASK_ALPHA)).all()
    assert (vis.overlay[~(xor | both)] == GREY).all()
    # Side by side, each panel marks the disagreement its own model covers (over its class colour);
    # the pixels only the other model covers stay the bare image there.
    a_only = (a_mask & ~b_mask).astype(bool)
    b_only = (b_mask & ~a_mask).astype(bool)
    over_class = _magenta_over(class_color(0))
    assert (vis.optimized[a_only] == over_class).all()
    assert (vis.optimized[b_only] == GREY).all()
    assert (vis.parent[b_only] == over_class).all()
    assert (vis.parent[a_only] == GREY).all()
    assert (vis.parent[both] == _blend(class_color(0), MASK_ALPHA)).all()
    # Without highlighting the panels show only their own masks.
    plain = comp.render(0.5, highlight=False)
    assert (plain.parent[a_only] == GREY).all()
    assert (plain.optimized[a_only] == _blend(class_color(0), MASK_ALPHA)).all()


def test_same_pixels_with_different_classes_disagree() -> None:
    mask = _rect(5, 20, 10, 30)
    vis = _comparison([_inst(mask, 0)], [_inst(mask, 2)]).render(0.5)
    assert (vis.disagreement == mask.astype(bool)).all()
    assert [e.matched for e in vis.optimized_legend] == [False]
    assert [e.class_name for e in vis.parent_legend] == ["dog"]


def test_threshold_decides_what_is_drawn_and_what_disagrees() -> None:
    mask = _rect(5, 20, 10, 30)
    weak = _rect(25, 35, 40, 55)
    comp = _comparison([_inst(mask, 0, 0.9), _inst(weak, 1, 0.4)], [_inst(mask, 0, 0.95)])
    high = comp.render(0.5)
    assert not high.disagreement.any()
    assert (high.optimized[weak == 1] == GREY).all()
    assert [e.text() for e in high.optimized_legend] == ["person 0.90"]
    low = comp.render(0.35)
    assert (low.disagreement == weak.astype(bool)).all()
    over_car = _magenta_over(class_color(1))
    assert (low.optimized[weak == 1] == over_car).all()
    assert (low.parent[weak == 1] == GREY).all()
    assert (low.overlay[weak == 1] == _blend(DISAGREE_COLOR, DISAGREE_ALPHA)).all()
    assert [e.text() for e in low.optimized_legend] == ["person 0.90", "car 0.40 ✗"]
    assert [e.matched for e in low.parent_legend] == [True]
    assert summary_line(low) == (
        "A 2 · B 1 · 1 match · 1 unmatched · 33.3 % of masked pixels differ · at score ≥ 0.35"
    )
    assert low.matches == 1 and comp.render(0.5).matches == 1


def test_legends_match_as_the_report_does() -> None:
    """Two equal B masks: the report's matching (B in stored order, the last of equal IoU)
    takes the 0.8 one; the legend marks the same one, though it lists B strongest first."""
    mask = _rect(5, 20, 10, 30)
    a = [_inst(mask, 0, 0.9)]
    b = [_inst(mask, 0, 0.4), _inst(mask, 0, 0.8)]
    assert match_instances(a, b, 0.5) == [(0, 1, 1.0)]
    _, parent = _comparison(a, b).legends(0.3)
    assert [(round(e.score, 2), e.matched) for e in parent] == [(0.8, True), (0.4, False)]


def test_legend_lists_instances_strongest_first_with_class_names() -> None:
    comp = _comparison(
        [_inst(_rect(0, 5, 0, 5), 2, 0.6), _inst(_rect(10, 20, 10, 20), 0, 0.97)],
        [_inst(_rect(10, 20, 10, 20), 0, 0.99), _inst(_rect(30, 35, 0, 9), 7, 0.7)],
    )
    a, b = comp.legends(0.5)
    assert [(e.class_name, round(e.score, 2), e.matched) for e in a] == [
        ("person", 0.97, True),
        ("dog", 0.6, False),
    ]
    # A class id beyond the names is still shown, by number.
    assert [(e.class_name, e.matched) for e in b] == [("person", True), ("#7", False)]
    assert b[1].color == class_color(7)


def test_render_to_a_size_keeps_the_panels_and_disagreement_in_step() -> None:
    a_mask = _rect(0, 20, 0, 30)
    comp = _comparison([_inst(a_mask, 0)], [])
    size = half_block_size(W, H, 30, 10)
    vis = comp.render(0.5, size)
    assert vis.size == size == (30, 20)
    assert vis.disagreement.shape == (20, 30)
    # The top-left quarter (A only) disagrees: magenta in the overlay, bare in B's panel.
    assert vis.disagreement[:10, :15].all() and not vis.disagreement[10:, :].any()
    assert not vis.disagreement[:, 15:].any()
    assert (vis.overlay[:10, :15] == _blend(DISAGREE_COLOR, DISAGREE_ALPHA)).all()
    assert (vis.parent == GREY).all()
    assert (vis.overlay[10:, 15:] == GREY).all()
    assert to_pil(vis.overlay).size == size


@pytest.mark.parametrize(
    ("image", "box", "expected"),
    [
        ((640, 480), (80, 80), (80, 60)),
        ((480, 640), (80, 80), (60, 80)),
        ((100, 100), (40, 100), (40, 40)),
        ((1000, 10), (50, 50), (50, 1)),
    ],
)
def test_fit_size_keeps_the_aspect_ratio(
    image: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert fit_size(*image, *box) == expected


def test_half_block_size_uses_two_pixels_per_cell_and_an_even_height() -> None:
    # 4:3 in 40 columns × 30 rows: 40 px wide, 30 px tall = 15 rows.
    assert half_block_size(640, 480, 40, 30) == (40, 30)
    # Limited by rows: 10 rows = 20 px tall, width 27 (aspect kept), height even.
    w, h = half_block_size(640, 480, 80, 10)
    assert (w, h) == (27, 20)
    assert abs(w / h - 640 / 480) < 0.05
    w, h = half_block_size(300, 201, 100, 100)
    assert h % 2 == 0


def test_huge_images_are_decoded_at_a_capped_working_resolution() -> None:
    h, w = 1500, 2600
    mask = _rect(0, 750, 0, 1300, h, w)
    comp = _comparison([_inst(mask, 0)], [], h=h, w=w)
    assert max(comp.working_size) == WORKING_MAX_SIDE
    ww, wh = comp.working_size
    vis = comp.render(0.5)
    assert vis.size == (ww, wh)
    # The top-left quarter is covered at the working resolution too.
    share = vis.disagreement_pixels / (ww * wh)
    assert share == pytest.approx(0.25, abs=0.01)


def test_from_bgr_swaps_channels() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 200  # blue in BGR
    empty = ImagePrediction("x", 4, 4, [])
    vis = ImageComparison.from_bgr(image, empty, empty, []).render(0.5)
    assert (vis.parent[..., 2] == 200).all() and (vis.parent[..., 0] == 0).all()


def test_step_threshold_stays_on_the_grid_and_in_the_schema_range() -> None:
    assert DEFAULT_THRESHOLD == VISUALIZE.threshold.default == 0.5
    assert step_threshold(0.5, 0.05) == 0.55
    assert step_threshold(0.5, -0.05) == 0.45
    assert step_threshold(0.9, 0.1) == VISUALIZE.threshold.maximum == 0.95
    assert step_threshold(0.1, -0.1) == VISUALIZE.threshold.minimum == 0.05
    value = 0.5
    for _ in range(3):
        value = step_threshold(value, 0.05)
    assert value == 0.65


def test_step_threshold_from_a_report_threshold_off_the_grid() -> None:
    # A report made at 0.12 or 0.02 opens there; a step goes to the grid, never backwards.
    assert (step_threshold(0.12, 0.05), step_threshold(0.12, -0.05)) == (0.15, 0.1)
    assert (step_threshold(0.02, -0.05), step_threshold(0.02, 0.05)) == (0.02, 0.05)
    assert (step_threshold(0.97, 0.05), step_threshold(0.97, -0.05)) == (0.97, 0.95)
    # 0.15 / 0.05 is 2.9999… in floating point: still the grid point 0.15.
    assert (step_threshold(0.15, 0.05), step_threshold(0.15, -0.05)) == (0.2, 0.1)
    assert (score_text(0.1), score_text(0.125), score_text(0.5)) == ("0.10", "0.125", "0.50")
