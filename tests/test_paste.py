"""paste_reference against the Detectron / Accuracy Checker paste, pixel for pixel.

The reference below is written the way OMZ's Accuracy Checker (`segm_postprocess` in its
mask_rcnn adapter) and OpenVINO Model API (`_segm_postprocess`) write it, on numpy arrays
of boxes, independently of segtui's code; the hand-checked cases derive their pixels from
cv2.resize's sampling rule: output pixel i of an n-cell axis resized to m pixels samples
the source at (i + 0.5) * n / m - 0.5, clamped to [0, n - 1].
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from segtui.core.formats.paste import paste_reference


def _expand_boxes(boxes: npt.NDArray[np.float64], scale: float) -> npt.NDArray[np.float64]:
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    w_half *= scale
    h_half *= scale
    boxes_exp = np.zeros(boxes.shape)
    boxes_exp[:, 0] = x_c - w_half
    boxes_exp[:, 2] = x_c + w_half
    boxes_exp[:, 1] = y_c - h_half
    boxes_exp[:, 3] = y_c + h_half
    return boxes_exp


def _segm_postprocess(
    box: npt.NDArray[np.float64],
    raw_cls_mask: npt.NDArray[np.float32],
    im_h: int,
    im_w: int,
    threshold: float,
) -> npt.NDArray[np.uint8]:
    """Accuracy Checker's segm_postprocess (full-image mask), threshold made a parameter."""
    raw_cls_mask = np.pad(raw_cls_mask, ((1, 1), (1, 1)), "constant", constant_values=0)
    scale = raw_cls_mask.shape[0] / (raw_cls_mask.shape[0] - 2.0)
    extended_box = _expand_boxes(box[np.newaxis, :], scale)[0].astype(int)
    w, h = np.maximum(extended_box[2:] - extended_box[:2] + 1, 1)
    x0, y0 = np.clip(extended_box[:2], a_min=0, a_max=[im_w, im_h])
    x1, y1 = np.clip(extended_box[2:] + 1, a_min=0, a_max=[im_w, im_h])
    mask = (cv2.resize(raw_cls_mask, (int(w), int(h))) > threshold).astype(np.uint8)
    im_mask = np.zeros((im_h, im_w), dtype=np.uint8)
    im_mask[y0:y1, x0:x1] = mask[
        (y0 - extended_box[1]) : (y1 - extended_box[1]),
        (x0 - extended_box[0]) : (x1 - extended_box[0]),
    ]
    return im_mask


def _random_box(rng: np.random.Generator, im_h: int, im_w: int) -> npt.NDArray[np.float64]:
    """Fractional boxes of every kind: inside, partly or wholly outside, sub-pixel."""
    kind = rng.integers(0, 4)
    if kind == 0:  # sub-pixel: narrower than one pixel on at least one axis
        size = rng.uniform(0.05, 1.0, 2) * np.array([1.0, rng.uniform(1.0, 30.0)])
        size = rng.permutation(size)
    else:
        size = rng.uniform(1.0, 1.2, 2) * np.array([im_w, im_h]) * rng.uniform(0.05, 1.0, 2)
    # Centres from well left/above the image to well right/below it: negative and
    # out-of-image coordinates on either side.
    centre = rng.uniform(-0.3, 1.3, 2) * np.array([im_w, im_h])
    return np.concatenate([centre - size / 2, centre + size / 2]).astype(np.float64)


@pytest.mark.parametrize("mask_size", [14, 28])
def test_paste_reference_equals_the_accuracy_checker_paste_on_random_maps(mask_size: int) -> None:
    rng = np.random.default_rng(mask_size)
    differing = 0
    pixels_on = 0
    for case in range(400):
        im_h, im_w = (int(v) for v in rng.integers(8, 160, 2))
        box = _random_box(rng, im_h, im_w)
        prob = rng.uniform(0.0, 1.0, (mask_size, mask_size)).astype(np.float32)
        if case % 2:  # smooth maps too, with long runs above and below the threshold
            prob = cv2.GaussianBlur(prob * 2 - 0.5, (5, 5), 0).clip(0, 1).astype(np.float32)
        threshold = (0.5, 0.3, 0.7)[case % 3]
        expected = _segm_postprocess(box, prob, im_h, im_w, threshold).astype(bool)
        got = paste_reference(prob, box, (im_h, im_w), threshold)
        assert got.shape == (im_h, im_w) and got.dtype == np.bool_
        differing += int((got != expected).sum())
        pixels_on += int(expected.sum())
    assert differing == 0
    assert pixels_on > 50_000  # the cases do paste something: the comparison means something


