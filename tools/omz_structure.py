"""Lay a torchvision Mask R-CNN out as OMZ's instance-segmentation-security models are laid out.

OMZ's instance-segmentation-security-0002 (and -0091, -0228, -1039, -1040) run their
detection tail with OpenVINO's fused ExperimentalDetectron operations, and take the
image as it is (no resize in the graph):

    image [1,3,H,W] BGR 0..255 -> backbone + FPN (P2..P6) -> RPN head per level
    PriorGridGenerator per level (anchors)            -> GenerateProposalsSingleImage per level
    Concat -> TopKROIs -> ROIFeatureExtractor (7x7, P2..P5) -> box head -> Softmax
    DetectionOutput (deltas weights 10,10,5,5; 100 detections)
    ROIFeatureExtractor (14x14) on the detections -> mask head -> the class's channel, Sigmoid
    outputs: labels [100], boxes [100,5] (x1,y1,x2,y2,score), masks [100,28,28]

The learned parts (backbone, FPN, RPN head, box head, mask head) are converted
from the torchvision modules; only the non-learned tail is new. Where the
ExperimentalDetectron semantics differ from torchvision's, the difference is
absorbed in constants, so that the same trained network computes the same thing:

* PriorGridGenerator centres anchors at (x + 0.5) * stride, torchvision at
  x * stride: the priors are shifted by -stride/2.
* GenerateProposalsSingleImage and DetectionOutput use Detectron's legacy
  "+1" box convention (width = x2 - x1 + 1, x2 = centre + w/2 - 1, NMS areas
  with +1); torchvision uses width = x2 - x1. The priors carry x2 - 1, so the
  proposals and detections come out as (x1, y1, x2 - 1, y2 - 1) of
  torchvision's boxes and their widths, centres and IoUs are torchvision's;
  one Add of (0, 0, 1, 1) restores x2 and y2 where boxes leave the tail.
* ROIFeatureExtractor assigns levels as torchvision's LevelMapper with
  canonical scale 224; a head trained with another canonical scale (the
  sample's mask head: 112) gets its ROIs and pyramid scales multiplied by
  224 / scale, which moves the level boundary and leaves the sampling alone.
* DetectionOutput clips boxes at 0 only, torchvision at the image border too:
  the detections are clipped after it (NMS saw the unclipped boxes).

Used by tools/train_sample_model.py (``export --structure omz``) and
tools/make_scale_model.py; needs torch, torchvision and openvino.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import torch
from openvino.utils.node_factory import NodeFactory
from torch import nn
from torchvision.models.detection import MaskRCNN

#: torchvision's GeneralizedRCNNTransform normalisation (RGB, 0..1).
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TailCounts:
    """How many boxes each stage of the tail keeps."""

    pre_nms: int
    post_nms: int
    max_rois: int
    per_class: int
    detections: int = 100


#: The counts of OMZ's instance-segmentation-security models.
OMZ_COUNTS = TailCounts(pre_nms=1000, post_nms=1000, max_rois=1000, per_class=2000)


def trained_counts(model: MaskRCNN) -> TailCounts:
    """The counts the torchvision model runs its own test-time tail with."""
    rpn = model.rpn
    post = int(rpn._post_nms_top_n["testing"])
    return TailCounts(
        pre_nms=int(rpn._pre_nms_top_n["testing"]),
        post_nms=post,
        max_rois=post,
        per_class=post,
        detections=int(model.roi_heads.detections_per_img),
    )


class BackboneRpn(nn.Module):
    """Normalisation, backbone + FPN and the RPN head: 5 features, 5 objectness, 5 deltas."""

    def __init__(self, model: MaskRCNN) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.head = model.rpn.head
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rgb = image[:, [2, 1, 0], :, :] / 255.0
        features = list(self.backbone((rgb - self.mean) / self.std).values())
        objectness, deltas = self.head(features)
        return (*features, *[torch.sigmoid(o) for o in objectness], *deltas)


class BoxHead(nn.Module):
    """Pooled 7x7 features -> class probabilities, per-class box deltas."""

    def __init__(self, model: MaskRCNN) -> None:
        super().__init__()
        self.head = model.roi_heads.box_head
        self.predictor = model.roi_heads.box_predictor

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores, deltas = self.predictor(self.head(pooled))
        return torch.softmax(scores, dim=-1), deltas


class MaskHead(nn.Module):
    """Pooled 14x14 features -> per-class mask logits [N, classes, 28, 28]."""

    def __init__(self, model: MaskRCNN) -> None:
        super().__init__()
        self.head = model.roi_heads.mask_head
        self.predictor = model.roi_heads.mask_predictor

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.head(pooled))


def _convert(module: nn.Module, shape: list[int]) -> ov.Model:
    with torch.no_grad():
        return ov.convert_model(module.eval(), example_input=torch.zeros(shape), input=shape)


def _attach(sub: ov.Model, sources: list[ov.Output]) -> list[ov.Output]:
    """Feed `sub`'s parameters from `sources`; return its outputs as nodes of the new graph."""
    for param, source in zip(sub.get_parameters(), sources, strict=True):
        for target in list(param.output(0).get_target_inputs()):
            target.replace_source_output(source)
    return [result.input_value(0) for result in sub.get_results()]


