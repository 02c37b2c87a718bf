"""INT8 post-training quantization with NNCF: one function per method.

`quantize_default` runs `nncf.quantize`, `quantize_accuracy_aware` runs
`nncf.quantize_with_accuracy_control`; both keep the geometry found by
`segtui.core.ignored_scope` in floating point and share the preparation, the
progress reports, the dropping of standalone quantizers that feed no INT8 compute
(`segtui.core.standalone_fq`) and the saving. NNCF's private API is used only through
`segtui.core.nncf_private`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import openvino as ov

from segtui.core import nncf_private
from segtui.core.datasets import load_image
from segtui.core.errors import SegtuiError
from segtui.core.evaluation import CocoJson, evaluate_coco, predictions_as_ground_truth
from segtui.core.formats import FormatAdapter
from segtui.core.ignored_scope import (
    IgnoredScopeProposal,
    bodies_fully_ignored,
    has_dynamic_tensors,
    has_loops,
    if_ops,
    propose_ignored_scope,
)
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.predictions import ImagePrediction
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.roi_rewrite import RoiRewriteJson, extractors, rewrite_roi_extractors
from segtui.core.standalone_fq import drop_standalone_quantizers
from segtui.core.standalone_fq_record import StandaloneQuantizersRecord
from segtui.core.types import DropType, Preset

#: (image name, path, COCO image id) of one validation image.
ValidationItem = tuple[str, Path, int]

CALIBRATION_STAGE = "Collecting calibration statistics"


class AccuracyAwareRecord(TypedDict):
    """What AccuracyAware measured: mask AP of the parent and of the returned model."""

    validation_calls: int
    reference_mask_ap: float | None
    final_mask_ap: float | None
    reported_drop_points: float | None


@dataclass(frozen=True)
class QuantizeOutcome:
    xml_path: Path
    calibration_seconds: float
    subset_size: int
    ignored: IgnoredScopeProposal | None
    ignored_names: list[str]
    accuracy: AccuracyAwareRecord | None = None
    #: If operations whose bodies held nothing to quantize, so NNCF's passes over the
    #: calibration set for them were skipped.
    if_bodies_skipped: int = 0
    #: The standalone quantizers found and dropped (None when the setting kept them all).
    standalone: StandaloneQuantizersRecord | None = None
    #: The ROI extractors pooled by ROIAlign instead (core.roi_rewrite).
    roi_rewrites: tuple[RoiRewriteJson, ...] = ()


# -- the validation metric of AccuracyAware -------------------------------------------


class ReferenceMetric:
    """Mask AP of a candidate model on validation images, against annotations or a reference model.

    NNCF calls it with a compiled model and an iterable of validation items; it
    first calls it on a one-item dataset, which may hold no predictions at all.
    """

    def __init__(
        self,
        adapter: FormatAdapter,
        items: list[ValidationItem],
        ground_truth: CocoJson,
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
        self, compiled: ov.CompiledModel, items: Iterable[ValidationItem]
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

    def __call__(self, compiled: ov.CompiledModel, items: Iterable[ValidationItem]) -> float:
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

    def record(self) -> AccuracyAwareRecord:
        """What the calls measured on the whole validation set."""
        values = self.full_set_values
        return {
            "validation_calls": self.calls,
            "reference_mask_ap": values[0] if values else None,
            "final_mask_ap": values[-1] if values else None,
            "reported_drop_points": round((values[0] - values[-1]) * 100, 4)
            if len(values) > 1
            else None,
        }


def parent_reference(
    model: ov.Model,
    adapter: FormatAdapter,
    items: list[ValidationItem],
    num_classes: int,
    score_threshold: float = 0.5,
) -> CocoJson:
    """Ground truth made of the parent model's own (f32) predictions, for a dataset without annotations."""
    from segtui.core.inference import compile_model

    compiled = compile_model(model, "CPU", "f32", hint="LATENCY")
    metric = ReferenceMetric(adapter, items, {}, None)
    predictions = metric.predict(compiled, items)
    ids = {name: image_id for name, _, image_id in items}
    return predictions_as_ground_truth(predictions, ids, num_classes, score_threshold)


