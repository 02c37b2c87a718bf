"""The sensitivity analysis (issue #13) on a tiny model whose INT8 boxes one quantizer breaks.

Real OpenVINO, real NNCF: the tiny Mask R-CNN of tiny_quant_models is quantized without the
automatic scope; its box Add then reads offsets of a few pixels quantized over a range of
thousands, and the analysis must find that group from data alone.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from conftest import write_scene
from held_jobs import ended_job, held
from tiny_models import build_omz_maskrcnn
from tiny_quant_models import OFFSET_ADD, OFFSET_MATMUL, build_quant_sensitive_maskrcnn

from segtui.core import job_registry, jobs
from segtui.core.datasets import load_image
from segtui.core.errors import SegtuiError
from segtui.core.inference import compile_model
from segtui.core.keep_float import keep_float_plan, recipe
from segtui.core.models import load_registered
from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.preflight import check_job
from segtui.core.projects import create_project_from_paths
from segtui.core.quantizer_groups import QuantizerGroup, bypassed, quantizer_groups
from segtui.core.sensitivity import (
    SensitivityJobResult,
    SensitivityResult,
    SensitivitySettings,
    analyze_project,
    check_analysable,
    ignored_scope_names,
    latest_sensitivity,
    stored_sensitivity,
)
from segtui.core.sensitivity_passes import refitted, score_quantizers
from segtui.core.settings import SettingError
from segtui.core.types import JobKind, JobState, ResultKind
from segtui.core.workspace import ProjectRecord, Workspace

#: Small and fast: the tiny model predicts 10 images in well under a second.
FAST = SensitivitySettings(images=10, score_images=4)


@dataclass(frozen=True)
class Pair:
    ws: Workspace
    parent: ProjectRecord
    child: ProjectRecord


def _pair(root: Path) -> Pair:
    """The tiny model's project (10 distinct images) and its INT8 child without the scope."""
    model = build_quant_sensitive_maskrcnn(root / "model" / "tiny.xml")
    for i in range(10):
        write_scene(root / "images" / f"img{i}.png", (64, 64), i)
    ws = Workspace(root / "ws")
    parent = create_project_from_paths(
        ws, model_path=model, dataset_path=root / "images", name="tiny"
    )
    settings = OptimizeSettings(auto_ignore=False)
    child = optimize_project(ws, parent.id, settings, root / "work")
    return Pair(ws, parent, child)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """One pair for the tests that only read it."""
    pair = _pair(tmp_path_factory.mktemp("sensitivity"))
    yield pair
    pair.ws.close()


@pytest.fixture(scope="module")
def analysis(shared: Pair) -> SensitivityResult:
    return analyze_project(shared.ws, shared.child.id, FAST)


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Pair]:
    """A pair of this test's own (for jobs and re-optimizations)."""
    pair = _pair(tmp_path)
    yield pair
    pair.ws.close()


def _model(pair: Pair, project: ProjectRecord) -> ov.Model:
    return load_registered(pair.ws.model(project.model_id)).model


def _offset_group(groups: list[QuantizerGroup]) -> QuantizerGroup:
    [group] = [g for g in groups if OFFSET_ADD in g.fed_layers]
    return group


def _boxes(pair: Pair, model: ov.Model) -> np.ndarray:
    """The boxes output on the first image."""
    adapter = load_registered(pair.ws.model(pair.child.model_id)).adapter
    image = sorted(pair.ws.dataset(pair.child.dataset_id).root.glob("*.png"))[0]
    inputs, _ = adapter.preprocess(load_image(image))
    compiled = compile_model(model, "CPU", "f32")
    return np.array(compiled(inputs)[compiled.output("boxes")])


# -- groups, bypass, scores ------------------------------------------------------------------