def _priors(model: MaskRCNN, strides: list[int]) -> list[np.ndarray]:
    """torchvision's base anchors per level, shifted into PriorGridGenerator's convention."""
    generator = model.rpn.anchor_generator
    cells = generator.cell_anchors or generator.generate_anchors(
        generator.sizes, generator.aspect_ratios
    )
    priors = []
    for base, stride in zip(cells, strides, strict=True):
        shifted = base.detach().float().numpy() - stride / 2.0
        shifted[:, 2:] -= 1.0  # Detectron's x2 = x1 + w - 1
        priors.append(shifted.astype(np.float32))
    return priors


def _canonical_scale(pool: Any) -> float:
    mapper = getattr(pool, "map_levels", None)
    if mapper is not None and hasattr(mapper, "s0"):
        return float(mapper.s0)
    return float(getattr(pool, "canonical_scale", 224))


def build_omz_model(
    model: MaskRCNN, height: int, width: int, counts: TailCounts | None = None
) -> ov.Model:
    """The OMZ-structured OpenVINO model of `model` for [1,3,height,width] BGR input."""
    model = model.eval()
    counts = counts or OMZ_COUNTS
    factory = NodeFactory("opset6")
    classes = int(model.roi_heads.box_predictor.cls_score.out_features)
    image = ops.parameter([1, 3, height, width], np.float32, name="image")
    image.output(0).get_tensor().set_names({"image"})

    trunk = _convert(BackboneRpn(model), [1, 3, height, width])
    outs = _attach(trunk, [image.output(0)])
    levels = len(outs) // 3
    features, objectness, deltas = outs[:levels], outs[levels : 2 * levels], outs[2 * levels :]
    strides = [height // int(f.get_partial_shape()[2].get_length()) for f in features]
    im_info = ops.constant(np.array([height, width, 1.0], np.float32))
    rpn = model.rpn
    rois, scores = [], []
    for level, prior in enumerate(_priors(model, strides)):
        grid = factory.create(
            "ExperimentalDetectronPriorGridGenerator",
            [ops.constant(prior).output(0), features[level], image.output(0)],
            {
                "flatten": True,
                "h": 0,
                "w": 0,
                "stride_x": float(strides[level]),
                "stride_y": float(strides[level]),
            },
        )
        proposals = factory.create(
            "ExperimentalDetectronGenerateProposalsSingleImage",
            [
                im_info.output(0),
                grid.output(0),
                ops.squeeze(deltas[level], [0]).output(0),
                ops.squeeze(objectness[level], [0]).output(0),
            ],
            {
                "min_size": 0.0,
                "nms_threshold": float(rpn.nms_thresh),
                "post_nms_count": counts.post_nms,
                "pre_nms_count": counts.pre_nms,
            },
        )
        rois.append(proposals.output(0))
        scores.append(proposals.output(1))
    top = factory.create(
        "ExperimentalDetectronTopKROIs",
        [ops.concat(rois, 0).output(0), ops.concat(scores, 0).output(0)],
        {"max_rois": counts.max_rois},
    )
    # Proposals carry x2 - 1 (Detectron's convention); pooling reads torchvision's boxes.
    plus_one = ops.constant(np.array([[0, 0, 1, 1]], np.float32))
    box_rois = ops.add(top.output(0), plus_one)
    heads = model.roi_heads
    box_pool = factory.create(
        "ExperimentalDetectronROIFeatureExtractor",
        [box_rois.output(0), *features[:4]],
        {
            "output_size": int(heads.box_roi_pool.output_size[0]),
            "sampling_ratio": int(heads.box_roi_pool.sampling_ratio),
            "pyramid_scales": strides[:4],
            "aligned": False,
        },
    )
    channels = int(features[0].get_partial_shape()[1].get_length())
    pooled = int(heads.box_roi_pool.output_size[0])
    box_head = _convert(BoxHead(model), [counts.max_rois, channels, pooled, pooled])
    class_probs, box_deltas = _attach(box_head, [box_pool.output(0)])
    weights = [float(w) for w in heads.box_coder.weights]
    detection = factory.create(
        "ExperimentalDetectronDetectionOutput",
        [top.output(0), box_deltas, class_probs, ops.unsqueeze(im_info, [0]).output(0)],
        {
            "class_agnostic_box_regression": False,
            "deltas_weights": weights,
            "max_delta_log_wh": float(math.log(1000.0 / 16)),
            "max_detections_per_image": counts.detections,
            "nms_threshold": float(heads.nms_thresh),
            "num_classes": classes,
            "post_nms_count": counts.per_class,
            "score_threshold": float(heads.score_thresh),
        },
    )
    limit = ops.constant(np.array([[width, height, width, height]], np.float32))
    boxes = ops.minimum(ops.add(detection.output(0), plus_one), limit)
    mask_pool_scale = 224.0 / _canonical_scale(heads.mask_roi_pool)
    mask_rois = (
        boxes if mask_pool_scale == 1.0 else ops.multiply(boxes, np.float32(mask_pool_scale))
    )
    mask_pool = factory.create(
        "ExperimentalDetectronROIFeatureExtractor",
        [mask_rois.output(0), *features[:4]],
        {
            "output_size": int(heads.mask_roi_pool.output_size[0]),
            "sampling_ratio": int(heads.mask_roi_pool.sampling_ratio),
            "pyramid_scales": [round(s * mask_pool_scale) for s in strides[:4]],
            "aligned": False,
        },
    )
    mask_size = int(heads.mask_roi_pool.output_size[0])
    mask_head = _convert(MaskHead(model), [counts.detections, channels, mask_size, mask_size])
    (mask_logits,) = _attach(mask_head, [mask_pool.output(0)])
    class_ids = detection.output(1)
    masks = ops.sigmoid(ops.gather(mask_logits, class_ids, 1, 1))
    labels = ops.subtract(class_ids, ops.constant(np.array(1, np.int32)))
    box_scores = ops.concat([boxes, ops.unsqueeze(detection.output(2), [1])], 1)
    results = []
    for name, output in (("labels", labels), ("boxes", box_scores), ("masks", masks)):
        result = ops.result(output)
        result.output(0).get_tensor().set_names({name})
        result.set_friendly_name(name)
        results.append(result)
    return ov.Model(results, [image], "mask_rcnn_omz")


def save_omz_model(ov_model: ov.Model, xml: Path, labels: list[str] | None = None) -> None:
    """Write the IR (FP16-compressed weights) with Model API style labels in rt_info."""
    ov_model.set_rt_info("MaskRCNN", ["model_info", "model_type"])
    if labels:
        ov_model.set_rt_info(" ".join(labels), ["model_info", "labels"])
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(xml), compress_to_fp16=True)