# -- what both methods share ----------------------------------------------------------


class _CalibrationProgress:
    """Counts the calibration images NNCF reads and reports progress (and cancellation)."""

    def __init__(
        self,
        subset: int,
        progress: ProgressCallback,
        cancel: CancelToken | None,
        *,
        accuracy_aware: bool,
    ) -> None:
        self.subset = subset
        self.progress = progress
        self.cancel = cancel
        self.accuracy_aware = accuracy_aware
        self.seen = 0

    def __call__(self) -> None:
        self.seen += 1
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        seen, subset = self.seen, self.subset
        if not self.accuracy_aware:
            self.progress(
                min(0.95, 0.05 + 0.9 * seen / subset),
                f"{CALIBRATION_STAGE} {min(seen, subset)}/{subset}",
            )
        elif seen % 10 == 0:
            # AccuracyAware reads the images an unknown number of times: an asymptote.
            self.progress(
                min(0.95, 0.05 + 0.9 * (1 - math.exp(-seen / (4 * subset)))),
                f"AccuracyAware: {seen} images processed",
            )


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


@dataclass(frozen=True)
class _Plan:
    """What both methods pass to NNCF besides the data."""

    proposal: IgnoredScopeProposal | None
    ignored_names: list[str]
    scope: Any  # nncf.IgnoredScope, or None when nothing is ignored
    preset: Any  # nncf.QuantizationPreset
    if_count: int
    #: NNCF's in-graph statistics (see _plan).
    inplace_statistics: bool


def _plan(model: ov.Model, settings: OptimizeSettings, keep: Sequence[str] = ()) -> _Plan:
    """The ignored scope, the preset and the statistics mode; refuses what NNCF cannot do.

    `keep`: operations kept in float whatever the settings (those the ROI rewrite made).
    """
    import nncf

    proposal = propose_ignored_scope(model) if settings.auto_ignore else None
    names = list(dict.fromkeys([*settings.ignore_names, *keep]))
    if proposal is not None:
        names = list(dict.fromkeys([*proposal.names, *names]))
    scope = None
    if names or settings.ignore_types:
        scope = nncf.IgnoredScope(names=names, types=list(settings.ignore_types), validate=False)
    conditionals = len(if_ops(model))
    if conditionals and not settings.fast_bias_correction:
        raise SegtuiError(
            f"Full bias correction is not available for this model: NNCF supports only fast "
            f"bias correction in models with If operations (this one has {conditionals}).",
            "Turn fast bias correction back on.",
        )
    presets = {
        Preset.PERFORMANCE: nncf.QuantizationPreset.PERFORMANCE,
        Preset.MIXED: nncf.QuantizationPreset.MIXED,
    }
    # NNCF's in-graph statistics reduce each tensor inside the model; a Mask R-CNN's
    # mask head sees a tensor with as many rows as detections, empty on images with
    # none, and the in-graph reduction then collapses the ranges of the whole mask
    # head to [0, 8e-5] (mask AP 0.65 -> 0.16 on the sample). Statistics reduced in
    # Python skip the empty tensors.
    return _Plan(
        proposal=proposal,
        ignored_names=names,
        scope=scope,
        preset=presets[settings.preset],
        if_count=conditionals,
        inplace_statistics=not has_dynamic_tensors(model),
    )


@dataclass(frozen=True)
class _Rewritten:
    """The model NNCF sees, the extractors pooled by ROIAlign, and the operations that made."""

    model: ov.Model
    rewrites: tuple[RoiRewriteJson, ...] = ()
    #: Kept in float whatever the scope settings: the extractor they stand for is not
    #: quantized by NNCF, and quantizing them would move the ROIs (mask AP 0.79 -> 0.42 on
    #: the sample without the automatic scope).
    created: tuple[str, ...] = ()


