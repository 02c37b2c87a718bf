"""Results record the accuracy settings they ran with, and show as stale once the model's
settings change (current again when they change back; unknown when they recorded none)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openvino as ov
import pytest
import report_builder as build
from cli_run import run_cli
from pilot_wait import settle
from stored_report import SETUP, open_report, predictions
from textual.widgets import Static
from tiny_models import build_omz_maskrcnn, build_omz_maskrcnn_conv

from segtui.core import optimize
from segtui.core.accuracy import evaluate_project
from segtui.core.accuracy_settings import Origin, configure_model, model_settings
from segtui.core.archive import write_archive
from segtui.core.benchmark import BenchmarkSettings
from segtui.core.datasets import image_path
from segtui.core.deploy import build_deployment
from segtui.core.errors import SegtuiError
from segtui.core.inference import run_inference
from segtui.core.models import import_model, load_registered
from segtui.core.optimize import optimize_project
from segtui.core.optimize_settings import OptimizeSettings
from segtui.core.performance import benchmark_project
from segtui.core.predictions import InstanceData
from segtui.core.project_export import ExportRequest, collect_export
from segtui.core.project_import import import_archive
from segtui.core.projects import create_project_from_paths
from segtui.core.quantize import QuantizeOutcome
from segtui.core.report import ReportSettings, create_report
from segtui.core.settings_versions import (
    STALE_NOTE,
    USER_ORIGIN,
    Staleness,
    data_staleness,
    dependencies,
    optimization_staleness,
    recorded_version,
    staleness,
)
from segtui.core.transfer_doc import ARCHIVE_KIND, EXPORT_DOC, ExportDocument, document_bytes
from segtui.core.types import ReportType, ResultKind
from segtui.core.workspace import ProjectRecord, ResultRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.project_properties import model_properties
from segtui.ui.screens.report import STALE_TEXT


@dataclass(frozen=True)
class Made:
    """A parent and its 'INT8' child on an annotated dataset, the parent's evaluation and the
    child's report, each stored with the settings it ran with."""

    parent: ProjectRecord
    child: ProjectRecord
    evaluation: ResultRecord
    report: ResultRecord


@pytest.fixture
def made(workspace: Workspace, coco_dataset: Path, tmp_path: Path) -> Made:
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    parent = create_project_from_paths(
        workspace, model_path=model_path, dataset_path=coco_dataset, name="tiny"
    )
    child_model = import_model(
        workspace, model_path, name="tiny INT8", optimized_from=parent.model_id
    )
    child = workspace.add_project(
        name="tiny INT8",
        model_id=child_model.id,
        dataset_id=parent.dataset_id,
        device="CPU",
        parent_id=parent.id,
    )
    result = evaluate_project(workspace, parent.id)
    evaluation = workspace.add_result(project_id=parent.id, kind=ResultKind.ACCURACY, data=result)
    outcome = create_report(workspace, child.id, ReportSettings(type=ReportType.PARENT))
    return Made(parent, child, evaluation, workspace.result(outcome["result_id"]))


def _states(ws: Workspace, made: Made) -> tuple[Staleness, Staleness]:
    return staleness(ws, ws.result(made.evaluation.id)), staleness(ws, ws.result(made.report.id))


# -- what is recorded, and the rules --------------------------------------------------------


def test_results_record_the_settings_they_ran_with(workspace: Workspace, made: Made) -> None:
    parent_settings = model_settings(workspace, made.parent.model_id).to_json()
    child_settings = model_settings(workspace, made.child.model_id).to_json()
    assert made.evaluation.data["accuracy_settings"] == parent_settings
    assert made.report.data["summary"]["settings"] == {
        "optimized": child_settings,
        "parent": parent_settings,
    }
    assert len(parent_settings["version"]) == 12
    report_models = dependencies(workspace, made.report.kind, made.child.id, made.report.data)
    assert [(d.role, d.model_id, d.recorded) for d in report_models] == [
        ("optimized", made.child.model_id, child_settings["version"]),
        ("parent", made.parent.model_id, parent_settings["version"]),
    ]
    assert _states(workspace, made) == (Staleness.CURRENT, Staleness.CURRENT)


