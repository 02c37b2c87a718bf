"""Read a torchvision-structured sample IR's weights back into the torchvision model.

The shipped sample IR (sample_projects/shapes/model/shapes_maskrcnn.xml) is
all that is kept of the trained network: training checkpoints are not in
git. Its convolutions and linear layers hold the trained weights (FP16); the
ResNet body's BatchNorms were folded into their convolutions at export
(weight x gamma/sigma, and an Add of the folded bias). This loads them into
``train_sample_model.build_model()``: folded weights into the convolutions,
and BatchNorms that compute ``x + bias`` (weight 1, mean 0, variance 1 - eps),
so the module computes what the IR computes.

    python tools/train_sample_model.py recover --out /tmp/recovered.pt
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN

COMPUTE = ("Convolution", "MatMul", "ConvolutionBackpropData")


def _constant(output: ov.Output) -> tuple[str, np.ndarray]:
    node = output.get_node()
    while node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant":
        raise ValueError(f"{node.get_friendly_name()} is not a constant")
    return node.get_friendly_name(), node.get_data().astype(np.float32)


def _bias(node: Any) -> np.ndarray | None:
    for target in node.output(0).get_target_inputs():
        consumer = target.get_node()
        if consumer.get_type_name() == "Add":
            return _constant(consumer.input_value(1))[1].reshape(-1)
    return None


def ir_layers(xml: Path) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(weight constant name, weight, bias) of each distinct compute layer, in graph order."""
    model = ov.Core().read_model(str(xml))
    seen: set[str] = set()
    layers = []
    for node in model.get_ordered_ops():
        if node.get_type_name() not in COMPUTE:
            continue
        name, weight = _constant(node.input_value(1))
        if name in seen:  # the RPN head runs once per level with shared weights
            continue
        seen.add(name)
        layers.append((name, weight, _bias(node)))
    return layers


def _state_key(name: str) -> str | None:
    """'self.model.roi_heads.box_head.fc6.weight_compressed' -> 'roi_heads.box_head.fc6.weight'."""
    if not name.startswith("self.model."):
        return None
    return name.removeprefix("self.model.").removesuffix("_compressed")


def load_ir_weights(model: MaskRCNN, xml: Path) -> MaskRCNN:
    """Fill `model` (the sample's architecture) with the IR's weights; raise on any mismatch."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    body_convs = [
        (name, module)
        for name, module in model.backbone.body.named_modules()
        if isinstance(module, nn.Conv2d)
    ]
    body_norms = {
        name: module
        for name, module in model.backbone.body.named_modules()
        if isinstance(module, nn.BatchNorm2d)
    }
    folded = []
    for name, weight, bias in ir_layers(xml):
        key = _state_key(name)
        if key is None:
            folded.append((weight, bias))
            continue
        _put(state, key, weight)
        if bias is not None:
            _put(state, key.removesuffix("weight") + "bias", bias)
    if len(folded) != len(body_convs):
        raise ValueError(f"{len(folded)} folded convolutions, the body has {len(body_convs)}")
    for (conv_name, _conv), (weight, bias) in zip(body_convs, folded, strict=True):
        _put(state, f"backbone.body.{conv_name}.weight", weight)
        norm_name = _norm_of(conv_name)
        norm = body_norms[norm_name]
        prefix = f"backbone.body.{norm_name}"
        if bias is None:
            raise ValueError(f"no folded bias after {conv_name}")
        _put(state, f"{prefix}.bias", bias)
        state[f"{prefix}.weight"] = torch.ones_like(state[f"{prefix}.weight"])
        state[f"{prefix}.running_mean"] = torch.zeros_like(state[f"{prefix}.running_mean"])
        state[f"{prefix}.running_var"] = torch.full_like(
            state[f"{prefix}.running_var"], 1.0 - norm.eps
        )
    model.load_state_dict(state)
    return model.eval()


def _norm_of(conv_name: str) -> str:
    """The BatchNorm that follows a ResNet convolution: conv1 -> bn1, downsample.0 -> .1."""
    if conv_name.endswith("downsample.0"):
        return conv_name.removesuffix("0") + "1"
    head, _, tail = conv_name.rpartition("conv")
    return f"{head}bn{tail}"


def _put(state: dict[str, torch.Tensor], key: str, value: np.ndarray) -> None:
    if key not in state:
        raise ValueError(f"the IR has {key}, the model has no such weight")
    target = state[key]
    if target.numel() != value.size:
        raise ValueError(f"{key}: IR {value.shape}, model {tuple(target.shape)}")
    state[key] = torch.from_numpy(value.reshape(target.shape).copy())
