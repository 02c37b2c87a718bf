"""The passes of a sensitivity analysis and the result they make (see core.sensitivity)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import openvino as ov

from segtui.core.errors import SegtuiError
from segtui.core.evaluation import category_mapping, load_annotations
from segtui.core.models import LoadedModel, load_registered
from segtui.core.optimize import validation_items
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.quantize import ReferenceMetric, parent_reference
from segtui.core.quantizer_groups import QuantizerGroup, body_quantizers, bypassed, quantizer_groups
from segtui.core.sensitivity import (
    FREE_SHARE,
    METRIC_ANNOTATIONS,
    METRIC_LABELS,
    METRIC_PARENT,
    MIN_GAIN_POINTS,
    PROFILE_IMAGES,
    RESULT_VERSION,
    SensitivityResult,
    SensitivityRow,
    SensitivitySettings,
    check_analysable,
)
from segtui.core.sensitivity_passes import (
    LayerProfile,
    MetricRunner,
    QuantizerStats,
    profile_layers,
    refitted,
    score_quantizers,
)
from segtui.core.settings_versions import settings_json
from segtui.core.workspace import ProjectRecord, Workspace

# -- the passes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Models:
    child: ProjectRecord
    parent: ProjectRecord
    int8: LoadedModel
    float: LoadedModel


#: The per-layer profiles of the parent (float) and of the INT8 model.
_Profiles = tuple[LayerProfile, LayerProfile]


@dataclass(frozen=True)
class _GroupScore:
    error_db: float | None
    clipped: float
    no_data: bool
    collapsed: bool


def _group_score(group: QuantizerGroup, stats: Mapping[str, QuantizerStats]) -> _GroupScore:
    seen = [stats[name] for name in group.quantizers if name in stats]
    errors = [s.error_db for s in seen if s.error_db is not None]
    return _GroupScore(
        error_db=min(errors) if errors else None,
        clipped=max((s.clipped for s in seen), default=0.0),
        no_data=any(s.values == 0 for s in seen),
        collapsed=any(s.collapsed for s in seen),
    )


def _candidates(
    groups: Sequence[QuantizerGroup], scores: Mapping[int, _GroupScore], top: int
) -> list[QuantizerGroup]:
    """The `top` groups with values whose error is worst (lowest SQNR first)."""
    scored = [g for g in groups if scores[g.id].error_db is not None]
    scored.sort(key=lambda g: (scores[g.id].error_db, g.id))
    return scored[:top]


def _fq_names(groups: Collection[QuantizerGroup]) -> list[str]:
    return [name for group in groups for name in group.quantizers]


def _metric_runner(
    ws: Workspace, models: _Models, count: int, cancel: CancelToken | None
) -> tuple[MetricRunner, str]:
    """The metric on `count` images: against annotations, else the parent's predictions."""
    dataset = ws.dataset(models.child.dataset_id)
    items = validation_items(ws, models.child.id, count)
    parent_model = ws.model(models.parent.model_id)
    if dataset.annotated and dataset.annotations is not None:
        truth = load_annotations(dataset.annotations)
        categories = category_mapping(parent_model.class_names, dataset.analysis)
        return MetricRunner(
            ReferenceMetric(models.int8.adapter, items, truth, categories), cancel
        ), METRIC_ANNOTATIONS
    truth = parent_reference(
        models.float.model, models.float.adapter, items, len(parent_model.class_names)
    )
    return MetricRunner(
        ReferenceMetric(models.int8.adapter, items, truth, None), cancel
    ), METRIC_PARENT


@dataclass
class _Measured:
    parent: float = 0.0
    int8: float = 0.0
    baseline: float = 0.0
    candidates: float | None = None
    chosen: float | None = None
    changes: dict[int, float] | None = None


class _Stepper:
    """Progress over the metric evaluations, between `start` and `end`."""

    def __init__(self, progress: ProgressCallback, planned: int, start: float, end: float) -> None:
        self.progress, self.planned, self.start, self.end = progress, max(planned, 1), start, end
        self.done = 0

    @property
    def fraction(self) -> float:
        return self.start + (self.end - self.start) * min(self.done / self.planned, 1.0)

    def __call__(self, stage: str) -> None:
        self.progress(self.fraction, stage)
        self.done += 1


def _leave_one_in(
    runner: MetricRunner,
    baseline: ov.Model,
    candidates: Sequence[QuantizerGroup],
    step: Callable[[str], None],
) -> tuple[float, dict[int, float]]:
    """The metric with every candidate in float, and each candidate's points lost when it
    alone is quantized back."""
    step(f"Measuring all {len(candidates)} candidate groups in float")
    everything = runner.measure(bypassed(baseline, _fq_names(candidates)))
    changes: dict[int, float] = {}
    for index, group in enumerate(candidates):
        step(f"Measuring group {group.id} ({index + 1}/{len(candidates)})")
        others = [g for g in candidates if g.id != group.id]
        value = runner.measure(bypassed(baseline, _fq_names(others)))
        changes[group.id] = round((everything - value) * 100, 3)
    return everything, changes