def test_groups_name_the_original_layers_they_feed(shared: Pair) -> None:
    groups = quantizer_groups(_model(shared, shared.child))
    parent_names = {op.get_friendly_name() for op in _model(shared, shared.parent).get_ops()}
    fqs = [name for g in groups for name in g.quantizers]
    assert len(fqs) == len(set(fqs)) >= 5  # each quantizer in one group
    assert [g.id for g in groups] == list(range(len(groups)))
    assert all(set(g.fed_layers) <= parent_names for g in groups)  # pastes into IgnoredScope
    offsets = _offset_group(groups)
    assert offsets.fed_layers == (OFFSET_ADD,) and offsets.fed_types == ("Add",)
    assert offsets.producers == (OFFSET_MATMUL,) and offsets.compute_layers == 0
    # The MatMul that makes the offsets is fed by the quantizer of its (tanh) input.
    assert any(OFFSET_MATMUL in g.fed_layers and g.compute_layers >= 1 for g in groups)
    assert QuantizerGroup.from_json(offsets.to_json()) == offsets


def test_bypassing_the_offset_group_gives_back_the_parents_boxes(shared: Pair) -> None:
    int8 = _model(shared, shared.child)
    offsets = _offset_group(quantizer_groups(int8))
    parent_boxes = _boxes(shared, _model(shared, shared.parent))
    int8_boxes = _boxes(shared, int8)
    float_boxes = _boxes(shared, bypassed(int8, offsets.quantizers))
    assert np.abs(int8_boxes[:, :4] - parent_boxes[:, :4]).max() > 3.0  # broken by pixels
    assert np.abs(float_boxes[:, :4] - parent_boxes[:, :4]).max() < 0.5
    # The model itself is untouched (bypassed works on a copy).
    assert len(quantizer_groups(int8)) == len(quantizer_groups(_model(shared, shared.child)))
    with pytest.raises(SegtuiError, match="not in the model"):
        bypassed(int8, ["no such quantizer"])


def test_the_error_pass_scores_the_fragile_quantizer_worst(shared: Pair) -> None:
    int8 = _model(shared, shared.child)
    parent = load_registered(shared.ws.model(shared.parent.model_id))
    images = sorted(shared.ws.dataset(shared.child.dataset_id).root.glob("*.png"))[:3]
    stats = score_quantizers(int8, parent.model, parent.adapter, images)
    [fragile] = _offset_group(quantizer_groups(int8)).quantizers
    assert all(s.values > 0 for s in stats.values())
    worst = min(stats.values(), key=lambda s: s.error_db or 0.0)
    assert worst.name == fragile
    # Its SQNR alone looks fine (the outlier holds the power); the median error does not.
    sqnr, error = stats[fragile].sqnr_db, stats[fragile].error_db
    assert sqnr is not None and sqnr > 20
    assert error is not None and error < 6
    assert not any(s.collapsed for s in stats.values())


def test_a_collapsed_range_is_found_and_refitted(shared: Pair) -> None:
    int8 = _model(shared, shared.child)
    parent = load_registered(shared.ws.model(shared.parent.model_id))
    images = sorted(shared.ws.dataset(shared.child.dataset_id).root.glob("*.png"))[:2]
    # Collapse one quantizer's range to almost nothing, as in-graph statistics of an often
    # empty tensor do.
    broken = int8.clone()
    fq = next(op for op in broken.get_ordered_ops() if op.get_type_name() == "FakeQuantize")
    for port in (2, 4):
        tiny = ops.constant(np.array(1e-4, np.float32))
        fq.input(port).replace_source_output(tiny.output(0))
    stats = score_quantizers(broken, parent.model, parent.adapter, images)
    name = fq.get_friendly_name()
    assert stats[name].collapsed and stats[name].clipped > 0.5
    fixed, count = refitted(broken, stats)
    assert count == 1
    again = score_quantizers(fixed, parent.model, parent.adapter, images)
    assert not again[name].collapsed and again[name].clipped == 0.0


# -- the analysis ----------------------------------------------------------------------------


def test_the_analysis_finds_the_group_from_data(shared: Pair, analysis: SensitivityResult) -> None:
    offsets = _offset_group(quantizer_groups(_model(shared, shared.child)))
    first = analysis["groups"][0]
    assert first["id"] == offsets.id and first["rank"] == 1
    assert first["chosen"] and first["reason"] == "metric"
    assert first["metric_change"] is not None and first["metric_change"] >= 20.0
    assert analysis["chosen"][0] == offsets.id
    # No annotations: the metric is mask AP against the parent's own predictions.
    assert analysis["metric"] == "mask_ap_vs_parent" and analysis["parent_metric"] == 1.0
    assert analysis["int8_metric"] <= 0.8
    assert analysis["candidates_metric"] == pytest.approx(1.0, abs=0.01)
    assert analysis["chosen_metric"] == pytest.approx(1.0, abs=0.01)
    assert analysis["refitted"] == 0 and analysis["images"] == 10
    measured = [row for row in analysis["groups"] if row["measured"]]
    # parent, INT8, all candidates, one per candidate, the chosen set.
    assert analysis["evaluations"] == 3 + len(measured) + 1
    assert [row["rank"] for row in analysis["groups"]] == list(
        range(1, len(analysis["groups"]) + 1)
    )
    assert ignored_scope_names(analysis, [offsets.id]) == [OFFSET_ADD]


