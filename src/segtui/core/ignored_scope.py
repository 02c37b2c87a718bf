"""The instance-segmentation-aware ignored scope: the geometry to keep in floating point.

A Mask R-CNN's accuracy lives in its geometry: box coordinates, proposal
decoding, RoI level assignment and feature merging, NMS. Quantizing those
destroys the masks (measured on the sample model: mask AP 0.717 → 0.000),
while the speed lives in the Convolutions and MatMuls. So by default segtui
quantizes the compute and keeps the geometry in floating point, finding the
geometry from the graph's structure (not from one model's layer names):

- preprocessing: what follows the inputs up to the first compute layer;
- proposals and box decoding: what feeds the box input of RoIAlign-like ops;
- RoI feature merging: what follows RoIAlign up to the heads' first compute layer;
- post-NMS geometry: what follows NMS/TopK-like ops;
- output decoding: what precedes the outputs back to the last compute layer.

Every walk stops at compute layers, so those all stay quantized, except at the
non-learned decoding layers: a YOLOv8/YOLO11 head ends in a DFL, a 1x1 Convolution with
fixed weights 0, 1, …, 15 that projects a softmax over 16 distance bins onto a box
distance. It is geometry, not compute: quantizing its input (a softmax) was, with the
Performance preset, why a yolov8n-seg lost 1.7 points of mask AP more than with
Ultralytics' own INT8 export (issue #16). So it is kept in floating point with its softmax
and layout ops, and the walks pass through it (see decoding_layers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
import openvino as ov

from segtui.core.models import load_registered
from segtui.core.workspace import ModelRecord

COMPUTE_TYPES = frozenset(
    {
        "Convolution",
        "GroupConvolution",
        "ConvolutionBackpropData",
        "GroupConvolutionBackpropData",
        "MatMul",
    }
)
ROI_TYPES = frozenset(
    {
        "ROIAlign",
        "ROIAlignRotated",
        "ROIPooling",
        "PSROIPooling",
        "ExperimentalDetectronROIFeatureExtractor",
    }
)
NMS_TYPES = frozenset(
    {
        "NonMaxSuppression",
        "MatrixNms",
        "MulticlassNms",
        "NMSRotated",
        "TopK",
        "ExperimentalDetectronDetectionOutput",
        "ExperimentalDetectronGenerateProposalsSingleImage",
        "ExperimentalDetectronTopKROIs",
        "Proposal",
        "DetectionOutput",
    }
)
SKIP_TYPES = frozenset({"Parameter", "Constant", "Result"})
SHAPE_TYPES = frozenset({"ShapeOf"})
#: Inputs an op reads for their shape only (PriorGridGenerator: the feature map and the
#: image give the grid's size): their producers are not geometry.
SHAPE_INPUTS = {"ExperimentalDetectronPriorGridGenerator": frozenset({1, 2})}
#: The box inputs of the RoI ops whose ROIs come first (the features follow them); the
#: other RoI ops read features at input 0 and boxes (and batch indices) after it.
ROIS_FIRST = frozenset({"ExperimentalDetectronROIFeatureExtractor"})
LOOP_TYPES = frozenset({"Loop", "TensorIterator"})

#: Ops between a softmax over bins and the projection that reads it.
LAYOUT_TYPES = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze"})
#: The fewest bins a decoding projection has (DFL has 16): any 2 or 3 numbers are close to
#: a progression, 4 learned ones never are.
MIN_BINS = 4
#: How far from a progression FP16 weights may be, relative to the largest (FP16 keeps
#: 11 bits: each weight is within 5e-4 of its size, each step within 1e-3).
PROGRESSION_TOLERANCE = 2e-3

#: The rule that names the non-learned decoding layers (see decoding_layers).
DECODING_RULE = "non-learned decoding (DFL)"
#: The rule that names the nodes inside If/Loop bodies (see propose_ignored_scope).
SUBGRAPH_RULE = "inside geometry subgraphs"


class IgnoredScopeJson(TypedDict):
    """The proposal as stored with an optimized model."""

    count: int
    by_rule: dict[str, int]
    types: dict[str, int]
    names: list[str]


@dataclass(frozen=True)
class IgnoredScopeProposal:
    """The nodes to keep in floating point, by the rule that found them."""

    by_rule: dict[str, list[str]] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for names in self.by_rule.values():
            seen.update(dict.fromkeys(names))
        return list(seen)

    def to_json(self) -> IgnoredScopeJson:
        return {
            "count": len(self.names),
            "by_rule": {rule: len(names) for rule, names in self.by_rule.items()},
            "types": dict(self.types),
            "names": self.names,
        }


# -- walking the graph ----------------------------------------------------------------


def _consumers(node: Any) -> Iterator[Any]:
    for output in node.outputs():
        for target in output.get_target_inputs():
            yield target.get_node()


def _producers(node: Any, ports: Iterable[int] | None = None) -> Iterator[Any]:
    if node.get_type_name() in SHAPE_TYPES:
        return  # only the producer's shape is used: the producer itself is not geometry
    indices = range(node.get_input_size()) if ports is None else ports
    shape_only = SHAPE_INPUTS.get(node.get_type_name(), frozenset())
    for i in indices:
        if i < node.get_input_size() and i not in shape_only:
            yield node.input_value(i).get_node()


def _box_ports(roi_op: Any) -> range:
    """The inputs of a RoI op that carry its boxes (not its features)."""
    if roi_op.get_type_name() in ROIS_FIRST:
        return range(1)
    return range(1, roi_op.get_input_size())


def subgraph_bodies(op: Any) -> list[Any]:
    """The subgraph bodies of an If (then, else) or a Loop/TensorIterator; none for other ops."""
    if op.get_type_name() == "If":
        return [op.get_then_body(), op.get_else_body()]
    if op.get_type_name() in LOOP_TYPES:
        return [op.get_function()]
    return []


# -- non-learned decoding layers (a YOLO head's DFL) -----------------------------------


def _constant_value(node: Any, size: int) -> npt.NDArray[np.float64] | None:
    """The numbers of a weight of `size` (or one, broadcast): a Constant, through FP16
    decompression (Convert) and dequantization (Subtract the zero point, Multiply by the
    scale); None when data feeds it."""
    kind = node.get_type_name()
    if kind == "Constant":
        value = np.asarray(node.get_data(), np.float64).ravel()
        return value if value.size in (1, size) else None  # packed 4-bit data is not read
    if kind in ("Convert", "Reshape", "Squeeze", "Unsqueeze"):
        return _constant_value(node.input_value(0).get_node(), size)
    if kind in ("Subtract", "Multiply"):
        a, b = (_constant_value(node.input_value(i).get_node(), size) for i in range(2))
        if a is None or b is None:
            return None
        return a - b if kind == "Subtract" else a * b
    return None


def _weights(node: Any, size: int) -> npt.NDArray[np.float64] | None:
    """The `size` constant weights `node` gives, or None."""
    value = _constant_value(node, size)
    return value if value is not None and value.size == size else None


def _static_dims(op: Any, port: int) -> list[int] | None:
    shape = op.get_input_partial_shape(port)
    return [int(d) for d in shape.to_shape()] if shape.is_static else None


def _projection(op: Any) -> tuple[int, int, npt.NDArray[np.float64]] | None:
    """(data port, bins, weights) when `op` projects `bins` channels onto one value by constant
    weights: a 1x1 Convolution with one output channel, or a MatMul by a [bins, 1] constant."""
    kind = op.get_type_name()
    if kind == "Convolution":
        dims = _static_dims(op, 1)  # [out, in, kernel...]
        if dims is None or len(dims) < 3 or dims[0] != 1 or any(d != 1 for d in dims[2:]):
            return None
        weights = _weights(op.input_value(1).get_node(), dims[1])
        return None if weights is None else (0, dims[1], weights)
    if kind != "MatMul":
        return None
    attributes = op.get_attributes()
    for port in (1, 0):
        dims = _static_dims(op, port)
        if not dims:
            continue
        transposed = bool(attributes["transpose_b" if port == 1 else "transpose_a"])
        # The contracted axis: B's rows and A's columns, unless transposed.
        last = len(dims) - 1
        contracted = last if last == 0 or (port == 1) == transposed else last - 1
        bins = dims[contracted]
        if any(d != 1 for i, d in enumerate(dims) if i != contracted):
            continue
        weights = _weights(op.input_value(port).get_node(), bins)
        if weights is not None:
            return 1 - port, bins, weights
    return None


def _layout_above(node: Any) -> list[Any]:
    """The layout ops that feed `node` (its data input), nearest first."""
    path: list[Any] = []
    above = node.input_value(0).get_node()
    while above.get_type_name() in LAYOUT_TYPES:
        path.append(above)
        above = above.input_value(0).get_node()
    return path


def _layout_below(node: Any) -> list[Any]:
    """The layout ops that `node` alone feeds, one after the other (the DFL's final view)."""
    path: list[Any] = []
    while True:
        below = list(_consumers(node))
        if len(below) != 1 or below[0].get_type_name() not in LAYOUT_TYPES:
            return path
        node = below[0]
        path.append(node)


def _softmax_path(op: Any, port: int, bins: int) -> list[Any] | None:
    """The Softmax over `bins` that feeds `op` through layout ops only, those ops, and the
    layout ops before the softmax (a DFL's view and transpose); None without such a softmax."""
    path: list[Any] = []
    node = op.input_value(port).get_node()
    while node.get_type_name() in LAYOUT_TYPES:
        path.append(node)
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Softmax":
        return None
    shape = node.get_output_partial_shape(0)
    if shape.rank.is_dynamic:
        return None
    axis = int(node.get_attributes()["axis"])
    dim = shape[axis + len(shape) if axis < 0 else axis]
    if not dim.is_static or dim.get_length() != bins:
        return None
    return [*path, node, *_layout_above(node)]


def _is_progression(weights: npt.NDArray[np.float64]) -> bool:
    """Whether the weights step by one non-zero constant (DFL: 0, 1, …, 15)."""
    steps = np.diff(weights)
    tolerance = PROGRESSION_TOLERANCE * float(np.abs(weights).max(initial=0.0))
    return bool(abs(steps[0]) > tolerance and np.all(np.abs(steps - steps[0]) <= tolerance))


def decoding_layers(ops: Iterable[Any]) -> dict[str, list[Any]]:
    """The non-learned decoding layers by name, each with its softmax and layout ops.

    One is a Convolution (1x1, one output channel) or a MatMul (one output column) whose
    weights are constant, over at least MIN_BINS input channels, and either step by a
    constant (0, 1, …, 15) or read a Softmax over as many bins through Reshape/Transpose
    only: a projection of a distribution onto a distance, as a DFL does. A learned layer
    has more outputs, or weights from no progression fed by no softmax over its bins.
    """
    found: dict[str, list[Any]] = {}
    for op in ops:
        projection = _projection(op)
        if projection is None or projection[1] < MIN_BINS:
            continue
        port, bins, weights = projection
        path = _softmax_path(op, port, bins)
        if path is not None or _is_progression(weights):
            found[op.get_friendly_name()] = [op, *(path or []), *_layout_below(op)]
    return found


# -- the geometry rules ---------------------------------------------------------------


def _stops(node: Any, passable: Collection[str]) -> bool:
    """Whether a walk stops at `node`: a compute layer, unless a non-learned decoding one."""
    return node.get_type_name() in COMPUTE_TYPES and node.get_friendly_name() not in passable


def _walk(
    starts: Iterable[Any], step: Callable[[Any], Iterator[Any]], passable: Collection[str]
) -> set[Any]:
    """Every node reachable from `starts` without passing through a compute layer."""
    seen: dict[str, Any] = {}
    stack = list(starts)
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        if name in seen or _stops(node, passable):
            continue
        seen[name] = node
        stack.extend(step(node))
    return set(seen.values())


def _geometry_rules(
    model: ov.Model, ops: list[Any], passable: Collection[str]
) -> dict[str, set[Any]]:
    """The nodes each top-level rule finds (see the module docstring)."""
    rules: dict[str, set[Any]] = {}
    rois = [op for op in ops if op.get_type_name() in ROI_TYPES]
    rules["proposals and box decoding"] = _walk(
        (n for r in rois for n in _producers(r, _box_ports(r))),
        _producers,
        passable,
    ) | set(rois)
    rules["RoI feature merging"] = _walk(
        (c for r in rois for c in _consumers(r)), _consumers, passable
    )
    nms = [op for op in ops if op.get_type_name() in NMS_TYPES]
    rules["NMS and post-NMS geometry"] = _walk(
        [*nms, *(c for n in nms for c in _consumers(n))], _consumers, passable
    )
    rules["output decoding"] = _walk(
        (n for r in model.get_results() for n in _producers(r)), _producers, passable
    )
    rules["preprocessing"] = _walk(
        (c for p in model.get_parameters() for c in _consumers(p)), _consumers, passable
    )
    return rules


def _subgraph_nodes(ops: list[Any], geometry: set[str]) -> set[Any]:
    """The nodes to ignore inside If/Loop bodies.

    NNCF quantizes the bodies (the If that holds a batched NMS, loops) as graphs of
    their own, with the same ignored scope, so their nodes must be named too: all of a
    body whose op is geometry (compute excepted), else the body's own geometry.
    """
    found: set[Any] = set()
    for op in ops:
        for body in subgraph_bodies(op):
            inner = list(body.get_ordered_ops())
            if op.get_friendly_name() in geometry:
                passable = decoding_layers(inner)
                found |= {n for n in inner if not _stops(n, passable)}
            else:
                nested = set(propose_ignored_scope(body).names)
                found |= {n for n in inner if n.get_friendly_name() in nested}
    return found


def _graph_order(ops: list[Any]) -> dict[str, int]:
    """Each node's place: the graph's order, then its bodies' (the same listing on every run)."""
    order: dict[str, int] = {}
    graphs = [ops]
    while graphs:
        for op in graphs.pop(0):
            order.setdefault(op.get_friendly_name(), len(order))
            graphs.extend(list(body.get_ordered_ops()) for body in subgraph_bodies(op))
    return order


def propose_ignored_scope(model: ov.Model) -> IgnoredScopeProposal:
    """Find the geometry subgraphs of a detection/segmentation model (see the module docstring)."""
    ops = list(model.get_ordered_ops())
    decoding = decoding_layers(ops)
    rules: dict[str, set[Any]] = {}
    if decoding:  # first, so that its nodes are listed under it and not under a walk's rule
        rules[DECODING_RULE] = {n for nodes in decoding.values() for n in nodes}
    rules |= _geometry_rules(model, ops, decoding)
    geometry = {n.get_friendly_name() for nodes in rules.values() for n in nodes}
    rules[SUBGRAPH_RULE] = _subgraph_nodes(ops, geometry)
    by_rule: dict[str, list[str]] = {}
    assigned: set[str] = set()
    order = _graph_order(ops)
    for rule, nodes in rules.items():
        names = sorted(
            (n.get_friendly_name() for n in nodes if n.get_type_name() not in SKIP_TYPES),
            key=lambda name: (order.get(name, len(order)), name),
        )
        fresh = [n for n in names if n not in assigned]
        assigned.update(fresh)
        by_rule[rule] = fresh
    types = Counter(op.get_type_name() for op in ops if op.get_friendly_name() in assigned)
    return IgnoredScopeProposal(by_rule=by_rule, types=dict(types.most_common()))


# -- what the quantizer needs to know about the graph --------------------------------


def if_ops(model: ov.Model) -> list[Any]:
    """The model's top-level If operations (NNCF quantizes each of their bodies separately)."""
    return [op for op in model.get_ordered_ops() if op.get_type_name() == "If"]


def has_loops(model: ov.Model) -> bool:
    """Whether the top-level graph holds a Loop or TensorIterator."""
    return any(op.get_type_name() in LOOP_TYPES for op in model.get_ops())


def bodies_fully_ignored(model: ov.Model, names: Iterable[str], types: Iterable[str]) -> bool:
    """Whether the model has subgraph bodies and every operation inside them is ignored.

    NNCF quantizes the bodies of each If as graphs of their own: it first runs the
    whole model over the calibration set once per If to collect the bodies' inputs.
    When the ignored scope already holds every operation of every body (the batched
    NMS of a Mask R-CNN), those passes produce nothing, so they can be skipped.
    """
    ignored, ignored_types = set(names), set(types)

    def fully(body: Any) -> bool:
        for node in body.get_ordered_ops():
            kind = node.get_type_name()
            if kind in SKIP_TYPES or kind in ignored_types:
                continue
            if node.get_friendly_name() not in ignored:
                return False
            if not all(fully(inner) for inner in subgraph_bodies(node)):
                return False
        return True

    bodies = [body for op in model.get_ordered_ops() for body in subgraph_bodies(op)]
    return bool(bodies) and all(fully(body) for body in bodies)


def has_dynamic_tensors(model: ov.Model) -> bool:
    """Whether any tensor inside the graph has a dynamic shape (e.g. one row per detection)."""
    return any(
        not op.get_output_partial_shape(i).is_static
        for op in model.get_ordered_ops()
        for i in range(op.get_output_size())
    )


# -- the analysis shown before an optimization starts --------------------------------


@dataclass(frozen=True)
class ScopeAnalysis:
    """The automatic ignored scope of a model, and what its graph holds (to check user entries)."""

    proposal: IgnoredScopeProposal
    #: Layer name → op type, for every op of the model.
    type_of: Mapping[str, str]
    #: Compute layers (Convolution, MatMul, …) NNCF will quantize (a non-learned decoding
    #: layer is in the proposal, so never counted here).
    quantized_compute: int

    def unknown_names(self, names: Iterable[str]) -> list[str]:
        """The layer names that are not in the model."""
        return [n for n in names if n not in self.type_of]

    def unknown_types(self, types: Iterable[str]) -> list[str]:
        """The op types of which the model has no layer."""
        present = set(self.type_of.values())
        return [t for t in types if t not in present]

    def layers_of_types(self, types: Iterable[str]) -> int:
        """How many layers have one of `types`."""
        wanted = set(types)
        return sum(kind in wanted for kind in self.type_of.values())


def scope_analysis(model: ov.Model) -> ScopeAnalysis:
    """The proposal for `model`, its op types and how many compute layers stay quantized."""
    proposal = propose_ignored_scope(model)
    ignored = set(proposal.names)
    type_of: dict[str, str] = {}
    compute = 0
    for op in model.get_ordered_ops():
        name, kind = op.get_friendly_name(), op.get_type_name()
        type_of[name] = kind
        compute += kind in COMPUTE_TYPES and name not in ignored
    return ScopeAnalysis(proposal, type_of, compute)


def analyse_scope(model: ModelRecord) -> ScopeAnalysis:
    """Load a registered model and analyse its graph (about a second on the sample model)."""
    return scope_analysis(load_registered(model).model)


__all__ = [
    "COMPUTE_TYPES",
    "DECODING_RULE",
    "LAYOUT_TYPES",
    "MIN_BINS",
    "NMS_TYPES",
    "ROI_TYPES",
    "SKIP_TYPES",
    "IgnoredScopeJson",
    "IgnoredScopeProposal",
    "ScopeAnalysis",
    "analyse_scope",
    "bodies_fully_ignored",
    "decoding_layers",
    "has_dynamic_tensors",
    "has_loops",
    "if_ops",
    "propose_ignored_scope",
    "scope_analysis",
]