def _is_free(cost_ms: float | None, profiles: _Profiles | None) -> bool:
    """Whether keeping a group in float costs (almost) nothing: at most FREE_SHARE of the
    INT8 model's per-image time."""
    if cost_ms is None or profiles is None:
        return False
    return cost_ms <= FREE_SHARE * profiles[1].total_ms


def _choose(
    groups: Sequence[QuantizerGroup],
    scores: Mapping[int, _GroupScore],
    changes: Mapping[int, float],
    profiles: _Profiles | None,
    keep: int,
) -> list[tuple[int, str]]:
    """The recommended groups with why, in order (see the module doc), at most `keep`.

    A gain counts when it is above the noise of the images measured (the largest loss seen
    the other way, at least MIN_GAIN_POINTS), or when it is at least MIN_GAIN_POINTS and
    keeping the group in float costs nothing.
    """
    chosen: dict[int, str] = {}
    if any(s.collapsed for s in scores.values()):
        for group in groups:
            if scores[group.id].no_data:
                chosen.setdefault(group.id, "no data")
    noise = max([MIN_GAIN_POINTS, *(-c for c in changes.values())])
    by_id = {g.id: g for g in groups}
    for gid in sorted(changes, key=lambda g: (-changes[g], g)):
        gain = changes[gid]
        cost = _cost(by_id[gid], profiles)[2]
        if gain >= noise or (gain >= MIN_GAIN_POINTS and _is_free(cost, profiles)):
            chosen.setdefault(gid, "metric")
    return list(chosen.items())[:keep]


def _measure(
    runner: MetricRunner,
    models: _Models,
    stats: Mapping[str, QuantizerStats],
    candidates: Sequence[QuantizerGroup],
    step: _Stepper,
) -> tuple[_Measured, ov.Model, int]:
    """The metric of the parent, the INT8 model, its refitted baseline and the candidates."""
    measured = _Measured()
    step("Measuring the parent model")
    measured.parent = runner.measure(models.float.model)
    step("Measuring the INT8 model")
    measured.int8 = runner.measure(models.int8.model)
    baseline, count = refitted(models.int8.model, stats)
    measured.baseline = measured.int8
    if count:
        step(f"Measuring the INT8 model with {count} collapsed ranges refitted")
        measured.baseline = runner.measure(baseline)
    if candidates:
        measured.candidates, measured.changes = _leave_one_in(runner, baseline, candidates, step)
    return measured, baseline, count


# -- assembling the result ----------------------------------------------------------------


def _cost(
    group: QuantizerGroup, profiles: _Profiles | None
) -> tuple[float | None, float | None, float | None]:
    """ms of the group's fed layers in float and in INT8, and the difference (None: not found)."""
    if profiles is None:
        return None, None, None
    float_ms = profiles[0].group_ms(group.fed_layers)
    int8_ms = profiles[1].group_ms(group.fed_layers)
    if float_ms is None or int8_ms is None:
        return float_ms, int8_ms, None
    return float_ms, int8_ms, round(float_ms - int8_ms, 4)


def _rows(
    groups: Sequence[QuantizerGroup],
    scores: Mapping[int, _GroupScore],
    changes: Mapping[int, float],
    chosen: Sequence[tuple[int, str]],
    profiles: _Profiles | None,
) -> list[SensitivityRow]:
    """Every group as a row, in rank order: chosen, then measured by gain, then by error."""
    why = dict(chosen)
    order = {gid: i for i, (gid, _) in enumerate(chosen)}

    def key(group: QuantizerGroup) -> tuple[int, float, int]:
        if group.id in order:
            return (0, order[group.id], group.id)
        if group.id in changes:
            return (1, -changes[group.id], group.id)
        error = scores[group.id].error_db
        return (2 if error is not None else 3, error or 0.0, group.id)

    rows: list[SensitivityRow] = []
    for rank, group in enumerate(sorted(groups, key=key), start=1):
        score = scores[group.id]
        float_ms, int8_ms, cost_ms = _cost(group, profiles)
        rows.append(
            {
                "id": group.id,
                "rank": rank,
                "quantizers": list(group.quantizers),
                "fed_layers": list(group.fed_layers),
                "fed_types": list(group.fed_types),
                "op_types": group.op_types,
                "compute_layers": group.compute_layers,
                "error_db": score.error_db,
                "clipped": score.clipped,
                "no_data": score.no_data,
                "range_collapsed": score.collapsed,
                "measured": group.id in changes,
                "metric_change": changes.get(group.id),
                "float_ms": float_ms,
                "int8_ms": int8_ms,
                "cost_ms": cost_ms,
                "chosen": group.id in why,
                "reason": why.get(group.id, ""),
            }
        )
    return rows


def _load(ws: Workspace, project_id: int) -> _Models:
    parent = check_analysable(ws, project_id)
    child = ws.project(project_id)
    int8 = load_registered(ws.model(child.model_id))
    return _Models(child, parent, int8, load_registered(ws.model(parent.model_id)))