def test_each_row_carries_its_cost_from_the_per_layer_profile(analysis: SensitivityResult) -> None:
    profile = analysis["profile"]
    assert profile is not None and profile["float_ms"] > 0 and profile["int8_ms"] > 0
    for row in analysis["groups"]:
        assert row["float_ms"] is not None and row["int8_ms"] is not None
        assert row["cost_ms"] == pytest.approx(row["float_ms"] - row["int8_ms"], abs=1e-3)
    assert set(analysis["seconds"]) == {"score", "metric", "profile", "total"}


def test_fewer_candidates_measure_fewer_groups(shared: Pair) -> None:
    result = analyze_project(
        shared.ws, shared.child.id, SensitivitySettings(images=4, top=1, score_images=2)
    )
    measured = [row["id"] for row in result["groups"] if row["measured"]]
    assert measured == [result["groups"][0]["id"]] and result["evaluations"] == 5
    # The lone candidate is its own set: quantizing it back loses everything it gained.
    assert result["groups"][0]["metric_change"] == pytest.approx(
        (result["candidates_metric"] or 0.0) * 100 - result["baseline_metric"] * 100, abs=0.01
    )


# -- bad inputs ------------------------------------------------------------------------------


def test_a_project_that_is_not_int8_is_refused_with_a_hint(shared: Pair) -> None:
    with pytest.raises(SegtuiError) as refused:
        check_analysable(shared.ws, shared.parent.id)
    assert "not an optimized (INT8) project" in refused.value.message
    assert f"segtui optimize {shared.parent.id}" in refused.value.hint
    with pytest.raises(SegtuiError, match="not an optimized"):
        check_job(shared.ws, JobKind.SENSITIVITY, shared.parent.id, FAST.to_json())


@pytest.mark.parametrize(
    ("field", "value"), [("images", 0), ("top", 501), ("score_images", 65), ("keep", 0)]
)
def test_settings_out_of_range_are_refused_before_a_job(
    shared: Pair, field: str, value: int
) -> None:
    with pytest.raises(SettingError) as refused:
        check_job(shared.ws, JobKind.SENSITIVITY, shared.child.id, {**FAST.to_json(), field: value})
    assert refused.value.field == field
    with pytest.raises(SettingError):
        SensitivitySettings.from_values({field: value})


def test_a_missing_parent_model_is_refused(own: Pair) -> None:
    parent_model = own.ws.model(own.parent.model_id)
    shutil.move(parent_model.xml_path, parent_model.xml_path.with_suffix(".gone"))
    with pytest.raises(SegtuiError) as refused:
        check_analysable(own.ws, own.child.id)
    assert "parent model" in refused.value.message and refused.value.hint


def test_keep_float_refuses_what_it_cannot_do(shared: Pair, analysis: SensitivityResult) -> None:
    stored = shared.ws.add_result(
        project_id=shared.child.id, kind=ResultKind.SENSITIVITY, data=analysis
    )
    other = shared.ws.add_result(project_id=shared.child.id, kind=ResultKind.ACCURACY, data={})
    with pytest.raises(SegtuiError, match="no sensitivity analysis with result id 999"):
        keep_float_plan(shared.ws, 999)
    with pytest.raises(SegtuiError, match="not a sensitivity analysis"):
        keep_float_plan(shared.ws, other.id)
    shared.ws.delete_result(other.id)  # (not a real accuracy result: nothing else reads it)
    with pytest.raises(SegtuiError, match="has no group 77"):
        keep_float_plan(shared.ws, stored.id, group_ids=[77])
    with pytest.raises(SegtuiError, match="--top 0 is out of range"):
        keep_float_plan(shared.ws, stored.id, top=0)
    assert latest_sensitivity(shared.ws, shared.child.id) == (stored.id, analysis)


