"""INT8 post-training quantization with NNCF, aware of instance-segmentation geometry.

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

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from segtui.core.datasets import load_image
from segtui.core.errors import SegtuiError
from segtui.core.evaluation import evaluate_coco, predictions_as_ground_truth
from segtui.core.formats import FormatAdapter
from segtui.core.predictions import ImagePrediction
from segtui.core.progress import CancelToken, ProgressCallback, no_progress

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

METHODS = ("default", "accuracy-aware")
PRESETS = ("performance", "mixed")
DROP_TYPES = ("absolute", "relative")


@dataclass
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

    def to_json(self) -> dict[str, Any]:
        return {
            "count": len(self.names),
            "by_rule": {rule: len(names) for rule, names in self.by_rule.items()},
            "types": self.types,
            "names": self.names,
        }


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
    if op.get_type_name() in ("Loop", "TensorIterator"):
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


def propose_ignored_scope(model: ov.Model) -> IgnoredScopeProposal:
    """Find the geometry subgraphs of a detection/segmentation model (see the module docstring)."""
    ops = list(model.get_ordered_ops())
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
    # Subgraph bodies (the If that holds a batched NMS, loops): NNCF quantizes them as
    # graphs of their own, with the same ignored scope, so their nodes must be named too.
    rules["inside geometry subgraphs"] = set()
    geometry = {n.get_friendly_name() for nodes in rules.values() for n in nodes}
    for op in ops:
        for body in _bodies(op):
            if op.get_friendly_name() in geometry:
                rules["inside geometry subgraphs"] |= {
                    n for n in body.get_ordered_ops() if n.get_type_name() not in COMPUTE_TYPES
                }
            else:
                nested = set(propose_ignored_scope(body).names)
                rules["inside geometry subgraphs"] |= {
                    n for n in body.get_ordered_ops() if n.get_friendly_name() in nested
                }
    by_rule: dict[str, list[str]] = {}
    assigned: set[str] = set()
    types: Counter[str] = Counter()
    order = {op.get_friendly_name(): i for i, op in enumerate(ops)}
    for rule, nodes in rules.items():
        names = sorted(
            (n.get_friendly_name() for n in nodes if n.get_type_name() not in SKIP_TYPES),
            key=lambda name: order.get(name, 0),
        )
        fresh = [n for n in names if n not in assigned]
        assigned.update(fresh)
        by_rule[rule] = fresh
    for op in ops:
        if op.get_friendly_name() in assigned:
            types[op.get_type_name()] += 1
    return IgnoredScopeProposal(by_rule=by_rule, types=dict(types.most_common()))


def if_ops(model: ov.Model) -> list[Any]:
    """The model's top-level If operations (NNCF quantizes each of their bodies separately)."""
    return [op for op in model.get_ordered_ops() if op.get_type_name() == "If"]


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


@dataclass
class OptimizeSettings:
    """What the user chose on the Optimize page (or on the command line)."""

    method: str = "default"
    preset: str = "performance"
    subset_percent: float = 100.0
    fast_bias_correction: bool = True
    auto_ignore: bool = True
    ignore_names: list[str] = field(default_factory=list)
    ignore_types: list[str] = field(default_factory=list)
    max_drop: float = 0.5  # points of mask AP (0.5 = 0.005 in AP units) for absolute
    drop_type: str = "absolute"
    validation_images: int = 50

    def validate(self, annotated: bool) -> None:
        if self.method not in METHODS:
            raise SegtuiError(
                f"Unknown method {self.method!r}.", f"Use one of: {', '.join(METHODS)}."
            )
        if self.preset not in PRESETS:
            raise SegtuiError(
                f"Unknown preset {self.preset!r}.", f"Use one of: {', '.join(PRESETS)}."
            )
        if not 0 < self.subset_percent <= 100:
            raise SegtuiError(
                f"Subset size {self.subset_percent}% is out of range.", "Use 1–100 %."
            )
        if self.method == "accuracy-aware":
            if not 0.1 <= self.max_drop <= 10:
                raise SegtuiError(
                    f"Max drop {self.max_drop} is out of range.", "Use 0.1–10 points."
                )
            if self.drop_type not in DROP_TYPES:
                raise SegtuiError(
                    f"Unknown drop type {self.drop_type!r}.", "Use absolute or relative."
                )
            if self.validation_images < 1:
                raise SegtuiError("AccuracyAware needs at least one validation image.")

    def subset_count(self, image_count: int) -> int:
        """Images used for calibration: the percentage of the dataset, at least one."""
        # Rounded first: 250 × 64.4 % is 161.00000000000003 in floating point, not 162 images.
        exact = round(image_count * self.subset_percent / 100, 6)
        return max(1, min(image_count, math.ceil(exact)))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QuantizeOutcome:
    xml_path: Path
    calibration_seconds: float
    subset_size: int
    ignored: IgnoredScopeProposal | None
    ignored_names: list[str]
    accuracy: dict[str, Any] | None = None
    #: If operations whose bodies held nothing to quantize, so NNCF's passes over the
    #: calibration set for them were skipped.
    if_bodies_skipped: int = 0