def test_a_change_makes_them_stale_and_changing_it_back_current_again(
    workspace: Workspace, made: Made
) -> None:
    configure_model(workspace, made.parent.model_id, {"scale": "255"})
    assert _states(workspace, made) == (Staleness.STALE, Staleness.STALE)
    # The version is a hash of the values: back to the detected value, back to current.
    configure_model(workspace, made.parent.model_id, {}, reset=["scale"])
    assert _states(workspace, made) == (Staleness.CURRENT, Staleness.CURRENT)
    # The optimized model's settings count for its report, not for the parent's evaluation.
    configure_model(workspace, made.child.model_id, {"channel_order": "RGB"})
    assert _states(workspace, made) == (Staleness.CURRENT, Staleness.STALE)


def test_results_from_before_the_feature_are_unknown_not_stale(
    workspace: Workspace, made: Made, image_folder: Path, tmp_path: Path
) -> None:
    older = {k: v for k, v in made.evaluation.data.items() if k != "accuracy_settings"}
    record = workspace.add_result(project_id=made.parent.id, kind=ResultKind.ACCURACY, data=older)
    configure_model(workspace, made.parent.model_id, {"scale": "255"})
    assert staleness(workspace, record) == Staleness.UNKNOWN
    assert not Staleness.UNKNOWN.stale
    # A report that recorded one model's settings but not the other's says nothing either.
    summary = dict(made.report.data["summary"])
    summary["settings"] = {"optimized": summary["settings"]["optimized"]}
    half = workspace.add_result(
        project_id=made.child.id,
        kind=made.report.kind,
        data={**made.report.data, "summary": summary},
    )
    assert staleness(workspace, half) == Staleness.UNKNOWN
    # A stored report of models without a readable graph (stand-ins) with an old version.
    staging = tmp_path / "staging"
    staging.mkdir()
    _, child, stand_in = build.build_report(workspace, image_folder, staging, SETUP, predictions())
    assert staleness(workspace, stand_in) == Staleness.UNKNOWN
    data = dict(stand_in.data)
    data["summary"] = {
        **data["summary"],
        "settings": {"optimized": {"version": "0" * 12}, "parent": {"version": "0" * 12}},
    }
    recorded = workspace.add_result(project_id=child.id, kind=stand_in.kind, data=data)
    assert staleness(workspace, recorded) == Staleness.UNKNOWN  # its models cannot be read


def test_recorded_version_reads_a_settings_json_or_a_bare_version() -> None:
    assert USER_ORIGIN == Origin.USER  # the light module's copy of the origin's value
    assert recorded_version({"version": "abc123abc123", "values": {}}) == "abc123abc123"
    assert recorded_version("abc123abc123") == "abc123abc123"
    assert recorded_version(None) is None
    assert recorded_version({"values": {}}) is None
    assert recorded_version({"version": 12}) is None


def test_a_benchmark_records_the_version_and_goes_stale(workspace: Workspace, made: Made) -> None:
    run = benchmark_project(
        workspace, made.parent.id, BenchmarkSettings(duration_s=0.5), per_layer=False
    )
    version = model_settings(workspace, made.parent.model_id).version
    assert run["accuracy_settings_version"] == version
    stored = workspace.add_result(project_id=made.parent.id, kind=ResultKind.BENCHMARK, data=run)
    assert staleness(workspace, stored) == Staleness.CURRENT
    configure_model(workspace, made.parent.model_id, {"pad_value": "114"})
    assert staleness(workspace, stored) == Staleness.STALE
    # A sweep records it once, for the project's model.
    sweep = {"cells": [], "accuracy_settings_version": version}
    assert data_staleness(workspace, ResultKind.SWEEP, made.parent.id, sweep) == Staleness.STALE


# -- the optimized child ----------------------------------------------------------------------


