"""What a compiled model really runs: layer types and precisions from the runtime graph."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

import numpy.typing as npt
import openvino as ov

from segtui.core.ignored_scope import subgraph_bodies
from segtui.core.types import Hint, Precision

#: Runtime layer types that hold the compute INT8 is meant to speed up.
COMPUTE_LAYER_TYPES = frozenset(
    {"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul", "Gemm"}
)
INT8_PRECISIONS = frozenset({"I8", "U8"})
#: Float types the CPU plugin reports for a layer whose weights are stored in them, even when
#: it computes at f32 (measured: FP16-compressed weights at f32 report F16 and give outputs
#: bit-identical to the same weights stored as FP32). The value names the weights' type.
_STORAGE_FLOATS = {"F16": "FP16", "FP16": "FP16", "BF16": "BF16"}


def computed_precision(reported: str, inference: str | None) -> str:
    """What a layer computed in: its reported runtime precision, but F32 for a narrower float
    reported at f32 inference (only its weights are stored narrower)."""
    reported = reported.upper()
    if (inference or "").upper() in ("F32", "FP32") and reported in _STORAGE_FLOATS:
        return "F32"
    return reported


def precision_label(reported: str, inference: str | None) -> str:
    """'F32 (FP16 weights)' where a layer computed wider than it reports, else what it reports."""
    computed = computed_precision(reported, inference)
    if computed != reported.upper():
        return f"{computed} ({_STORAGE_FLOATS[reported.upper()]} weights)"
    return reported.upper() or "?"


def by_label(values: Mapping[str, float], inference: str | None) -> dict[str, float]:
    """Counts or times keyed by reported precision, re-keyed by `precision_label` (summed)."""
    labelled: dict[str, float] = {}
    for reported, value in values.items():
        label = precision_label(reported, inference)
        labelled[label] = labelled.get(label, 0) + value
    return labelled


class SlowLayer(TypedDict):
    """One of the slowest runtime layers of a per-layer profile."""

    name: str
    type: str
    precision: str
    ms: float
    share: float
    #: The first few layers of the original model it was fused from.
    original: list[str]
    #: What it computed in, e.g. "F32 (FP16 weights)" (see `precision_label`).
    precision_label: NotRequired[str]


class TimeCategory(StrEnum):
    """What a runtime layer's time is spent on, as far as INT8 is concerned."""

    QUANTIZED_COMPUTE = "quantized compute"
    FLOAT_COMPUTE = "float compute"
    GEOMETRY = "geometry"
    STANDALONE_QUANTIZERS = "standalone quantizers"
    LAYOUT = "layout conversions"
    OTHER = "other"


class StandaloneQuantizerJson(TypedDict):
    """A quantizer that ran as a runtime layer of its own (see core.time_split), with its cost."""

    name: str
    #: The FakeQuantize operations of the model it executes.
    original: list[str]
    ms: float
    share: float
    output_precision: str
    #: Whether its output reaches an I8/U8 input of a compute layer running in INT8.
    feeds_int8: bool
    #: Those compute layers (runtime names).
    feeds: list[str]


class RuntimeProfile(TypedDict, total=False):
    """A benchmark's `runtime`: layer counts always; the times only after a per-layer profile.

    Profiles stored before the time split existed lack `time_split_ms`, `time_split_share`
    and `standalone_quantizers`: readers use `.get`.
    """

    layers: int
    #: Layer counts by the runtime precision OpenVINO reports for each layer.
    by_precision: dict[str, int]
    #: The inference precision the model was compiled at ("f32", "bf16").
    inference_precision: str
    #: Layer counts by what was computed: "F32 (FP16 weights)" for a layer reported F16 at f32.
    by_computed_precision: dict[str, int]
    compute_layers: int
    compute_int8: int
    compute_int8_share: float
    #: Original names of the compute layers that run in floating point.
    compute_float: list[str]
    total_ms: float
    time_by_type_ms: dict[str, float]
    time_by_precision_ms: dict[str, float]
    compute_share: float
    non_compute_share: float
    slowest: list[SlowLayer]
    #: Time per inference by core.time_split.TimeCategory ("quantized compute", "geometry"...).
    time_split_ms: dict[str, float]
    #: The same as shares of `total_ms`.
    time_split_share: dict[str, float]
    standalone_quantizers: list[StandaloneQuantizerJson]


