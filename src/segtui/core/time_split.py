"""Where a per-layer profile's time goes: each runtime layer in one category ("why not 2×").

INT8 speeds up the compute it quantizes and nothing else. The split says how much of the
time that is ("quantized compute") and what the rest is: compute left in floating point,
the detection tail's geometry kept in float, quantizers that run as layers of their own,
layout conversions (Reorder) and everything else (eltwise, pooling, shape ops...).

A standalone quantizer is a FakeQuantize the CPU plugin could not fuse into a neighbour:
a runtime layer of type FakeQuantize, or a Subgraph made of FakeQuantize operations only
(measured: OpenVINO 2026.4 runs most lone quantizers as such a Subgraph).
It is worth its cost where its output reaches an INT8 input of a compute layer (through
layers that only move the int8 data on); one that feeds no such input quantizes and
dequantizes for nothing (core.standalone_fq drops those after calibration).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import openvino as ov

from segtui.core.ignored_scope import NMS_TYPES, ROI_TYPES, propose_ignored_scope
from segtui.core.runtime_graph import (
    COMPUTE_LAYER_TYPES,
    INT8_PRECISIONS,
    RuntimeLayer,
    StandaloneQuantizerJson,
    TimeCategory,
)

#: The detection tail's geometry by type: the automatic scope's RoI and NMS-like operations,
#: the RPN's prior grid, and the scatter that merges RoI levels (torchvision's
#: MultiScaleRoIAlign). With the model, what its automatic scope finds counts too.
GEOMETRY_TYPES = (
    ROI_TYPES | NMS_TYPES | {"ExperimentalDetectronPriorGridGenerator", "ScatterElementsUpdate"}
)
QUANTIZER_TYPE = "FakeQuantize"
#: What the CPU plugin runs fused element-wise operations as (a lone FakeQuantize too).
SUBGRAPH_TYPE = "Subgraph"
REORDER_TYPE = "Reorder"
#: Runtime layers that only move data: a quantizer's int8 output passes them on its way to
#: a compute layer (so do layers that run in I8/U8 themselves, like a MaxPool).
MOVING_TYPES = frozenset(
    {
        "Reshape",
        "Reorder",
        "Transpose",
        "Concatenation",
        "Squeeze",
        "Unsqueeze",
        "Split",
        "StridedSlice",
        "Gather",
    }
)
INT8_TYPES = frozenset({"i8", "u8"})
#: The automatic scope's walks that find what is not the detection tail's geometry: the
#: input's preparation (an in-graph resize) and the outputs' last steps (a mask sigmoid).
NOT_GEOMETRY_RULES = frozenset({"preprocessing", "output decoding"})


def geometry_names(model: ov.Model) -> frozenset[str]:
    """The operations the automatic scope keeps in floating point as geometry: proposals and
    box decoding, RoI feature merging, NMS and what follows, inside their If/Loop bodies."""
    proposal = propose_ignored_scope(model)
    return frozenset(
        name
        for rule, names in proposal.by_rule.items()
        if rule not in NOT_GEOMETRY_RULES
        for name in names
    )


def is_standalone_quantizer(layer: RuntimeLayer) -> bool:
    """A FakeQuantize layer, or a Subgraph of FakeQuantize operations only (known from the
    original types, when the layer was read with its model)."""
    if layer.layer_type == QUANTIZER_TYPE:
        return True
    return layer.layer_type == SUBGRAPH_TYPE and layer.original_types == (QUANTIZER_TYPE,)


def category(layer: RuntimeLayer, geometry: frozenset[str] = frozenset()) -> TimeCategory:
    """The one category a runtime layer's time belongs to; `geometry` names the original
    operations that are geometry (see `geometry_names`)."""
    if is_standalone_quantizer(layer):
        return TimeCategory.STANDALONE_QUANTIZERS
    if layer.layer_type in COMPUTE_LAYER_TYPES:
        if layer.precision in INT8_PRECISIONS:
            return TimeCategory.QUANTIZED_COMPUTE
        return TimeCategory.FLOAT_COMPUTE
    if layer.layer_type == REORDER_TYPE:
        return TimeCategory.LAYOUT
    if (
        layer.layer_type in GEOMETRY_TYPES
        or not GEOMETRY_TYPES.isdisjoint(layer.original_types)
        or not geometry.isdisjoint(layer.original_names)
    ):
        return TimeCategory.GEOMETRY
    return TimeCategory.OTHER


def int8_compute_fed(layer: RuntimeLayer, by_name: Mapping[str, RuntimeLayer]) -> list[str]:
    """The compute layers running in I8/U8 whose int8 input `layer`'s output reaches, through
    layers that move the data on (see MOVING_TYPES) or run in I8/U8 themselves."""
    fed: list[str] = []
    seen = {layer.name}
    edges = list(layer.consumers)
    while edges:
        edge = edges.pop(0)
        target = by_name.get(edge.layer)
        if target is None:
            continue  # an output of the model
        if target.layer_type in COMPUTE_LAYER_TYPES:
            # A compute layer's other inputs (a fused sum, a bias) read float data.
            int8_input = edge.element_type.lower() in INT8_TYPES
            if target.precision in INT8_PRECISIONS and int8_input and target.name not in fed:
                fed.append(target.name)
            continue
        if target.name in seen:
            continue
        seen.add(target.name)
        if target.layer_type in MOVING_TYPES or target.precision in INT8_PRECISIONS:
            edges.extend(target.consumers)
    return fed


@dataclass(frozen=True)
class StandaloneQuantizer:
    """A quantizer that runs as a layer of its own, and the INT8 compute it feeds."""

    layer: str
    #: The FakeQuantize operations of the model it executes.
    original: tuple[str, ...]
    output_precision: str
    #: The compute layers whose int8 input it reaches (none: it quantizes for nothing).
    feeds: tuple[str, ...]
    exec_us: float | None = None

    @property
    def feeds_int8(self) -> bool:
        return bool(self.feeds)


def standalone_quantizers(layers: Sequence[RuntimeLayer]) -> list[StandaloneQuantizer]:
    """Every standalone quantizer among `layers`, in graph order."""
    by_name = {layer.name: layer for layer in layers}
    found = []
    for layer in layers:
        if not is_standalone_quantizer(layer):
            continue
        found.append(
            StandaloneQuantizer(
                layer=layer.name,
                original=layer.original_names,
                output_precision=layer.output_precision,
                feeds=tuple(int8_compute_fed(layer, by_name)),
                exec_us=layer.exec_us,
            )
        )
    return found


@dataclass(frozen=True)
class TimeSplit:
    """The split of a profile, as stored in its RuntimeProfile."""

    ms: dict[str, float]
    share: dict[str, float]
    standalone: list[StandaloneQuantizerJson]


def split_ms(
    layers: Iterable[RuntimeLayer], geometry: frozenset[str] = frozenset()
) -> dict[TimeCategory, float]:
    """Milliseconds per category (every category, in TimeCategory's order)."""
    totals = dict.fromkeys(TimeCategory, 0.0)
    for layer in layers:
        totals[category(layer, geometry)] += (layer.exec_us or 0.0) / 1000
    return totals


def split_json(
    layers: Sequence[RuntimeLayer], total_us: float, geometry: frozenset[str] = frozenset()
) -> TimeSplit:
    """The split of profiled `layers` whose times add up to `total_us` (0 shares when 0)."""
    totals = split_ms(layers, geometry)
    total_ms = total_us / 1000
    quantizers = [
        StandaloneQuantizerJson(
            name=q.layer,
            original=list(q.original),
            ms=round((q.exec_us or 0.0) / 1000, 4),
            share=round((q.exec_us or 0.0) / total_us, 4) if total_us > 0 else 0.0,
            output_precision=q.output_precision,
            feeds_int8=q.feeds_int8,
            feeds=list(q.feeds),
        )
        for q in standalone_quantizers(layers)
    ]
    return TimeSplit(
        ms={str(k): round(v, 4) for k, v in totals.items()},
        share={str(k): round(v / total_ms, 4) if total_ms > 0 else 0.0 for k, v in totals.items()},
        standalone=quantizers,
    )


__all__ = [
    "GEOMETRY_TYPES",
    "StandaloneQuantizer",
    "TimeSplit",
    "category",
    "geometry_names",
    "int8_compute_fed",
    "is_standalone_quantizer",
    "split_json",
    "split_ms",
    "standalone_quantizers",
]