def _copying_quantize(*args: Any, **kwargs: Any) -> QuantizeOutcome:
    """NNCF's place taken by a copy of the parent's IR (no calibration here)."""
    model, target = args[0], Path(args[4])
    target.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, target, compress_to_fp16=False)
    return QuantizeOutcome(target, 0.0, 1, None, [])


def test_an_optimized_child_inherits_the_parents_values_at_the_time(
    workspace: Workspace,
    made: Made,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(optimize, "quantize", _copying_quantize)
    parent_model = made.parent.model_id
    at_the_time = configure_model(workspace, parent_model, {"scale": "255", "pad_value": "114"})
    child = optimize_project(workspace, made.parent.id, OptimizeSettings(), tmp_path / "work")
    model = workspace.model(child.model_id)
    user = {"scale": [255.0, 255.0, 255.0], "pad_value": 114.0}
    assert model.accuracy_settings == user
    assert model.optimization is not None
    assert model.optimization["accuracy_settings"] == at_the_time.to_json()
    assert model_settings(workspace, model.id).version == at_the_time.version
    assert optimization_staleness(model) == Staleness.CURRENT
    calibrated = ("Calibrated with settings", f"version {at_the_time.version}")
    rows = model_properties(model)
    assert calibrated in rows and not any(label == "Accuracy settings" for label, _ in rows)
    # The parent changes later: the child keeps the values it was made with.
    configure_model(workspace, parent_model, {}, reset=["scale", "pad_value"])
    assert workspace.model(child.model_id).accuracy_settings == user
    assert optimization_staleness(workspace.model(child.model_id)) == Staleness.CURRENT
    # The child's own change: its calibration used other settings.
    configure_model(workspace, child.model_id, {"pad_value": "0"})
    assert optimization_staleness(workspace.model(child.model_id)) == Staleness.STALE
    assert (
        calibrated[0],
        f"{calibrated[1]} (stale: its accuracy settings changed since; optimize again)",
    ) in model_properties(workspace.model(child.model_id))
    shown = _cli(capsys, workspace, "show", "model", str(child.model_id))
    assert f"calibrated  with accuracy settings {at_the_time.version} {STALE_NOTE}" in shown
    assert '"accuracy_settings"' not in shown  # one line, not the JSON
    # A model optimized before the settings were recorded: unknown.
    assert optimization_staleness(workspace.model(made.child.model_id)) == Staleness.UNKNOWN


# -- where stale shows: the CLI's JSON and text, the report screen ----------------------------


def _cli(capsys: pytest.CaptureFixture[str], ws: Workspace, *argv: str) -> str:
    code, text = run_cli(capsys, ["--workspace", str(ws.root), *argv])
    assert code == 0, text
    return text


def test_the_cli_says_stale_in_json_and_text(
    workspace: Workspace, made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    child, parent = str(made.child.id), str(made.parent.id)
    report = json.loads(_cli(capsys, workspace, "report", child, "--stored", "--json"))
    assert (report["stale"], report["staleness"]) == (False, "current")
    _cli(capsys, workspace, "configure", str(made.parent.model_id), "--set", "scale=255")
    report = json.loads(_cli(capsys, workspace, "report", child, "--stored", "--json"))
    assert (report["stale"], report["staleness"]) == (True, "stale")
    assert report["result_id"] == made.report.id
    assert STALE_NOTE in _cli(capsys, workspace, "report", child, "--stored")
    shown = json.loads(_cli(capsys, workspace, "show", "project", parent, "--json"))
    assert [(r["id"], r["kind"], r["stale"]) for r in shown["results"]] == [
        (made.evaluation.id, "accuracy", True)
    ]
    text = _cli(capsys, workspace, "show", "project", parent)
    assert f"result {made.evaluation.id:<4} accuracy {STALE_NOTE}" in text
    _cli(capsys, workspace, "configure", str(made.parent.model_id), "--reset", "scale")
    shown = json.loads(_cli(capsys, workspace, "show", "project", parent, "--json"))
    assert [r["staleness"] for r in shown["results"]] == ["current"]
    assert STALE_NOTE not in _cli(capsys, workspace, "show", "project", parent)


def test_evaluate_prints_the_settings_it_ran_with(
    workspace: Workspace, made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_model(workspace, made.parent.model_id, {"score_threshold": "0.7"})
    evaluated = json.loads(_cli(capsys, workspace, "evaluate", str(made.parent.id), "--json"))
    assert (
        evaluated["accuracy_settings"] == model_settings(workspace, made.parent.model_id).to_json()
    )
    assert evaluated["accuracy_settings"]["values"]["score_threshold"] == 0.7
    assert (evaluated["stale"], evaluated["staleness"]) == (False, "current")
    # The older evaluation ran with the detected score floor: stale; this one with 0.7.
    assert staleness(workspace, made.evaluation) == Staleness.STALE


def test_compare_marks_each_run(
    workspace: Workspace, made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    for project in (made.parent, made.child):
        run = benchmark_project(
            workspace, project.id, BenchmarkSettings(duration_s=0.5), per_layer=False
        )
        workspace.add_result(project_id=project.id, kind=ResultKind.BENCHMARK, data=run)
    configure_model(workspace, made.child.model_id, {"pad_value": "114"})
    compared = json.loads(_cli(capsys, workspace, "compare", str(made.child.id), "--json"))
    assert [run["stale"] for run in compared["a"]["runs"].values()] == [True]
    assert [run["stale"] for run in compared["b"]["runs"].values()] == [False]
    lines = _cli(capsys, workspace, "compare", str(made.child.id)).splitlines()
    assert lines[1].endswith(STALE_NOTE) and not lines[3].endswith(STALE_NOTE)


async def test_the_report_screen_says_stale(workspace: Workspace, made: Made) -> None:
    def summary_of(screen: Any) -> str:
        return str(screen.query_one("#report-summary", Static).content)

    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_report(app, made.child.id, pilot)
        assert "of A against B" in summary_of(screen)
        assert STALE_TEXT not in summary_of(screen)
        await app.pop_screen()
        configure_model(workspace, made.parent.model_id, {"scale": "255"})
        screen = await open_report(app, made.child.id, pilot)
        await settle(pilot)
        assert summary_of(screen).endswith(STALE_TEXT)


# -- the deployment package carries them ------------------------------------------------------


def _packaged_predictions(ws: Workspace, project: ProjectRecord, out: Path) -> list[Any]:
    """What the package's infer.py finds in the project's images (score ≥ 0.05, f32)."""
    out.mkdir()
    result = build_deployment(ws, project.id, out)
    with tarfile.open(result.path) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(out / "x", filter="data")
    package = out / "x" / top
    dataset = ws.dataset(project.dataset_id)
    paths = [str(image_path(dataset, im)) for im in ws.dataset_images(dataset.id)]
    written = out / "r.json"
    options = ["--out", str(written), "--threshold", "0.05", "--precision", "f32"]
    done = subprocess.run(
        [sys.executable, "-I", str(package / "infer.py"), *paths, *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    config = json.loads((package / "config.json").read_text())
    return [config["model"]["accuracy_settings"], json.loads(written.read_text())["images"]]


def _segtui_predictions(ws: Workspace, project: ProjectRecord) -> list[list[InstanceData]]:
    dataset = ws.dataset(project.dataset_id)
    images = [(im.path, image_path(dataset, im)) for im in ws.dataset_images(dataset.id)]
    loaded = load_registered(ws.model(project.model_id))
    run = run_inference(loaded.model, loaded.adapter, images, score_threshold=0.05)
    return [[i.to_json() for i in p.instances] for p in run.predictions]


def test_a_package_made_after_configure_predicts_like_segtui(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> None:
    model_path = build_omz_maskrcnn_conv(tmp_path / "conv" / "model.xml")
    project = create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="conv"
    )
    detected = _segtui_predictions(workspace, project)
    settings = configure_model(
        workspace, project.model_id, {"scale": "255", "channel_order": "RGB"}
    )
    configured = _segtui_predictions(workspace, project)
    assert [[i["score"] for i in p] for p in configured] != [
        [i["score"] for i in p] for p in detected
    ]
    packaged_settings, packaged = _packaged_predictions(workspace, project, tmp_path / "deploy")
    assert packaged_settings == settings.to_json()
    assert packaged_settings["values"]["scale"] == [255.0, 255.0, 255.0]
    for image, expected in zip(packaged, configured, strict=True):
        got = image["instances"]
        assert [i["class_id"] for i in got] == [i["class_id"] for i in expected]
        assert [i["score"] for i in got] == pytest.approx([i["score"] for i in expected], abs=1e-4)
        assert [i["rle"] for i in got] == [i["rle"] for i in expected]


# -- export and import carry them -------------------------------------------------------------


def _archive(ws: Workspace, project_id: int, folder: Path, mutate: Any = None) -> Path:
    """The project exported (with a change to its export.json when asked)."""
    folder.mkdir()
    contents = collect_export(ws, ExportRequest(project_id, folder / "unused"))
    if mutate is not None:
        mutate(contents.document)
    doc_file = folder / EXPORT_DOC
    doc_file.write_bytes(document_bytes(contents.document))
    archive = folder / "export.tar.gz"
    write_archive(archive, [(EXPORT_DOC, doc_file), *contents.members], kind=ARCHIVE_KIND)
    return archive


def test_export_and_import_keep_the_settings_and_what_is_stale(
    workspace: Workspace, made: Made, tmp_path: Path
) -> None:
    configure_model(workspace, made.child.model_id, {"pad_value": "114"})
    outcome = create_report(workspace, made.child.id, ReportSettings(type=ReportType.PARENT))
    configure_model(workspace, made.parent.model_id, {"scale": "255"})  # the report goes stale
    configure_model(workspace, made.parent.model_id, {}, reset=["scale"])  # current again
    configure_model(workspace, made.parent.model_id, {"channel_order": "RGB"})
    archive = _archive(workspace, made.child.id, tmp_path / "export")
    dest = Workspace(tmp_path / "dest")
    imported = import_archive(dest, archive)
    source_models = {m.name: m for m in workspace.models()}
    for model in dest.models():
        source = source_models[model.name]
        assert model.accuracy_settings == source.accuracy_settings
        assert (
            model_settings(dest, model.id).version == model_settings(workspace, source.id).version
        )
    assert {m.name: m.accuracy_settings for m in dest.models()} == {
        "model": {"channel_order": "RGB"},
        "tiny INT8": {"pad_value": 114.0},
    }
    report_id = next(
        r["id"] for r in imported["results"] if r["archive_id"] == outcome["result_id"]
    )
    assert report_id is not None
    report = dest.result(report_id)
    assert staleness(dest, report) == Staleness.STALE  # the parent's RGB came after it
    parent_model = next(m.id for m in dest.models() if m.name == "model")
    configure_model(dest, parent_model, {}, reset=["channel_order"])
    assert staleness(dest, dest.result(report.id)) == Staleness.CURRENT
    dest.close()


def _bad_scale(document: ExportDocument) -> None:
    document["models"][0]["accuracy_settings"] = {"scale": [0.0, 0.0, 0.0]}


def _unknown_key(document: ExportDocument) -> None:
    document["models"][0]["accuracy_settings"] = {"colour": "RGB"}


def _other_class_names(document: ExportDocument) -> None:
    document["models"][0]["accuracy_settings"] = {"class_names": ["x", "y"]}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_bad_scale, "model 1's accuracy setting scale: 0 is out of range"),
        (_unknown_key, "has the accuracy setting 'colour', which its format lacks"),
        (_other_class_names, "accuracy setting class_names is not its class_names"),
    ],
)
def test_an_archive_with_bad_settings_is_refused(
    workspace: Workspace,
    made: Made,
    tmp_path: Path,
    mutate: Callable[[ExportDocument], None],
    message: str,
) -> None:
    archive = _archive(workspace, made.parent.id, tmp_path / "export", mutate)
    dest = Workspace(tmp_path / "dest")
    with pytest.raises(SegtuiError, match=re.escape(message)):
        import_archive(dest, archive)
    assert dest.models() == []
    dest.close()