def _rewrite_rois(model: ov.Model, settings: OptimizeSettings) -> _Rewritten:
    """A copy of `model` that pools with ROIAlign (core.roi_rewrite), or `model` itself."""
    if not settings.rewrite_roi_extractors or not extractors(model):
        return _Rewritten(model)
    copy = model.clone()
    before = {op.get_friendly_name() for op in copy.get_ops()}
    done = rewrite_roi_extractors(copy)
    created = tuple(
        op.get_friendly_name()
        for op in copy.get_ordered_ops()
        if op.get_friendly_name() not in before and op.get_type_name() != "Constant"
    )
    return _Rewritten(copy, tuple(r.to_json() for r in done), created)


def _dataset(paths: list[Path], adapter: FormatAdapter, on_item: Callable[[], None]) -> Any:
    import nncf

    source = _CountingSource(paths, adapter, on_item)
    return nncf.Dataset(source, source.transform)


def _drop_standalone(
    quantized: ov.Model,
    settings: OptimizeSettings,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> StandaloneQuantizersRecord | None:
    """Bypass the standalone quantizers that feed no INT8 compute (core.standalone_fq)."""
    if not settings.drop_standalone_quantizers:
        return None
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(0.955, "Looking for standalone quantizers")
    return drop_standalone_quantizers(quantized)


def _save(
    quantized: ov.Model, out_xml: Path, progress: ProgressCallback, cancel: CancelToken | None
) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(0.96, "Saving the INT8 model")
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, out_xml, compress_to_fp16=True)


# -- the Default method ---------------------------------------------------------------


def _skips_bodies(model: ov.Model, plan: _Plan, settings: OptimizeSettings) -> bool:
    """Whether NNCF's per-If passes over the calibration set can be skipped.

    They can when every op of every If body is ignored (see bodies_fully_ignored) and
    the top-level graph is plain OpenVINO: If only, no Loop.
    """
    return (
        plan.if_count > 0
        and not has_loops(model)
        and bodies_fully_ignored(model, plan.ignored_names, settings.ignore_types)
    )


def _run_default(
    model: ov.Model,
    dataset: Any,
    plan: _Plan,
    settings: OptimizeSettings,
    *,
    subset: int,
    main_graph_only: bool,
    inplace_statistics: bool,
) -> ov.Model:
    import nncf

    quantize_fn: Callable[..., ov.Model] = (
        nncf_private.quantize_main_graph if main_graph_only else nncf.quantize
    )
    return quantize_fn(
        model,
        dataset,
        preset=plan.preset,
        subset_size=subset,
        fast_bias_correction=settings.fast_bias_correction,
        ignored_scope=plan.scope,
        advanced_parameters=nncf.AdvancedQuantizationParameters(
            inplace_statistics=inplace_statistics
        ),
    )


def quantize_default(
    model: ov.Model,
    adapter: FormatAdapter,
    calibration_paths: list[Path],
    settings: OptimizeSettings,
    out_xml: Path,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    skip_ignored_bodies: bool = True,
) -> QuantizeOutcome:
    """The Default method (nncf.quantize): save the INT8 IR at `out_xml` (weights in FP16).

    `skip_ignored_bodies=False` keeps NNCF's own handling of If bodies even when
    they hold nothing to quantize (for measurements).
    """
    import nncf

    rewritten = _rewrite_rois(model, settings)
    model, rewrites = rewritten.model, rewritten.rewrites
    plan = _plan(model, settings, rewritten.created)
    skip_bodies = skip_ignored_bodies and _skips_bodies(model, plan, settings)
    subset = len(calibration_paths)
    counter = _CalibrationProgress(subset, progress, cancel, accuracy_aware=False)
    dataset = _dataset(calibration_paths, adapter, counter)
    run = partial(
        _run_default, model, dataset, plan, settings, subset=subset, main_graph_only=skip_bodies
    )
    progress(0.02, "Preparing calibration")
    start = time.perf_counter()
    try:
        quantized = run(inplace_statistics=plan.inplace_statistics)
    except nncf.InternalError as exc:
        # Without the automatic scope, quantizers can land on geometry tensors that are
        # empty on every calibration image (an FPN level no RoI is assigned to); Python-side
        # statistics then have nothing, so fall back to NNCF's in-graph statistics.
        if plan.inplace_statistics or not nncf_private.is_missing_statistics(exc):
            raise
        counter.seen = 0
        progress(0.05, "Recollecting statistics in the graph")
        quantized = run(inplace_statistics=True)
    seconds = time.perf_counter() - start
    standalone = _drop_standalone(quantized, settings, progress, cancel)
    _save(quantized, out_xml, progress, cancel)
    return QuantizeOutcome(
        xml_path=out_xml,
        calibration_seconds=seconds,
        subset_size=subset,
        ignored=plan.proposal,
        ignored_names=plan.ignored_names,
        if_bodies_skipped=plan.if_count if skip_bodies else 0,
        standalone=standalone,
        roi_rewrites=rewrites,
    )


