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

Every walk stops at compute layers, so those all stay quantized.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

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
LOOP_TYPES = frozenset({"Loop", "TensorIterator"})

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
    for i in indices:
        if i < node.get_input_size():
            yield node.input_value(i).get_node()


def _bodies(op: Any) -> list[Any]:
    """The subgraph bodies of an If (then, else) or a Loop/TensorIterator; none for other ops."""
    if op.get_type_name() == "If":
        return [op.get_then_body(), op.get_else_body()]
    if op.get_type_name() in LOOP_TYPES:
        return [op.get_function()]
    return []


def _walk(starts: Iterable[Any], step: Callable[[Any], Iterator[Any]]) -> set[Any]:
    """Every node reachable from `starts` without passing through a compute layer."""
    seen: dict[str, Any] = {}
    stack = list(starts)
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        if name in seen or node.get_type_name() in COMPUTE_TYPES:
            continue
        seen[name] = node
        stack.extend(step(node))
    return set(seen.values())


def _geometry_rules(model: ov.Model, ops: list[Any]) -> dict[str, set[Any]]:
    """The nodes each top-level rule finds (see the module docstring)."""
    rules: dict[str, set[Any]] = {}
    rois = [op for op in ops if op.get_type_name() in ROI_TYPES]
    rules["proposals and box decoding"] = _walk(
        (n for r in rois for n in _producers(r, range(1, r.get_input_size()))), _producers
    ) | set(rois)
    rules["RoI feature merging"] = _walk((c for r in rois for c in _consumers(r)), _consumers)
    nms = [op for op in ops if op.get_type_name() in NMS_TYPES]
    rules["NMS and post-NMS geometry"] = _walk(
        [*nms, *(c for n in nms for c in _consumers(n))], _consumers
    )
    rules["output decoding"] = _walk(
        (n for r in model.get_results() for n in _producers(r)), _producers
    )
    rules["preprocessing"] = _walk(
        (c for p in model.get_parameters() for c in _consumers(p)), _consumers
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
        for body in _bodies(op):
            if op.get_friendly_name() in geometry:
                found |= {
                    n for n in body.get_ordered_ops() if n.get_type_name() not in COMPUTE_TYPES
                }
            else:
                nested = set(propose_ignored_scope(body).names)
                found |= {n for n in body.get_ordered_ops() if n.get_friendly_name() in nested}
    return found


def propose_ignored_scope(model: ov.Model) -> IgnoredScopeProposal:
    """Find the geometry subgraphs of a detection/segmentation model (see the module docstring)."""
    ops = list(model.get_ordered_ops())
    rules = _geometry_rules(model, ops)
    geometry = {n.get_friendly_name() for nodes in rules.values() for n in nodes}
    rules[SUBGRAPH_RULE] = _subgraph_nodes(ops, geometry)
    by_rule: dict[str, list[str]] = {}
    assigned: set[str] = set()
    order = {op.get_friendly_name(): i for i, op in enumerate(ops)}
    for rule, nodes in rules.items():
        names = sorted(
            (n.get_friendly_name() for n in nodes if n.get_type_name() not in SKIP_TYPES),
            key=lambda name: order.get(name, 0),
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
            if not all(fully(inner) for inner in _bodies(node)):
                return False
        return True

    bodies = [body for op in model.get_ordered_ops() for body in _bodies(op)]
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
    #: Compute layers (Convolution, MatMul, …) NNCF will quantize.
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
    "NMS_TYPES",
    "ROI_TYPES",
    "SKIP_TYPES",
    "IgnoredScopeJson",
    "IgnoredScopeProposal",
    "ScopeAnalysis",
    "analyse_scope",
    "bodies_fully_ignored",
    "has_dynamic_tensors",
    "has_loops",
    "if_ops",
    "propose_ignored_scope",
    "scope_analysis",
]
