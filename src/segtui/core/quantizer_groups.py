"""The quantizer groups of an INT8 model: each activation FakeQuantize and the layers it feeds.

NNCF writes an INT8 OpenVINO IR with one FakeQuantize per quantized activation (its
weights are stored as int8 constants with a scale, not as FakeQuantize nodes) and keeps
the original model's names for every other op. A group is one such FakeQuantize, what
produces its input and the layers it feeds: the first ops below it that are not
quantization-agnostic (NNCF moves a quantizer up through reshapes, pools, slices and
concatenations to the op whose input it quantizes). Those fed layers, by their original
names, are what an NNCF `IgnoredScope` takes to keep the group in floating point.

`bypassed` gives a copy of the model with some groups' FakeQuantize removed (its output
replaced by its input): the model as it would be with those activations left in float.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

import openvino as ov

from segtui.core.errors import SegtuiError
from segtui.core.ignored_scope import COMPUTE_TYPES

#: Op types NNCF quantizes through (its QUANTIZE_AGNOSTIC_OPERATIONS and concatenation): a
#: FakeQuantize above them quantizes the input of the op below them.
AGNOSTIC_TYPES = frozenset(
    {
        "MaxPool",
        "AdaptiveMaxPool",
        "ReduceMax",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "Split",
        "VariadicSplit",
        "Transpose",
        "Tile",
        "StridedSlice",
        "ShuffleChannels",
        "Broadcast",
        "Pad",
        "ConvertLike",
        "Gather",
        "GatherND",
        "GatherElements",
        "ScatterUpdate",
        "ScatterNDUpdate",
        "ScatterElementsUpdate",
        "DepthToSpace",
        "SpaceToDepth",
        "BatchToSpace",
        "SpaceToBatch",
        "Concat",
    }
)
#: Consumers that read only a tensor's shape: quantizing it changes nothing there.
SHAPE_ONLY_TYPES = frozenset({"ShapeOf"})
#: Where the walk below a FakeQuantize stops without a fed layer.
END_TYPES = frozenset({"Result"})


class QuantizerGroupJson(TypedDict):
    """A group as stored and printed (`--json`)."""

    id: int
    #: The FakeQuantize ops of the group, by name.
    quantizers: list[str]
    #: What produces each quantized tensor (name, and type), in the same order.
    producers: list[str]
    producer_types: list[str]
    #: The layers whose inputs it quantizes: what an NNCF IgnoredScope names.
    fed_layers: list[str]
    fed_types: list[str]


@dataclass(frozen=True)
class QuantizerGroup:
    """FakeQuantize ops of an INT8 model that are kept in float together, and the layers they feed.

    One quantizer, joined by those that quantize another input of a layer it feeds (NNCF
    keeps a layer in float whole) and by those that quantize a non-compute layer's output
    it feeds directly (a chain of box arithmetic is one region: each step's error compounds).
    """

    id: int
    quantizers: tuple[str, ...]
    producers: tuple[str, ...]
    producer_types: tuple[str, ...]
    #: Original names of the layers it feeds (what an NNCF IgnoredScope names).
    fed_layers: tuple[str, ...]
    #: Their op types, in the same order.
    fed_types: tuple[str, ...]

    @property
    def op_types(self) -> list[str]:
        """The distinct op types it feeds, in order of first appearance."""
        return list(dict.fromkeys(self.fed_types))

    @property
    def compute_layers(self) -> int:
        """How many of the fed layers are Convolution/MatMul-like (what INT8 speeds up)."""
        return sum(kind in COMPUTE_TYPES for kind in self.fed_types)

    def to_json(self) -> QuantizerGroupJson:
        return {
            "id": self.id,
            "quantizers": list(self.quantizers),
            "producers": list(self.producers),
            "producer_types": list(self.producer_types),
            "fed_layers": list(self.fed_layers),
            "fed_types": list(self.fed_types),
        }

    @classmethod
    def from_json(cls, data: QuantizerGroupJson) -> QuantizerGroup:
        return cls(
            id=data["id"],
            quantizers=tuple(data["quantizers"]),
            producers=tuple(data["producers"]),
            producer_types=tuple(data["producer_types"]),
            fed_layers=tuple(data["fed_layers"]),
            fed_types=tuple(data["fed_types"]),
        )


def _consumers(node: Any) -> Iterator[Any]:
    for output in node.outputs():
        for target in output.get_target_inputs():
            yield target.get_node()


def _is_constant(node: Any) -> bool:
    """Whether `node` is a constant, through the conversions that decompress one."""
    while node.get_type_name() in ("Convert", "Reshape", "Unsqueeze"):
        node = node.input_value(0).get_node()
    return bool(node.get_type_name() == "Constant")


def fed_layers(fq: Any) -> list[Any]:
    """The first ops below `fq` that are not quantization-agnostic (nor shape-only), in order."""
    found: dict[str, Any] = {}
    seen: set[str] = set()
    stack = list(_consumers(fq))
    while stack:
        node = stack.pop(0)
        name = node.get_friendly_name()
        if name in seen:
            continue
        seen.add(name)
        kind = node.get_type_name()
        if kind in SHAPE_ONLY_TYPES or kind in END_TYPES:
            continue
        if kind in AGNOSTIC_TYPES:
            stack.extend(_consumers(node))
            continue
        found[name] = node
    return list(found.values())


def activation_quantizers(model: ov.Model) -> list[Any]:
    """The model's activation FakeQuantize ops (not those on constant weights), in graph order."""
    return [
        op
        for op in model.get_ordered_ops()
        if op.get_type_name() == "FakeQuantize" and not _is_constant(op.input_value(0).get_node())
    ]


def body_quantizers(model: ov.Model) -> int:
    """FakeQuantize ops inside If/Loop bodies (not analysed: a body's tensors cannot be read)."""
    count = 0
    for op in model.get_ops():
        kind = op.get_type_name()
        bodies = (
            [op.get_then_body(), op.get_else_body()]
            if kind == "If"
            else [op.get_function()]
            if kind in ("Loop", "TensorIterator")
            else []
        )
        for body in bodies:
            count += sum(o.get_type_name() == "FakeQuantize" for o in body.get_ops())
            count += body_quantizers(body)
    return count


def _source(fq: Any) -> Any:
    """The op whose output `fq` quantizes, above any quantization-agnostic ops."""
    node = fq.input_value(0).get_node()
    while node.get_type_name() in AGNOSTIC_TYPES and node.get_input_size() > 0:
        node = node.input_value(0).get_node()
    return node


class _Union:
    """Disjoint sets of quantizer indices."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        self.parent[self.find(b)] = self.find(a)


def _joined(fqs: list[Any], fed: list[list[Any]]) -> _Union:
    """Quantizers joined by a layer they both feed, or by a non-compute layer one feeds and
    whose output the other quantizes."""
    union = _Union(len(fqs))
    owner: dict[str, int] = {}
    for index, layers in enumerate(fed):
        for layer in layers:
            name = layer.get_friendly_name()
            if name in owner:
                union.join(owner[name], index)
            else:
                owner[name] = index
    for index, fq in enumerate(fqs):
        source = _source(fq)
        if source.get_type_name() in COMPUTE_TYPES:
            continue
        feeder = owner.get(source.get_friendly_name())
        if feeder is not None:
            union.join(feeder, index)
    return union


def quantizer_groups(model: ov.Model) -> list[QuantizerGroup]:
    """Every activation quantizer group of an INT8 model, numbered in graph order."""
    fqs = activation_quantizers(model)
    # Consumers come from sets (target inputs): graph order makes a group read the same in
    # every process, so a stored analysis and its --json are reproducible.
    order = {op.get_friendly_name(): i for i, op in enumerate(model.get_ordered_ops())}
    fed = [
        sorted(fed_layers(fq), key=lambda n: order.get(n.get_friendly_name(), len(order)))
        for fq in fqs
    ]
    union = _joined(fqs, fed)
    members: dict[int, list[int]] = {}
    for index in range(len(fqs)):
        members.setdefault(union.find(index), []).append(index)
    groups = []
    for number, indices in enumerate(sorted(members.values(), key=min)):
        producers = [fqs[i].input_value(0).get_node() for i in indices]
        layers = sorted(
            {n.get_friendly_name(): n for i in indices for n in fed[i]}.values(),
            key=lambda n: order.get(n.get_friendly_name(), len(order)),
        )
        groups.append(
            QuantizerGroup(
                id=number,
                quantizers=tuple(fqs[i].get_friendly_name() for i in indices),
                producers=tuple(p.get_friendly_name() for p in producers),
                producer_types=tuple(p.get_type_name() for p in producers),
                fed_layers=tuple(n.get_friendly_name() for n in layers),
                fed_types=tuple(n.get_type_name() for n in layers),
            )
        )
    return groups


def bypassed(model: ov.Model, fq_names: Collection[str]) -> ov.Model:
    """A copy of `model` with the named FakeQuantize ops removed (each output fed its input)."""
    copy = model.clone()
    wanted = set(fq_names)
    found = 0
    for op in copy.get_ordered_ops():
        if op.get_type_name() == "FakeQuantize" and op.get_friendly_name() in wanted:
            op.output(0).replace(op.input_value(0))
            found += 1
    if found != len(wanted):
        raise SegtuiError(
            f"{len(wanted) - found} of the quantizers to keep in float are not in the model.",
            "The INT8 model changed since the analysis: run the sensitivity analysis again.",
        )
    copy.validate_nodes_and_infer_types()
    return copy


__all__ = [
    "AGNOSTIC_TYPES",
    "QuantizerGroup",
    "QuantizerGroupJson",
    "activation_quantizers",
    "body_quantizers",
    "bypassed",
    "fed_layers",
    "quantizer_groups",
]