def _score(
    ws: Workspace,
    models: _Models,
    settings: SensitivitySettings,
    progress: ProgressCallback,
) -> tuple[dict[str, QuantizerStats], list[Path]]:
    """The error pass on the score images (and those images)."""
    items = validation_items(ws, models.child.id, settings.score_images)
    paths = [path for _, path, _ in items]
    count = len(paths)
    stats = score_quantizers(
        models.int8.model,
        models.float.model,
        models.float.adapter,
        paths,
        on_image=lambda i: progress(0.02 + 0.1 * i / count, f"Scoring quantizers {i}/{count}"),
    )
    return stats, paths


@dataclass(frozen=True)
class _Found:
    """Everything the passes found, for the result."""

    models: _Models
    groups: list[QuantizerGroup]
    stats: dict[str, QuantizerStats]
    scores: dict[int, _GroupScore]
    metric: str
    images: int
    measured: _Measured
    refitted: int
    profiles: _Profiles
    chosen: list[tuple[int, str]]
    evaluations: int


def _result(
    found: _Found, settings: SensitivitySettings, ws: Workspace, seconds: dict[str, float]
) -> SensitivityResult:
    models, measured = found.models, found.measured
    changes = measured.changes or {}
    return {
        "version": RESULT_VERSION,
        "project_id": models.child.id,
        "parent_project_id": models.parent.id,
        "model_id": models.child.model_id,
        "parent_model_id": models.parent.model_id,
        "metric": found.metric,
        "metric_label": METRIC_LABELS[found.metric],
        "settings": settings.to_json(),
        "images": found.images,
        "score_images": min(settings.score_images, len(ws.dataset_images(models.child.dataset_id))),
        "parent_metric": round(measured.parent, 6),
        "int8_metric": round(measured.int8, 6),
        "baseline_metric": round(measured.baseline, 6),
        "candidates_metric": _rounded(measured.candidates),
        "chosen_metric": _rounded(measured.chosen),
        "refitted": found.refitted,
        "quantizers": len(found.stats),
        "body_quantizers": body_quantizers(models.int8.model),
        "groups": _rows(found.groups, found.scores, changes, found.chosen, found.profiles),
        "chosen": [gid for gid, _ in found.chosen],
        "evaluations": found.evaluations,
        "seconds": seconds,
        "profile": {
            "float_ms": found.profiles[0].total_ms,
            "int8_ms": found.profiles[1].total_ms,
        },
        "accuracy_settings": settings_json(ws.model(models.child.model_id), models.int8.model),
    }


def run_analysis(
    ws: Workspace,
    project_id: int,
    settings: SensitivitySettings,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> SensitivityResult:
    """Rank the quantizer groups of an INT8 project by what they cost its accuracy."""
    settings.validate()
    clock = [time.perf_counter()]
    progress(0.01, "Loading the INT8 model and its parent")
    models = _load(ws, project_id)
    groups = quantizer_groups(models.int8.model)
    if not groups:
        raise SegtuiError(
            f"The model of project {models.child.name!r} has no activation quantizers to analyse.",
            "Analyse a project optimized to INT8 by segtui (or NNCF).",
        )
    stats, paths = _score(ws, models, settings, progress)
    clock.append(time.perf_counter())
    scores = {g.id: _group_score(g, stats) for g in groups}
    candidates = _candidates(groups, scores, settings.top)
    runner, metric = _metric_runner(ws, models, settings.images, cancel)
    step = _Stepper(progress, len(candidates) + 5, 0.12, 0.97)
    measured, baseline, count = _measure(runner, models, stats, candidates, step)
    clock.append(time.perf_counter())
    progress(step.fraction, "Profiling layers (float and INT8)")
    profiles = (
        profile_layers(models.float.model, models.float.adapter, paths[:PROFILE_IMAGES]),
        profile_layers(baseline, models.int8.adapter, paths[:PROFILE_IMAGES]),
    )
    clock.append(time.perf_counter())
    chosen = _choose(groups, scores, measured.changes or {}, profiles, settings.keep)
    if chosen:
        step(f"Measuring the {len(chosen)} recommended groups in float together")
        keep = [g for g in groups if g.id in dict(chosen)]
        measured.chosen = runner.measure(bypassed(baseline, _fq_names(keep)))
    clock.append(time.perf_counter())
    progress(0.99, "Ranking")
    seconds = {
        "score": clock[1] - clock[0],
        "metric": clock[2] - clock[1] + clock[4] - clock[3],
        "profile": clock[3] - clock[2],
        "total": clock[4] - clock[0],
    }
    found = _Found(
        models,
        groups,
        stats,
        scores,
        metric,
        len(runner.items),
        measured,
        count,
        profiles,
        chosen,
        runner.evaluations,
    )
    return _result(found, settings, ws, {k: round(v, 2) for k, v in seconds.items()})


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


__all__ = ["run_analysis"]