@dataclass(frozen=True)
class RuntimeEdge:
    """An input of a runtime layer that reads another layer's output."""

    layer: str
    port: int
    #: The element type of the data on the edge ("u8", "f32"...).
    element_type: str


@dataclass(frozen=True)
class RuntimeLayer:
    name: str
    layer_type: str
    precision: str
    original_names: tuple[str, ...]
    exec_us: float | None = None
    #: Types of the original operations it executes (an If's or Loop's also name the types
    #: inside its bodies); empty when read without the model.
    original_types: tuple[str, ...] = ()
    output_precision: str = ""
    #: The inputs of other layers its outputs go to.
    consumers: tuple[RuntimeEdge, ...] = ()


@dataclass(frozen=True)
class RuntimeSummary:
    """Counts of runtime layers by type and precision, and the compute layers' INT8 share."""

    layers: tuple[RuntimeLayer, ...] = ()
    #: The inference precision it was compiled at ("f32", "bf16"; "" when unknown).
    inference_precision: str = ""

    @property
    def compute_layers(self) -> list[RuntimeLayer]:
        return [layer for layer in self.layers if layer.layer_type in COMPUTE_LAYER_TYPES]

    @property
    def compute_int8_share(self) -> float:
        """Fraction of Convolution/MatMul-like layers running in I8/U8 (0 when there are none)."""
        compute = self.compute_layers
        if not compute:
            return 0.0
        return sum(layer.precision in INT8_PRECISIONS for layer in compute) / len(compute)

    def by_precision(self) -> dict[str, int]:
        return dict(Counter(layer.precision for layer in self.layers).most_common())

    def to_json(self) -> RuntimeProfile:
        compute = self.compute_layers
        by_precision = self.by_precision()
        computed = by_label(by_precision, self.inference_precision)
        return {
            "layers": len(self.layers),
            "by_precision": by_precision,
            "inference_precision": self.inference_precision,
            "by_computed_precision": {k: int(v) for k, v in computed.items()},
            "compute_layers": len(compute),
            "compute_int8": sum(layer.precision in INT8_PRECISIONS for layer in compute),
            "compute_int8_share": round(self.compute_int8_share, 4),
            "compute_float": sorted(
                {
                    n
                    for layer in compute
                    if layer.precision not in INT8_PRECISIONS
                    for n in layer.original_names
                }
            ),
        }


def _rt(node: Any, key: str) -> str:
    info = node.get_rt_info()
    if key not in info:
        return ""
    value = info[key]
    return str(value.astype(str) if hasattr(value, "astype") else value)


def _types_within(op: Any) -> list[str]:
    """The op's type, and for an If, Loop or TensorIterator the types of its bodies' ops."""
    inner = [
        kind
        for body in subgraph_bodies(op)
        for node in body.get_ops()
        for kind in _types_within(node)
    ]
    return [op.get_type_name(), *inner]


def original_types(model: ov.Model) -> dict[str, tuple[str, ...]]:
    """Each operation's types (see `_types_within`) by its friendly name."""
    return {
        op.get_friendly_name(): tuple(dict.fromkeys(_types_within(op))) for op in model.get_ops()
    }


def _consumers(node: Any) -> tuple[RuntimeEdge, ...]:
    return tuple(
        RuntimeEdge(
            target.get_node().get_friendly_name(),
            target.get_index(),
            target.get_element_type().get_type_name(),
        )
        for output in node.outputs()
        for target in output.get_target_inputs()
    )