def test_paste_reference_takes_boxes_as_sequences_or_arrays_of_either_float_width() -> None:
    prob = np.random.default_rng(1).uniform(0, 1, (28, 28)).astype(np.float32)
    box = (10.3, 7.9, 40.6, 33.2)
    expected = _segm_postprocess(np.asarray(box), prob, 48, 64, 0.5).astype(bool)
    for given in (box, list(box), np.asarray(box), np.asarray(box, np.float32).astype(np.float64)):
        assert np.array_equal(paste_reference(prob, given, (48, 64)), expected)
    # A float64 map gives what its float32 values give: the reference pastes OpenVINO's f32.
    assert np.array_equal(paste_reference(prob.astype(np.float64), box, (48, 64)), expected)


def _extent(mask: npt.NDArray[Any]) -> tuple[int, int, int, int] | None:
    """(first col, first row, last col + 1, last row + 1) of a mask's pixels, None if empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def test_all_ones_map_fills_the_box_with_both_ends_included() -> None:
    # S=28, box 10..38: expanded by 30/28 about 24 -> 9..39, 31 px from the 30 padded
    # cells. Pixel 0 samples -0.016 -> clamped to the zero border: off; pixel 30 samples
    # 29.016 -> clamped to 29, the zero border: off; pixels 1..29 sample cells 0.95..28.05,
    # all above 0.5. So columns (and rows) 10..38: the Detectron box, x2 included.
    mask = paste_reference(np.ones((28, 28), np.float32), (10, 10, 38, 38), (60, 60))
    expected = np.zeros((60, 60), bool)
    expected[10:39, 10:39] = True
    assert np.array_equal(mask, expected)
    assert mask.flags.f_contiguous  # what COCO RLE encoding consumes without a copy


def test_a_box_partly_outside_keeps_its_geometry_and_is_cut_at_the_image() -> None:
    # S=14, box x -10..30, y -20..20: expanded by 16/14 -> x -12..32 (45 px), y -22..22.
    # Column c is pixel c + 12; pixel 41 (c=29) samples 14.26 -> 0.74: on; pixel 42 (c=30)
    # samples 14.61 -> 0.39: off. Rows alike: row 19 on, row 20 off.
    mask = paste_reference(np.ones((14, 14), np.float32), (-10, -20, 30, 20), (40, 40))
    assert _extent(mask) == (0, 0, 30, 20)
    assert mask[:20, :30].all()
    # The top half of that map lies above the image: nothing of it shows.
    top = np.zeros((14, 14), np.float32)
    top[:7] = 1
    assert not paste_reference(top, (-10, -20, 30, 20), (40, 40)).any()


def test_the_expanded_box_is_truncated_towards_zero_not_floored() -> None:
    # S=14, box x -1.9..-0.1 lies left of the image; expanded: -2.03..0.03, truncated to
    # -2..0 (floor would give -3..0 -> -1: nothing). Column 0 is pixel 2 of 3, sampling
    # 12.83 of the 16 padded cells: inside the ones, so it is on.
    mask = paste_reference(np.ones((14, 14), np.float32), (-1.9, 10, -0.1, 20), (40, 40))
    assert _extent(mask) == (0, 10, 1, 20)


def test_sub_pixel_box_covers_its_integer_box() -> None:
    # S=28, box 5..5.5: expanded 4.98..5.52 -> 4..5, 2 px sampling cells 7 and 22: on.
    mask = paste_reference(np.ones((28, 28), np.float32), (5, 5, 5.5, 5.5), (30, 30))
    assert _extent(mask) == (4, 4, 6, 6)
    assert int(mask.sum()) == 4


def test_threshold_is_strict_and_applies_to_the_resized_map() -> None:
    flat = np.full((28, 28), 0.6, np.float32)
    at_half = paste_reference(flat, (10, 10, 38, 38), (60, 60), 0.5)
    # The outer pixels mix 0.6 with the zero border (0.95 * 0.6 = 0.57 at pixel 1).
    assert _extent(at_half) == (10, 10, 39, 39)
    assert not paste_reference(flat, (10, 10, 38, 38), (60, 60), 0.6).any()
    assert not paste_reference(flat, (10, 10, 38, 38), (60, 60), 0.7).any()


@pytest.mark.parametrize(
    "box",
    [
        (70.0, 10.0, 90.0, 30.0),  # right of the image
        (10.0, -40.0, 30.0, -20.0),  # above it
        (float("nan"), 0.0, 10.0, 10.0),
        (0.0, 0.0, float("inf"), 10.0),
    ],
)
def test_boxes_with_nothing_in_the_image_paste_nothing(box: tuple[float, ...]) -> None:
    mask = paste_reference(np.ones((28, 28), np.float32), box, (60, 60))
    assert mask.shape == (60, 60) and not mask.any()
