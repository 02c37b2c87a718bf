"""Issue #13's claim on the sample Mask R-CNN with torchvision's tail (shapes-torchvision: the
OMZ-structured shapes model keeps its masks without any scope): without the automatic scope its INT8 masks
collapse, the sensitivity analysis finds the culprits from data alone, and the
re-optimization from its recommended groups (at most 10 kept in float) is within 1.0 point
of the parent's mask AP with at least 90 % of the Convolution/MatMul layers in INT8.

Slow, like test_sample_optimization: two calibrations on a quarter of the sample (50
images, about a minute each on 2 cores), the analysis (about 30 evaluations on 24 images,
one to two minutes) and two COCO evaluations of the 200 images.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from segtui.core.accuracy import evaluate_project
from segtui.core.inference import compile_model
from segtui.core.keep_float import keep_float_plan
from segtui.core.models import load_registered
from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.runtime_graph import summarize_runtime
from segtui.core.sample import SampleProjects, register_sample, sample_available
from segtui.core.sensitivity import SensitivitySettings, analyze_project
from segtui.core.types import ResultKind
from segtui.core.workspace import Workspace

pytestmark = pytest.mark.skipif(
    not sample_available("shapes-torchvision"), reason="sample project files are missing"
)

#: A quarter of the 200 images calibrates both models (the claim does not need all).
SUBSET = 25.0


@pytest.fixture(scope="module")
def sample_ws(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Workspace, SampleProjects]]:
    ws = Workspace(tmp_path_factory.mktemp("sensitivity_sample"))
    yield ws, register_sample(ws, "shapes-torchvision")
    ws.close()


def test_the_analysis_restores_the_masks_without_the_automatic_scope(
    sample_ws: tuple[Workspace, SampleProjects], tmp_path: Path
) -> None:
    ws, projects = sample_ws
    parent = projects.annotated
    # #13's claim as it was made: no scope and no dropping of standalone quantizers (the drop,
    # on by default since #14, already removes some of the geometry's quantizers; the
    # analysis then keeps 2 groups and the re-optimization lands at 0.7695).
    no_scope = OptimizeSettings(
        auto_ignore=False, subset_percent=SUBSET, drop_standalone_quantizers=False
    )
    broken = optimize_project(ws, parent.id, no_scope, tmp_path / "a")
    started = time.perf_counter()
    analysis = analyze_project(ws, broken.id, SensitivitySettings())
    seconds = time.perf_counter() - started
    result_id = ws.add_result(project_id=broken.id, kind=ResultKind.SENSITIVITY, data=analysis).id
    chosen = analysis["chosen"]
    figures = {
        key: analysis[key]
        for key in (
            "parent_metric",
            "int8_metric",
            "baseline_metric",
            "chosen_metric",
            "evaluations",
        )
    }
    # The collapse is found from the data: the INT8 model detects nothing on the images.
    assert analysis["int8_metric"] < 0.05, figures
    assert 1 <= len(chosen) <= 10, chosen
    assert analysis["chosen_metric"] is not None
    assert analysis["chosen_metric"] >= analysis["parent_metric"] - 0.02, figures

    plan = keep_float_plan(ws, result_id)
    assert plan.parent_project_id == parent.id and plan.settings.auto_ignore is False
    fixed = optimize_project(
        ws, parent.id, plan.settings, tmp_path / "b", keep_float_from=plan.link
    )
    model = ws.model(fixed.model_id)
    assert (
        model.optimization is not None
        and model.optimization["keep_float_from"]["result_id"] == result_id
    )
    runtime = summarize_runtime(compile_model(load_registered(model).model, "CPU", "default"))
    parent_ap = evaluate_project(ws, parent.id)["metrics"]["mask_ap"]
    broken_ap = evaluate_project(ws, broken.id)["metrics"]["mask_ap"]
    fixed_ap = evaluate_project(ws, fixed.id)["metrics"]["mask_ap"]
    report = (
        f"mask AP parent {parent_ap:.4f}, no-auto-ignore INT8 {broken_ap:.4f}, "
        f"re-optimized {fixed_ap:.4f}; groups kept {len(chosen)} {chosen}; "
        f"INT8 share {runtime.compute_int8_share:.4f}; analysis {seconds:.0f} s, "
        f"{analysis['evaluations']} evaluations"
    )
    print(report)
    assert broken_ap < 0.05, report
    assert parent_ap - fixed_ap <= 0.010, report
    assert runtime.compute_int8_share >= 0.90, report