class _CountingSource:
    """Image paths for NNCF, loaded and preprocessed lazily (streamed from disk), counting reads."""

    def __init__(
        self, paths: list[Path], adapter: FormatAdapter, on_item: Callable[[], None]
    ) -> None:
        self.paths = paths
        self.adapter = adapter
        self.on_item = on_item

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def transform(self, path: Path) -> dict[str, np.ndarray]:
        self.on_item()
        inputs, _ = self.adapter.preprocess(load_image(path))
        return inputs


def _ignored_scope(settings: OptimizeSettings, proposal: IgnoredScopeProposal | None) -> Any:
    import nncf

    names = list(settings.ignore_names)
    if proposal is not None:
        names = list(dict.fromkeys([*proposal.names, *names]))
    if not names and not settings.ignore_types:
        return None, names
    scope = nncf.IgnoredScope(names=names, types=list(settings.ignore_types), validate=False)
    return scope, names


class ReferenceMetric:
    """Mask AP of a candidate model on validation images, against annotations or a reference model.

    NNCF calls it with a compiled model and an iterable of validation items; it
    first calls it on a one-item dataset, which may hold no predictions at all.
    """

    def __init__(
        self,
        adapter: FormatAdapter,
        items: list[tuple[str, Path, int]],
        ground_truth: dict[str, Any],
        category_ids: list[int] | None,
    ) -> None:
        self.adapter = adapter
        self.items = items
        self.ground_truth = ground_truth
        self.category_ids = category_ids
        self.calls = 0
        # Mask AP of each call on the whole validation set, in order: the first is the
        # parent (NNCF's reference), the last the model NNCF returns.
        self.full_set_values: list[float] = []
        self.on_call: Callable[[int], None] | None = None

    def predict(
        self, compiled: ov.CompiledModel, items: Iterable[tuple[str, Path, int]]
    ) -> list[ImagePrediction]:
        request = compiled.create_infer_request()
        predictions = []
        for name, path, _ in items:
            image = load_image(path)
            inputs, meta = self.adapter.preprocess(image)
            request.infer(inputs)
            outputs = [np.array(t.data) for t in request.output_tensors]
            h, w = meta.original_size
            predictions.append(
                ImagePrediction(name, w, h, self.adapter.decode(outputs, meta, 0.05))
            )
        return predictions

    def __call__(self, compiled: ov.CompiledModel, items: Iterable[tuple[str, Path, int]]) -> float:
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        items = list(items)
        predictions = self.predict(compiled, items)
        ids = {name: image_id for name, _, image_id in items}
        wanted = set(ids.values())
        subset = dict(
            self.ground_truth,
            images=[im for im in self.ground_truth["images"] if im["id"] in wanted],
            annotations=[a for a in self.ground_truth["annotations"] if a["image_id"] in wanted],
        )
        metrics = evaluate_coco(subset, predictions, ids, self.category_ids)
        if metrics.mask_ap < 0:
            # No ground truth in these images: full marks only if the model found nothing either.
            value = 1.0 if metrics.detections == 0 else 0.0
        else:
            value = metrics.mask_ap
        if len(items) == len(self.items):
            self.full_set_values.append(value)
        return value


def parent_reference(
    model: ov.Model,
    adapter: FormatAdapter,
    items: list[tuple[str, Path, int]],
    num_classes: int,
    score_threshold: float = 0.5,
) -> dict[str, Any]:
    """Ground truth made of the parent model's own (f32) predictions, for a dataset without annotations."""
    from segtui.core.inference import compile_model

    compiled = compile_model(model, "CPU", "f32", hint="LATENCY")
    metric = ReferenceMetric(adapter, items, {}, None)
    predictions = metric.predict(compiled, items)
    ids = {name: image_id for name, _, image_id in items}
    return predictions_as_ground_truth(predictions, ids, num_classes, score_threshold)


