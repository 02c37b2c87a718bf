"""The instance-segmentation-aware ignored scope is found from the graph's structure."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from segtui.core.quantize import COMPUTE_TYPES, propose_ignored_scope


def _named(node, name: str):  # type: ignore[no-untyped-def]
    node.set_friendly_name(name)
    return node


def build_two_stage_detector() -> ov.Model:
    """image → preprocessing → conv backbone → (proposals: TopK + box decode) → ROIAlign → merge → MatMul head."""
    rng = np.random.default_rng(0)
    image = ops.parameter([1, 3, 32, 32], np.float32, name="image")
    scaled = _named(ops.multiply(image, ops.constant(np.float32(1 / 255))), "pre_scale")
    feat = _named(
        ops.convolution(
            scaled,
            ops.constant(rng.random((8, 3, 3, 3), np.float32)),
            [1, 1],
            [1, 1],
            [1, 1],
            [1, 1],
        ),
        "backbone_conv",
    )
    relu = _named(ops.relu(feat), "backbone_relu")
    scores = _named(
        ops.convolution(
            relu, ops.constant(rng.random((1, 8, 1, 1), np.float32)), [1, 1], [0, 0], [0, 0], [1, 1]
        ),
        "objectness_conv",
    )
    flat = _named(
        ops.reshape(scores, ops.constant(np.array([-1], np.int64)), False), "objectness_flat"
    )
    topk = _named(ops.topk(flat, ops.constant(np.int64(4)), 0, "max", "value"), "proposal_topk")
    idx = _named(ops.convert(topk.output(1), np.float32), "idx_f")
    x1 = _named(ops.floor(ops.divide(idx, ops.constant(np.float32(32)))), "decode_x1")
    stacked = _named(
        ops.concat(
            [
                ops.unsqueeze(v, ops.constant(np.int64(1)))
                for v in (
                    x1,
                    x1,
                    ops.add(x1, ops.constant(np.float32(8))),
                    ops.add(x1, ops.constant(np.float32(8))),
                )
            ],
            1,
        ),
        "decode_boxes",
    )
    roi = _named(
        ops.roi_align(
            relu, stacked, ops.constant(np.zeros(4, np.int32)), 2, 2, 1, 1.0, "avg", "asymmetric"
        ),
        "roi_align",
    )
    merged = _named(
        ops.reshape(roi, ops.constant(np.array([4, 32], np.int64)), False), "merge_reshape"
    )
    head = _named(
        ops.matmul(merged, ops.constant(rng.random((32, 5), np.float32)), False, False),
        "box_head_fc",
    )
    out = _named(ops.sigmoid(head), "out_sigmoid")
    return ov.Model([ops.result(out)], [image], "two_stage")


def test_geometry_is_ignored_and_every_compute_layer_stays_quantized() -> None:
    model = build_two_stage_detector()
    proposal = propose_ignored_scope(model)
    names = set(proposal.names)
    assert {
        "pre_scale",
        "proposal_topk",
        "idx_f",
        "decode_x1",
        "decode_boxes",
        "roi_align",
        "merge_reshape",
        "out_sigmoid",
    } <= names
    # The data path between compute layers is not geometry, and compute is never ignored.
    assert "backbone_relu" not in names
    compute = {
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() in COMPUTE_TYPES
    }
    assert compute == {"backbone_conv", "objectness_conv", "box_head_fc"}
    assert not names & compute
    rules = proposal.to_json()["by_rule"]
    assert rules["RoI feature merging"] >= 1 and rules["proposals and box decoding"] >= 4
    assert proposal.to_json()["count"] == len(names)


def test_a_plain_classifier_gets_only_pre_and_post_processing() -> None:
    image = ops.parameter([1, 3, 8, 8], np.float32, name="image")
    conv = ops.convolution(
        image, ops.constant(np.ones((4, 3, 3, 3), np.float32)), [1, 1], [0, 0], [0, 0], [1, 1]
    )
    pooled = ops.reduce_mean(conv, ops.constant(np.array([2, 3], np.int64)), False)
    fc = ops.matmul(pooled, ops.constant(np.ones((4, 2), np.float32)), False, False)
    soft = _named(ops.softmax(fc, 1), "softmax")
    proposal = propose_ignored_scope(ov.Model([ops.result(soft)], [image]))
    assert proposal.names == ["softmax"]