# -- the AccuracyAware method ---------------------------------------------------------


def _validation_progress(
    progress: ProgressCallback, cancel: CancelToken | None, calls: int
) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()
    done = min(0.95, 0.3 + 0.65 * (1 - math.exp(-calls / 30)))
    progress(done, f"AccuracyAware: validation {calls} (mask AP of candidate models)")


def quantize_accuracy_aware(
    model: ov.Model,
    adapter: FormatAdapter,
    calibration_paths: list[Path],
    settings: OptimizeSettings,
    out_xml: Path,
    metric: ReferenceMetric,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> QuantizeOutcome:
    """The AccuracyAware method (nncf.quantize_with_accuracy_control), validated by `metric`."""
    import nncf

    rewritten = _rewrite_rois(model, settings)
    model, rewrites = rewritten.model, rewritten.rewrites
    plan = _plan(model, settings, rewritten.created)
    subset = len(calibration_paths)
    counter = _CalibrationProgress(subset, progress, cancel, accuracy_aware=True)
    metric.on_call = lambda calls: _validation_progress(progress, cancel, calls)
    dataset = _dataset(calibration_paths, adapter, counter)
    drop_types = {
        DropType.ABSOLUTE: nncf.DropType.ABSOLUTE,
        DropType.RELATIVE: nncf.DropType.RELATIVE,
    }
    progress(0.02, "Preparing calibration")
    start = time.perf_counter()
    quantized = nncf.quantize_with_accuracy_control(
        model,
        dataset,
        nncf.Dataset(metric.items),
        validation_fn=metric,
        # Points of AP (absolute) and per cent (relative) are both hundredths of NNCF's units.
        max_drop=settings.max_drop / 100,
        drop_type=drop_types[settings.drop_type],
        preset=plan.preset,
        subset_size=subset,
        fast_bias_correction=settings.fast_bias_correction,
        ignored_scope=plan.scope,
        advanced_quantization_parameters=nncf.AdvancedQuantizationParameters(
            inplace_statistics=plan.inplace_statistics
        ),
        advanced_accuracy_restorer_parameters=nncf.AdvancedAccuracyRestorerParameters(),
    )
    seconds = time.perf_counter() - start
    standalone = _drop_standalone(quantized, settings, progress, cancel)
    _save(quantized, out_xml, progress, cancel)
    return QuantizeOutcome(
        xml_path=out_xml,
        calibration_seconds=seconds,
        subset_size=subset,
        ignored=plan.proposal,
        ignored_names=plan.ignored_names,
        accuracy=metric.record(),
        standalone=standalone,
        roi_rewrites=rewrites,
    )


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
    """Quantize `model` with the settings' method and save the INT8 IR at `out_xml`."""
    if not settings.accuracy_aware:
        return quantize_default(
            model,
            adapter,
            calibration_paths,
            settings,
            out_xml,
            progress=progress,
            cancel=cancel,
            skip_ignored_bodies=skip_ignored_bodies,
        )
    if metric is None:
        raise SegtuiError("AccuracyAware needs a validation metric.")
    return quantize_accuracy_aware(
        model,
        adapter,
        calibration_paths,
        settings,
        out_xml,
        metric,
        progress=progress,
        cancel=cancel,
    )


__all__ = [
    "CALIBRATION_STAGE",
    "AccuracyAwareRecord",
    "QuantizeOutcome",
    "ReferenceMetric",
    "ValidationItem",
    "parent_reference",
    "quantize",
    "quantize_accuracy_aware",
    "quantize_default",
]