def quantize(
    model: ov.Model,
    adapter: FormatAdapter,
    calibration_paths: list[Path],
    settings: OptimizeSettings,
    out_xml: Path,
    *,
    metric: ReferenceMetric | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    skip_ignored_bodies: bool = True,
) -> QuantizeOutcome:
    """Quantize `model` with NNCF and save the INT8 IR at `out_xml` (weights compressed to FP16).

    `skip_ignored_bodies=False` keeps NNCF's own handling of If bodies even when
    they hold nothing to quantize (for measurements).
    """
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedAccuracyRestorerParameters,
        AdvancedQuantizationParameters,
    )

    proposal = propose_ignored_scope(model) if settings.auto_ignore else None
    scope, ignored_names = _ignored_scope(settings, proposal)
    conditionals = if_ops(model)
    if conditionals and not settings.fast_bias_correction:
        raise SegtuiError(
            f"Full bias correction is not available for this model: NNCF supports only fast "
            f"bias correction in models with If operations (this one has {len(conditionals)}).",
            "Turn fast bias correction back on.",
        )
    # Skipping NNCF's per-If passes over the calibration set (see bodies_fully_ignored)
    # needs the top-level graph's ops to be plain OpenVINO: If only, no Loop.
    skip_bodies = (
        skip_ignored_bodies
        and settings.method == "default"
        and bool(conditionals)
        and not any(op.get_type_name() in ("Loop", "TensorIterator") for op in model.get_ops())
        and bodies_fully_ignored(model, ignored_names, settings.ignore_types)
    )
    subset = len(calibration_paths)
    seen = 0
    stage = "Collecting calibration statistics"

    def on_item() -> None:
        nonlocal seen
        seen += 1
        if cancel is not None:
            cancel.raise_if_cancelled()
        if settings.method == "default":
            progress(min(0.95, 0.05 + 0.9 * seen / subset), f"{stage} {min(seen, subset)}/{subset}")
        elif seen % 10 == 0:
            progress(
                min(0.95, 0.05 + 0.9 * (1 - math.exp(-seen / (4 * subset)))),
                f"AccuracyAware: {seen} images processed",
            )

    if metric is not None:

        def on_validation(calls: int) -> None:
            if cancel is not None:
                cancel.raise_if_cancelled()
            done = min(0.95, 0.3 + 0.65 * (1 - math.exp(-calls / 30)))
            progress(done, f"AccuracyAware: validation {calls} (mask AP of candidate models)")

        metric.on_call = on_validation
    source = _CountingSource(calibration_paths, adapter, on_item)
    dataset = nncf.Dataset(source, source.transform)
    preset = (
        nncf.QuantizationPreset.PERFORMANCE
        if settings.preset == "performance"
        else nncf.QuantizationPreset.MIXED
    )
    # NNCF's in-graph statistics reduce each tensor inside the model; a Mask R-CNN's
    # mask head sees a tensor with as many rows as detections, empty on images with
    # none, and the in-graph reduction then collapses the ranges of the whole mask
    # head to [0, 8e-5] (mask AP 0.65 -> 0.16 on the sample). Statistics reduced in
    # Python skip the empty tensors.
    advanced = AdvancedQuantizationParameters(inplace_statistics=not has_dynamic_tensors(model))
    progress(0.02, "Preparing calibration")
    start = time.perf_counter()
    accuracy: dict[str, Any] | None = None
    if settings.method == "default":

        def run_default(parameters: Any) -> Any:
            quantize_fn: Callable[..., Any] = nncf.quantize
            target = model
            if skip_bodies:
                # What nncf.quantize does for an OpenVINO model without If operations: the
                # main graph alone, with the If kept whole (and in floating point).
                from nncf.openvino.graph.model_utils import remove_friendly_name_duplicates
                from nncf.openvino.quantization.quantize_model import native_quantize_impl

                quantize_fn = native_quantize_impl
                target = remove_friendly_name_duplicates(model)
            return quantize_fn(
                target,
                dataset,
                preset=preset,
                subset_size=subset,
                fast_bias_correction=settings.fast_bias_correction,
                ignored_scope=scope,
                advanced_parameters=parameters,
            )

        try:
            quantized = run_default(advanced)
        except nncf.errors.InternalError as exc:
            # Without the automatic scope, quantizers can land on geometry tensors that are
            # empty on every calibration image (an FPN level no RoI is assigned to); Python-side
            # statistics then have nothing, so fall back to NNCF's in-graph statistics.
            if advanced.inplace_statistics or "Statistics were not collected" not in str(exc):
                raise
            seen = 0
            progress(0.05, "Recollecting statistics in the graph")
            quantized = run_default(AdvancedQuantizationParameters(inplace_statistics=True))
    else:
        if metric is None:
            raise SegtuiError("AccuracyAware needs a validation metric.")
        validation = nncf.Dataset(metric.items)
        # Points of AP (absolute) and per cent (relative) are both hundredths of NNCF's units.
        drop = settings.max_drop / 100
        quantized = nncf.quantize_with_accuracy_control(
            model,
            dataset,
            validation,
            validation_fn=metric,
            max_drop=drop,
            drop_type=nncf.DropType.ABSOLUTE
            if settings.drop_type == "absolute"
            else nncf.DropType.RELATIVE,
            preset=preset,
            subset_size=subset,
            fast_bias_correction=settings.fast_bias_correction,
            ignored_scope=scope,
            advanced_quantization_parameters=advanced,
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(),
        )
        values = metric.full_set_values
        accuracy = {
            "validation_calls": metric.calls,
            "reference_mask_ap": values[0] if values else None,
            "final_mask_ap": values[-1] if values else None,
            "reported_drop_points": round((values[0] - values[-1]) * 100, 4)
            if len(values) > 1
            else None,
        }
    seconds = time.perf_counter() - start
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(0.96, "Saving the INT8 model")
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, out_xml, compress_to_fp16=True)
    return QuantizeOutcome(
        xml_path=out_xml,
        calibration_seconds=seconds,
        subset_size=subset,
        ignored=proposal,
        ignored_names=ignored_names,
        accuracy=accuracy,
        if_bodies_skipped=len(conditionals) if skip_bodies else 0,
    )
