"""The preset follows the model's format (Mixed for YOLO-seg) unless the user sets one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import openvino as ov
import pytest
from cli_run import run_cli
from conftest import write_scene
from tiny_models import DFL_CONV, build_omz_maskrcnn_conv, build_yolo_seg_dfl

from segtui.core import settings
from segtui.core.format_presets import PresetSource, format_preset, resolve_preset
from segtui.core.projects import create_project_from_paths
from segtui.core.settings import OPTIMIZE
from segtui.core.types import Preset
from segtui.core.workspace import Workspace

IMAGES = 3


def test_each_format_has_its_preset_and_the_user_choice_wins() -> None:
    yolo = format_preset("yolo-seg")
    assert yolo.preset is Preset.MIXED and yolo.source is PresetSource.FORMAT
    assert yolo.reason.startswith("Mixed: Ultralytics' own INT8 export uses it")
    for format_id in ("omz-maskrcnn", "omz-maskrcnn-legacy", "model-api-maskrcnn"):
        choice = format_preset(format_id)
        assert choice.preset is Preset.PERFORMANCE, format_id
        assert choice.reason.startswith("Performance: segtui's default for ")
    assert resolve_preset("yolo-seg", None) == yolo
    user = resolve_preset("yolo-seg", Preset.PERFORMANCE)
    assert user.preset is Preset.PERFORMANCE and user.source is PresetSource.USER
    assert user.reason == "Performance: your choice (this format's preset is Mixed)"
    same = resolve_preset("yolo-seg", Preset.MIXED)
    assert same.source is PresetSource.USER and "also this format's preset" in same.reason
    assert user.to_json() == {
        "preset": "performance",
        "source": "user",
        "reason": user.reason,
    }


def test_formats_without_a_preset_of_their_own_follow_the_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert OPTIMIZE.preset.default is Preset.PERFORMANCE  # the schema's default is unchanged
    mixed = dataclasses.replace(OPTIMIZE.preset, default=Preset.MIXED)
    monkeypatch.setattr(settings.OptimizeSchema, "preset", mixed)
    assert format_preset("omz-maskrcnn").preset is Preset.MIXED


def _project(root: Path, tmp_path: Path, model: Path) -> int:
    for i in range(IMAGES):
        write_scene(tmp_path / "images" / f"img{i}.png", (48, 64), i)
    with Workspace(root) as ws:
        project = create_project_from_paths(
            ws, model_path=model, dataset_path=tmp_path / "images", name="tiny"
        )
        assert ws.model(project.model_id).format_id in ("yolo-seg", "omz-maskrcnn")
        return project.id


def _optimize(
    capsys: pytest.CaptureFixture[str], root: Path, project: int, *extra: str
) -> tuple[dict[str, object], str]:
    """`segtui optimize PROJECT --json ...`: the printed result and the child model's record."""
    code, text = run_cli(capsys, ["--workspace", str(root), "optimize", str(project), *extra])
    assert code == 0, text
    start = text.index("{")
    return json.loads(text[start : text.rindex("}") + 1]), text[:start]


def _stored_preset(root: Path, result: dict[str, object]) -> str:
    with Workspace(root) as ws:
        optimization = ws.model(int(str(result["model_id"]))).optimization
        assert optimization is not None
        return str(optimization["preset"])


def test_cli_optimizes_yolo_with_mixed_and_the_dfl_in_float(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    project = _project(root, tmp_path, build_yolo_seg_dfl(tmp_path / "m" / "yolo.xml", fp16=True))
    result, _ = _optimize(capsys, root, project, "--json")
    assert result["preset_choice"] == format_preset("yolo-seg").to_json()
    assert _stored_preset(root, result) == "mixed"
    # The INT8 IR: every learned conv reads a quantized input, the DFL reads its softmax.
    with Workspace(root) as ws:
        child = ws.model(int(str(result["model_id"])))
        int8 = ov.Core().read_model(str(child.xml_path))
    inputs = {
        op.get_friendly_name(): op.input_value(0).get_node().get_type_name()
        for op in int8.get_ordered_ops()
        if op.get_type_name() == "Convolution"
    }
    assert inputs.pop(DFL_CONV) == "Softmax"
    assert len(inputs) == 11 and set(inputs.values()) == {"FakeQuantize"}


def test_cli_preset_given_by_the_user_wins(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    project = _project(root, tmp_path, build_yolo_seg_dfl(tmp_path / "m" / "yolo.xml"))
    code, text = run_cli(
        capsys,
        ["--workspace", str(root), "optimize", str(project), "--preset", "performance"],
    )
    assert code == 0, text
    assert "(default, performance preset, 3 calibration images)" in text
    assert "Preset Performance: your choice (this format's preset is Mixed)" in text
    with Workspace(root) as ws:
        (child,) = [p for p in ws.projects() if p.parent_id == project]
        optimization = ws.model(child.model_id).optimization
    assert optimization is not None and optimization["preset"] == "performance"


def test_cli_optimizes_omz_with_performance(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    project = _project(root, tmp_path, build_omz_maskrcnn_conv(tmp_path / "m" / "omz.xml"))
    result, _ = _optimize(capsys, root, project, "--json")
    choice = result["preset_choice"]
    assert isinstance(choice, dict)
    assert choice["preset"] == "performance" and choice["source"] == "format"
    assert choice["reason"] == "Performance: segtui's default for OMZ Mask R-CNN"
    assert _stored_preset(root, result) == "performance"


def test_cli_help_names_the_formats_presets(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run_cli(capsys, ["optimize", "--help"])
    assert code == 0
    assert "default: the model format's (mixed for yolo-seg, else performance)" in " ".join(
        text.split()
    )