# -- the job, cancel, re-optimization ----------------------------------------------------------


def test_the_job_stores_its_result_and_it_reads_back(own: Pair) -> None:
    job = jobs.submit(own.ws, JobKind.SENSITIVITY, own.child.id, FAST.to_json())
    final = jobs.wait(own.ws, job.id)
    assert final.state == JobState.DONE, final.error
    assert final.result is not None
    done = cast(SensitivityJobResult, final.result)
    result_id = done["result_id"]
    record = own.ws.result(result_id)
    assert record.kind == ResultKind.SENSITIVITY and record.job_id == job.id
    stored = stored_sensitivity(own.ws, result_id)
    assert stored["project_id"] == own.child.id and stored["parent_project_id"] == own.parent.id
    assert done["chosen"] == stored["chosen"] and stored["chosen"]
    assert latest_sensitivity(own.ws, own.child.id) == (result_id, stored)
    assert jobs.active_job(own.ws, own.child.id, JobKind.SENSITIVITY) is None


def test_a_cancel_between_groups_stores_nothing(own: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(job_registry.PAUSE_ENV, "Measuring group")
    job = held(own.ws, jobs.submit(own.ws, JobKind.SENSITIVITY, own.child.id, FAST.to_json()).id)
    assert job.stage.startswith("Measuring group") and 0.1 < job.progress < 1.0
    cancelled = jobs.cancel(own.ws, job.id)
    assert ended_job(own.ws, job.id).state == JobState.CANCELLED == cancelled.state
    assert own.ws.results(own.child.id, ResultKind.SENSITIVITY) == []
    assert not jobs.work_dir(own.ws, job.id).exists()


def test_reoptimizing_keeps_the_chosen_groups_in_float_and_links_back(own: Pair) -> None:
    data = analyze_project(own.ws, own.child.id, FAST)
    result_id = own.ws.add_result(
        project_id=own.child.id, kind=ResultKind.SENSITIVITY, data=data
    ).id
    plan = keep_float_plan(own.ws, result_id, top=1)
    assert plan.parent_project_id == own.parent.id
    assert recipe(own.ws, own.child.id) == OptimizeSettings(auto_ignore=False)
    assert plan.settings.auto_ignore is False and plan.settings.ignore_names == (OFFSET_ADD,)
    assert plan.link == {
        "result_id": result_id,
        "project_id": own.child.id,
        "groups": [data["chosen"][0]],
        "names": [OFFSET_ADD],
    }
    job = jobs.submit(own.ws, JobKind.OPTIMIZE, plan.parent_project_id, plan.params())
    final = jobs.wait(own.ws, job.id)
    assert final.state == JobState.DONE, final.error
    assert final.result is not None
    child = own.ws.project(final.result["child_project_id"])
    optimization = own.ws.model(child.model_id).optimization
    assert optimization is not None and optimization["keep_float_from"] == plan.link
    assert optimization["user_ignore_names"] == [OFFSET_ADD]
    new_groups = quantizer_groups(_model(own, child))
    assert not any(OFFSET_ADD in g.fed_layers for g in new_groups)
    assert len(new_groups) == len(quantizer_groups(_model(own, own.child))) - 1
    # The new child's boxes are the parent's again.
    assert (
        np.abs(_boxes(own, _model(own, child)) - _boxes(own, _model(own, own.parent))).max() < 0.5
    )
    _link_survives_a_move(own, child, result_id)


def test_reoptimizing_keeps_the_readers_of_dropped_quantizers_in_float(own: Pair) -> None:
    """The analysis measured the child without the quantizers its optimization dropped; the
    re-optimization must not get them back (NNCF would re-insert them)."""
    data = analyze_project(own.ws, own.child.id, FAST)
    result_id = own.ws.add_result(
        project_id=own.child.id, kind=ResultKind.SENSITIVITY, data=data
    ).id
    model = own.ws.model(own.child.model_id)
    assert model.optimization is not None
    dropped = {
        "name": "box_scale/fq_output_0",
        "layer": "box_scale/fq_output_0",
        "reason": "ran as a layer of its own and fed no INT8 input of a compute layer",
        "consumers": ["decode_x", "decode_y"],
    }
    record = {**model.optimization}
    record["standalone_quantizers"] = {
        "found": 1,
        "dropped": [dropped],
        "kept": [],
        "restored": [],
        "int8_compute_before": 2,
        "int8_compute_after": 2,
    }
    with own.ws.transaction() as tx:
        tx.execute(
            "UPDATE models SET optimization = ? WHERE id = ?", (json.dumps(record), model.id)
        )
    plan = keep_float_plan(own.ws, result_id, top=1)
    assert plan.settings.ignore_names == (OFFSET_ADD, "decode_x", "decode_y")
    assert plan.link["names"] == [OFFSET_ADD]  # the analysis' own groups, as before


def _link_survives_a_move(own: Pair, child: ProjectRecord, result_id: int) -> None:
    """Moved with the analysis, the link names the analysis' new ids; moved without it, no
    ids of the other workspace (which would name unrelated rows here)."""
    from segtui.core.project_export import ExportRequest, export_project
    from segtui.core.project_import import import_archive
    from segtui.ui.widgets.sensitivity_table import keep_float_text

    work = own.ws.root.parent / "move"
    (work / "tmp").mkdir(parents=True)
    whole, alone = work / "whole.tar.gz", work / "alone.tar.gz"
    export_project(own.ws, ExportRequest(own.parent.id, whole, with_children=True), work / "tmp")
    export_project(own.ws, ExportRequest(child.id, alone), work / "tmp")
    for archive, with_analysis in ((whole, True), (alone, False)):
        with Workspace(work / f"dest-{archive.stem}") as dest:
            # A project of its own first, so that the imported rows get other ids.
            images = own.ws.dataset(own.child.dataset_id).root
            other = build_omz_maskrcnn(work / "other" / "model.xml")
            create_project_from_paths(dest, model_path=other, dataset_path=images, name="other")
            outcome = import_archive(dest, archive)
            moved = next(
                model
                for model in (dest.model(p.model_id) for p in dest.projects())
                if model.optimization is not None and "keep_float_from" in model.optimization
            )
            assert moved.optimization is not None
            link = moved.optimization["keep_float_from"]
            assert link["groups"] and link["names"] == [OFFSET_ADD]
            if with_analysis:
                [analysis] = [r for r in outcome["results"] if r["archive_id"] == result_id]
                assert analysis["id"] is not None and link["result_id"] == analysis["id"]
                analysed = dest.result(analysis["id"])
                assert link["project_id"] == analysed.project_id != own.child.id
            else:
                assert (link["result_id"], link["project_id"]) == (None, None)
                assert "not imported" in keep_float_text(moved.optimization)


def test_a_stored_analysis_moves_with_its_project(
    shared: Pair, analysis: SensitivityResult, tmp_path: Path
) -> None:
    from segtui.core.project_export import ExportRequest, export_project
    from segtui.core.project_import import import_archive

    stored = shared.ws.add_result(
        project_id=shared.child.id, kind=ResultKind.SENSITIVITY, data=analysis
    )
    archive = tmp_path / "child.tar.gz"
    (tmp_path / "work").mkdir()
    export_project(shared.ws, ExportRequest(shared.child.id, archive), tmp_path / "work")
    with Workspace(tmp_path / "dest") as dest:
        # A project of its own first, so that the imported rows get other ids.
        images = shared.ws.dataset(shared.child.dataset_id).root
        other = build_omz_maskrcnn(tmp_path / "other" / "model.xml")
        create_project_from_paths(dest, model_path=other, dataset_path=images, name="other")
        outcome = import_archive(dest, archive)
        [moved] = [r for r in outcome["results"] if r["archive_id"] == stored.id]
        assert moved["id"] is not None and moved["kind"] == ResultKind.SENSITIVITY
        data = stored_sensitivity(dest, moved["id"])
        child = dest.project(outcome["project_id"])
        assert data["project_id"] == child.id and data["model_id"] == child.model_id
        assert data["parent_project_id"] == child.parent_id
        assert data["parent_model_id"] == dest.project(data["parent_project_id"]).model_id
        assert child.id != shared.child.id and data["groups"] == analysis["groups"]
