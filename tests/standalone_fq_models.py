"""Tiny float models whose NNCF-quantized versions hold a standalone quantizer, and their INT8.

In both, a softmax (which the CPU plugin fuses no FakeQuantize into) feeds an operation
NNCF quantizes, so the quantizer on the softmax's output runs as a layer of its own:

- `build_idle_quantizer`: the softmax feeds an AvgPool whose output is a model output:
  the quantizer feeds no compute layer's INT8 input;
- `build_fed_quantizer`: the softmax feeds a MatMul through a Reshape: the quantizer feeds
  the MatMul's INT8 input.

Both also run two Convolutions quantized as NNCF does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import openvino as ov
import openvino.opset13 as ops

#: The quantizer NNCF puts on the softmax's output (it names it after its producer).
SOFTMAX_QUANTIZER = "softmax/fq_output_0"
#: The second convolution, and the quantizer on its input (it reads the first one's output).
CONV2 = "conv2"
CONV2_QUANTIZER = "conv2/fq_input_0"
FC = "fc"
INPUT_SHAPE = (1, 3, 16, 16)


def _conv(x: ov.Node, out_ch: int, in_ch: int, name: str, rng: np.random.Generator) -> ov.Node:
    weights = ops.constant(rng.normal(0, 0.3, (out_ch, in_ch, 3, 3)).astype(np.float32))
    conv = ops.convolution(x, weights, [1, 1], [1, 1], [1, 1], [1, 1])
    conv.set_friendly_name(name)
    return ops.relu(conv)


def build_idle_quantizer(seed: int = 0) -> ov.Model:
    """image -> conv1 -> [conv2 -> out], [softmax -> AvgPool -> pooled]."""
    rng = np.random.default_rng(seed)
    image = ops.parameter(list(INPUT_SHAPE), np.float32, name="image")
    features = _conv(image, 8, 3, "conv1", rng)
    out = _conv(features, 8, 8, CONV2, rng)
    softmax = ops.softmax(features, 1)
    softmax.set_friendly_name("softmax")
    pooled = ops.avg_pool(softmax, [2, 2], [0, 0], [0, 0], [2, 2], True)
    pooled.set_friendly_name("avgpool")
    return ov.Model([ops.result(out), ops.result(pooled)], [image], "idle_quantizer")


def build_fed_quantizer(seed: int = 0) -> ov.Model:
    """image -> conv1 -> softmax -> Reshape -> MatMul (fc) -> out."""
    rng = np.random.default_rng(seed)
    image = ops.parameter(list(INPUT_SHAPE), np.float32, name="image")
    features = _conv(image, 8, 3, "conv1", rng)
    softmax = ops.softmax(features, 1)
    softmax.set_friendly_name("softmax")
    flat = ops.reshape(softmax, ops.constant(np.array([1, 8 * 16 * 16], np.int64)), False)
    weights = ops.constant(rng.normal(0, 0.1, (8 * 16 * 16, 10)).astype(np.float32))
    fc = ops.matmul(flat, weights, False, False)
    fc.set_friendly_name(FC)
    return ov.Model([ops.result(fc)], [image], "fed_quantizer")


def calibration_inputs(count: int = 4, seed: int = 1) -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1, INPUT_SHAPE).astype(np.float32) for _ in range(count)]


def quantized(model: ov.Model) -> ov.Model:
    """`model` quantized by NNCF's default method on a few random inputs."""
    import nncf

    data = calibration_inputs()
    return nncf.quantize(model, nncf.Dataset(data), subset_size=len(data))
