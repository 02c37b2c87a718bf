"""ExperimentalDetectronROIFeatureExtractor rewritten as one ROIAlign: same numbers, real CPU runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import openvino as ov
import openvino.opset13 as ops
import pytest
from openvino.utils.node_factory import NodeFactory

from segtui.core.roi_rewrite import EXTRACTOR, extractors, rewrite_roi_extractors, rewrite_text

IMAGE = 512
STRIDES = (4, 8, 16, 32)


def extractor_model(
    rois: int, *, aligned: bool = False, output_size: int = 7, sampling: int = 2
) -> ov.Model:
    """ROIs [N,4] and four pyramid levels of a 512x512 image in; pooled features and ROIs out."""
    roi_param = ops.parameter([rois, 4], np.float32, name="rois")
    levels = [
        ops.parameter([1, 3, IMAGE // s, IMAGE // s], np.float32, name=f"p{i}")
        for i, s in enumerate(STRIDES)
    ]
    node = NodeFactory("opset6").create(
        EXTRACTOR,
        [roi_param.output(0), *[level.output(0) for level in levels]],
        {
            "output_size": output_size,
            "sampling_ratio": sampling,
            "pyramid_scales": list(STRIDES),
            "aligned": aligned,
        },
    )
    feature = ops.relu(node.output(0))  # a consumer, as a head would be
    return ov.Model(
        [ops.result(feature), ops.result(node.output(1))], [roi_param, *levels], "extractor"
    )


def inputs(rois: npt.NDArray[np.float32], seed: int = 0) -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    levels = [rng.normal(size=(1, 3, IMAGE // s, IMAGE // s)).astype(np.float32) for s in STRIDES]
    return [rois, *levels]


def run(model: ov.Model, data: list[npt.NDArray[np.float32]]) -> list[npt.NDArray[Any]]:
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(data)
    return [np.asarray(result[i]) for i in range(len(compiled.outputs))]


def boxes_inside(count: int, seed: int = 1) -> npt.NDArray[np.float32]:
    """ROIs of every size class inside the image, some touching its right and bottom edge."""
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0, IMAGE - 2, count)
    y1 = rng.uniform(0, IMAGE - 2, count)
    side = np.exp(rng.uniform(np.log(2), np.log(IMAGE), count))
    x2 = np.minimum(x1 + side, IMAGE)
    y2 = np.minimum(y1 + side * rng.uniform(0.5, 2, count), IMAGE)
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    boxes[0] = (0, 0, IMAGE, IMAGE)  # the whole image: the coarsest level, both edges
    return boxes


def test_rewrite_pools_what_the_extractor_pools() -> None:
    rois = boxes_inside(96)
    data = inputs(rois)
    reference = run(extractor_model(96), data)
    model = extractor_model(96)
    done = rewrite_roi_extractors(model)
    assert [(r.levels, r.rois, r.output_size, r.skipped) for r in done] == [(4, 96, 7, "")]
    assert extractors(model) == []
    assert "ROIAlign" in {op.get_type_name() for op in model.get_ordered_ops()}
    rewritten = run(model, data)
    assert rewritten[0].shape == reference[0].shape == (96, 3, 7, 7)
    np.testing.assert_allclose(rewritten[0], reference[0], atol=2e-5)
    np.testing.assert_array_equal(rewritten[1], rois)  # the second output: the ROIs, copied
    # Every level was used (the extractor's rule), and ROIs on the coarse levels touch the
    # image's right or bottom edge, where a padded level must read its own edge.
    sizes = np.sqrt((rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1]))
    levels = np.clip(np.floor(2 + np.log2(sizes / 224 + 1e-6)), 0, 3)
    assert set(levels.tolist()) == {0.0, 1.0, 2.0, 3.0}
    on_edge = (rois[:, 2] == IMAGE) | (rois[:, 3] == IMAGE)
    assert (on_edge & (levels >= 2)).any()


def test_rois_of_no_area_pool_zeros_as_the_extractor_does() -> None:
    rois = boxes_inside(8)
    rois[3] = (100, 100, 100, 300)  # no width
    rois[5] = (0, 0, 0, 0)  # a padding row
    data = inputs(rois, seed=3)
    reference = run(extractor_model(8, output_size=14, sampling=1), data)
    model = extractor_model(8, output_size=14, sampling=1)
    rewrite_roi_extractors(model)
    rewritten = run(model, data)
    assert not reference[0][3].any() and not reference[0][5].any()
    np.testing.assert_allclose(rewritten[0], reference[0], atol=2e-5)


@pytest.mark.parametrize("aligned", [True])
def test_half_pixel_extractors_are_left_with_the_reason(aligned: bool) -> None:
    model = extractor_model(4, aligned=aligned)
    done = rewrite_roi_extractors(model)
    assert len(done) == 1 and "aligned" in done[0].skipped
    assert len(extractors(model)) == 1
    # The record says it was kept, and why.
    stored = done[0].to_json()
    assert stored["skipped"] == done[0].skipped
    text = rewrite_text([stored])
    assert text.startswith("1 kept as they are (") and "aligned=true" in text
    assert "pooled" not in text


def test_a_model_without_extractors_is_untouched() -> None:
    param = ops.parameter([1, 3, 8, 8], np.float32, name="x")
    model = ov.Model([ops.result(ops.relu(param))], [param], "plain")
    before = [op.get_type_name() for op in model.get_ordered_ops()]
    assert rewrite_roi_extractors(model) == []
    assert [op.get_type_name() for op in model.get_ordered_ops()] == before
