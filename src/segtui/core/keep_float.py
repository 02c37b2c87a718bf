"""Re-optimizing from a sensitivity analysis: the analysed child's recipe, with groups kept in float.

The new child is an ordinary optimize job on the analysed child's parent: the same method,
preset, calibration subset, bias correction, automatic scope and user-ignored layers the
analysed model was made with, plus the fed layers of the chosen groups in the ignored scope.
Its optimization record links back to the analysis (`keep_float_from`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypedDict

from segtui.core.errors import NotFoundError, SegtuiError
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.records import JobRecord, ProjectRecord
from segtui.core.sensitivity import SensitivityResult, ignored_scope_names, stored_sensitivity
from segtui.core.settings import OPTIMIZE
from segtui.core.types import JobKind
from segtui.core.workspace import Workspace

#: The optimize job's parameter that carries the link.
LINK_PARAM = "keep_float_from"


class KeepFloatLink(TypedDict):
    """Where a re-optimized child comes from: the analysis, and what it kept in float."""

    #: None once imported without the analysed child (the ids named another workspace's rows).
    result_id: int | None
    project_id: int | None
    groups: list[int]
    names: list[str]


@dataclass(frozen=True)
class KeepFloatPlan:
    """An optimize job to submit: on which project, with which settings, linked to what."""

    parent_project_id: int
    settings: OptimizeSettings
    link: KeepFloatLink

    def params(self) -> dict[str, object]:
        """The optimize job's params: the settings and the link."""
        return {**self.settings.to_json(), LINK_PARAM: dict(self.link)}


def recipe(ws: Workspace, project_id: int) -> OptimizeSettings:
    """The settings the project's INT8 model was optimized with (defaults for what it lacks)."""
    record = ws.model(ws.project(project_id).model_id).optimization
    if record is None:
        return OptimizeSettings()
    values: dict[str, object] = {
        "method": record.get("method"),
        "preset": record.get("preset"),
        "subset_percent": record.get("subset_percent"),
        "fast_bias_correction": record.get("fast_bias_correction"),
        "auto_ignore": record.get("auto_ignored_scope"),
        "ignore_names": record.get("user_ignore_names"),
        "ignore_types": record.get("user_ignore_types"),
        "drop_standalone_quantizers": record.get("drop_standalone_quantizers"),
        "rewrite_roi_extractors": record.get("rewrite_roi_extractors"),
        "max_drop": record.get("max_drop"),
        "drop_type": record.get("drop_type"),
        "validation_images": record.get("validation_images"),
    }
    return OptimizeSettings.from_values({k: v for k, v in values.items() if v is not None})


def _selected(
    result: SensitivityResult, group_ids: Sequence[int] | None, top: int | None
) -> list[int]:
    """The groups to keep in float: those given, else the first `top` recommended ones."""
    known = {row["id"] for row in result["groups"]}
    if group_ids is not None:
        unknown = [g for g in group_ids if g not in known]
        if unknown:
            raise SegtuiError(
                f"The analysis has no group {unknown[0]} (its groups are 0–{max(known)}).",
                "Pick groups from the analysis table (`segtui sensitivity PROJECT --stored`).",
            )
        chosen = list(dict.fromkeys(group_ids))
    else:
        recommended = result["chosen"]
        if top is not None and not 1 <= top <= len(known):
            raise SegtuiError(
                f"--top {top} is out of range: the analysis has {len(known)} groups.",
                f"Give a number from 1 to {len(known)}.",
            )
        if top is None:
            chosen = list(recommended)
        else:
            # Past the recommended set, the rows continue in rank order.
            ranked = [row["id"] for row in result["groups"]]
            chosen = list(dict.fromkeys([*recommended, *ranked]))[:top]
    if not chosen:
        raise SegtuiError(
            "There is nothing to keep in float: the analysis recommends no group.",
            "Choose groups yourself (--groups, or select rows on the Sensitivity screen).",
        )
    return chosen


def keep_float_plan(
    ws: Workspace,
    result_id: int,
    *,
    group_ids: Sequence[int] | None = None,
    top: int | None = None,
    overrides: Mapping[str, object] | None = None,
) -> KeepFloatPlan:
    """The re-optimization of an analysis' child with the chosen groups kept in float.

    `group_ids`: the groups selected; else the first `top` of the recommended order (all
    recommended when None). `overrides`: optimize settings by name that replace the recipe's.
    """
    try:
        result = stored_sensitivity(ws, result_id)
    except NotFoundError:
        raise SegtuiError(
            f"There is no sensitivity analysis with result id {result_id}.",
            "Run `segtui sensitivity PROJECT` on the optimized project first; its result id "
            "is printed at the end.",
        ) from None
    child_id = result["project_id"]
    try:
        child = ws.project(child_id)
        parent = ws.project(result["parent_project_id"])
    except NotFoundError:
        raise SegtuiError(
            f"The project analysed by result {result_id} (or its parent) was deleted.",
            "Optimize the parent project again and analyse the new child.",
        ) from None
    groups = _selected(result, group_ids, top)
    names = ignored_scope_names(result, groups)
    base = recipe(ws, child.id)
    if overrides:
        base = OptimizeSettings.from_values({**base.values(), **overrides})
    ignored = tuple(dict.fromkeys([*base.ignore_names, *names, *_dropped_readers(ws, child)]))
    settings = replace(base, ignore_names=ignored)
    OPTIMIZE.validate(settings.values())
    link: KeepFloatLink = {
        "result_id": result_id,
        "project_id": child.id,
        "groups": groups,
        "names": names,
    }
    return KeepFloatPlan(parent.id, settings, link)


def _dropped_readers(ws: Workspace, child: ProjectRecord) -> list[str]:
    """The operations that read a quantizer the analysed child dropped (core.standalone_fq).

    The analysis measured the child without those quantizers; NNCF would put them back in
    the re-optimization, where the drop may no longer find them standalone (other groups
    are float now), so their readers are kept in float as they were (measured on the
    torchvision-structured sample, two groups kept: mask AP 0.2164 without this, 0.7695 with
    it, parent 0.7893).
    """
    record = ws.model(child.model_id).optimization
    found = record.get("standalone_quantizers") if record else None
    dropped = found.get("dropped", []) if found else []
    return [name for item in dropped for name in item.get("consumers", [])]


def submit_keep_float(ws: Workspace, plan: KeepFloatPlan) -> JobRecord:
    """Start the re-optimization as an optimize job on the parent (checked first)."""
    from segtui.core import jobs
    from segtui.core.preflight import check_job

    params = plan.params()
    check_job(ws, JobKind.OPTIMIZE, plan.parent_project_id, params)
    return jobs.submit(ws, JobKind.OPTIMIZE, plan.parent_project_id, params)


__all__ = [
    "LINK_PARAM",
    "KeepFloatLink",
    "KeepFloatPlan",
    "keep_float_plan",
    "recipe",
    "submit_keep_float",
]