def summarize_runtime(compiled: ov.CompiledModel, model: ov.Model | None = None) -> RuntimeSummary:
    """Read layer type, runtime precision, original layer names and the edges between layers
    from the runtime graph; with the `model` it was compiled from, the original types too."""
    from segtui.core.inference import runtime_precision

    types = original_types(model) if model is not None else {}
    layers: list[RuntimeLayer] = []
    for node in compiled.get_runtime_model().get_ordered_ops():
        layer_type = _rt(node, "layerType")
        if layer_type in ("Input", "Output", "Const", "Parameter", "Result"):
            continue
        exec_time = _rt(node, "execTimeMcs")
        originals = tuple(n for n in _rt(node, "originalLayersNames").split(",") if n)
        layers.append(
            RuntimeLayer(
                name=node.get_friendly_name(),
                layer_type=layer_type,
                precision=_rt(node, "runtimePrecision").upper(),
                original_names=originals,
                exec_us=float(exec_time) if exec_time.replace(".", "", 1).isdigit() else None,
                original_types=tuple(
                    dict.fromkeys(kind for name in originals for kind in types.get(name, ()))
                ),
                output_precision=_rt(node, "outputPrecisions").upper(),
                consumers=_consumers(node),
            )
        )
    return RuntimeSummary(tuple(layers), runtime_precision(compiled))


def profile_layers(
    model: ov.Model,
    inputs: Sequence[Mapping[str, npt.NDArray[Any]]],
    *,
    device: str = "CPU",
    precision: Precision | str = Precision.F32,
) -> RuntimeProfile:
    """Per-layer times from PERF_COUNT over a few real inputs, run one at a time.

    Kept apart from the throughput measurement so that profiling overhead
    never shows in the figures that are compared.
    """
    from segtui.core.inference import compile_model
    from segtui.core.time_split import geometry_names

    compiled = compile_model(model, device, precision, hint=Hint.LATENCY, PERF_COUNT=True)
    request = compiled.create_infer_request()
    totals: dict[str, float] = {}
    for item in inputs:
        request.infer(item)
        for info in request.profiling_info:
            us = info.real_time.total_seconds() * 1e6
            totals[info.node_name] = totals.get(info.node_name, 0.0) + us
    runs = max(len(inputs), 1)
    summary = summarize_runtime(compiled, model)
    timed = tuple(
        replace(layer, exec_us=totals.get(layer.name, 0.0) / runs) for layer in summary.layers
    )
    return profile_json(replace(summary, layers=timed), geometry_names(model))


def profile_json(summary: RuntimeSummary, geometry: frozenset[str] = frozenset()) -> RuntimeProfile:
    """Time by layer type, by precision and by category (core.time_split; `geometry` names
    the original operations that are geometry), the slowest layers, the standalone
    quantizers, and what stayed in floating point."""
    # time_split classifies this module's layers: imported here, not at the top, to keep
    # the two modules out of an import cycle.
    from segtui.core.time_split import split_json

    layers = [layer for layer in summary.layers if layer.exec_us is not None]
    total_us = sum(layer.exec_us or 0.0 for layer in layers) or 1.0
    by_type: dict[str, float] = {}
    by_precision_ms: dict[str, float] = {}
    for layer in layers:
        us = layer.exec_us or 0.0
        by_type[layer.layer_type] = by_type.get(layer.layer_type, 0.0) + us / 1000
        by_precision_ms[layer.precision] = by_precision_ms.get(layer.precision, 0.0) + us / 1000
    compute_us = sum(
        layer.exec_us or 0.0 for layer in layers if layer.layer_type in COMPUTE_LAYER_TYPES
    )
    slowest = sorted(layers, key=lambda layer: -(layer.exec_us or 0.0))[:20]
    profile = summary.to_json()
    profile["total_ms"] = round(total_us / 1000, 4)
    profile["time_by_type_ms"] = {
        k: round(v, 4) for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])
    }
    profile["time_by_precision_ms"] = {
        k: round(v, 4) for k, v in sorted(by_precision_ms.items(), key=lambda kv: -kv[1])
    }
    profile["compute_share"] = round(compute_us / total_us, 4)
    profile["non_compute_share"] = round(1 - compute_us / total_us, 4)
    profile["slowest"] = [
        SlowLayer(
            name=layer.name,
            type=layer.layer_type,
            precision=layer.precision,
            ms=round((layer.exec_us or 0.0) / 1000, 4),
            share=round((layer.exec_us or 0.0) / total_us, 4),
            original=list(layer.original_names[:5]),
            precision_label=precision_label(layer.precision, summary.inference_precision),
        )
        for layer in slowest
    ]
    split = split_json(layers, total_us, geometry)
    profile["time_split_ms"] = split.ms
    profile["time_split_share"] = split.share
    profile["standalone_quantizers"] = split.standalone
    return profile
