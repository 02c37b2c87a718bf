"""Masks in original-image pixels: maps in network-input space (input-size masks, YOLO's
prototypes) resampled back through the preprocessing, bilinear like OpenCV and torch, and
thresholded. Per-box maps are pasted by `paste.paste_reference`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from segtui.core.formats.preprocessing import FloatArray, PreprocessMeta

MASK_THRESHOLD = 0.5


def _linear_taps(
    positions: npt.NDArray[np.int64], out_size: int, in_size: int
) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    """The two source cells and weights of output pixels `positions` of an axis resized
    from `in_size` to `out_size` bilinearly: half-pixel centres, clamped edges, exactly
    as cv2.resize(INTER_LINEAR) and torch's interpolate(align_corners=False) do it."""
    src = (positions.astype(np.float64) + 0.5) * (in_size / out_size) - 0.5
    src = np.clip(src, 0.0, in_size - 1.0)
    first = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    second = np.minimum(first + 1, in_size - 1)
    weight = (src - first).astype(np.float32)
    return [(first, 1.0 - weight), (second, weight)]


@dataclass(frozen=True)
class MapGeometry:
    """Where the image lies in a map resampled to `network` (h, w) cells: its content,
    (h, w) cells at `pad` (top, left); the rest is padding."""

    network: tuple[int, int]
    content: tuple[int, int]
    pad: tuple[int, int]


def input_geometry(meta: PreprocessMeta) -> MapGeometry:
    """The network input's geometry: maps go up to the input size, the content is the
    resized image inside it (Model API's and OMZ's input-size masks)."""
    return MapGeometry(meta.input_size, meta.content_size, (round(meta.pad_y), round(meta.pad_x)))


def _original_axis_taps(
    lo: int, hi: int, original: int, content: int, pad: int, network: int, map_size: int
) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    """Taps from original pixels lo..hi-1 of one axis into a map of `map_size` cells.

    Composes the two resizes Ultralytics and Model API do: the map up to `network` cells
    (skipped when it is already that size), then the content part of it, without the
    padding, to the original image.
    """
    taps = [
        (index + pad, weight)
        for index, weight in _linear_taps(np.arange(lo, hi), original, content)
    ]
    if map_size == network:
        return taps
    return [
        (inner, outer_weight * inner_weight)
        for outer, outer_weight in taps
        for inner, inner_weight in _linear_taps(outer, network, map_size)
    ]


def map_to_original(
    prob_map: npt.NDArray[Any],
    meta: PreprocessMeta,
    region: tuple[int, int, int, int] | None = None,
    threshold: float = MASK_THRESHOLD,
    geometry: MapGeometry | None = None,
) -> npt.NDArray[np.bool_]:
    """A map in network-input space (input size, or smaller like YOLO's prototypes at
    H/4 x W/4) as a binary mask of the original image.

    Upsamples to `geometry.network` (default: the input size), cuts the padding and
    resizes to the original size, all bilinear, then keeps values above `threshold`.
    Only the pixels in `region` (x1, y1, x2, y2; original px, end exclusive) are
    computed, the rest stay off, so decoding a cropped mask costs the box's area, not
    the image's.
    """
    h, w = meta.original_size
    where = geometry if geometry is not None else input_geometry(meta)
    x_lo, y_lo, x_hi, y_hi = region if region is not None else (0, 0, w, h)
    x_lo, y_lo, x_hi, y_hi = max(0, x_lo), max(0, y_lo), min(w, x_hi), min(h, y_hi)
    # Fortran order: what COCO RLE encoding consumes, so encode_mask need not copy it.
    out = np.zeros((h, w), np.bool_, order="F")
    if x_hi <= x_lo or y_hi <= y_lo:
        return out
    prob = np.asarray(prob_map, np.float32)
    row_taps = _original_axis_taps(
        y_lo, y_hi, h, where.content[0], where.pad[0], where.network[0], prob.shape[0]
    )
    col_taps = _original_axis_taps(
        x_lo, x_hi, w, where.content[1], where.pad[1], where.network[1], prob.shape[1]
    )
    # The whole chain is separable: rows first, then columns, by gathers.
    by_rows = np.zeros((y_hi - y_lo, prob.shape[1]), np.float32)
    for index, weight in row_taps:
        by_rows += prob[index] * weight[:, None]
    sampled = np.zeros((y_hi - y_lo, x_hi - x_lo), np.float32)
    for index, weight in col_taps:
        sampled += by_rows[:, index] * weight
    out[y_lo:y_hi, x_lo:x_hi] = sampled > threshold
    return out
