"""`segtui configure` and import-model's accuracy flags: what they print, store and refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import build_omz_maskrcnn

from segtui.cli import main
from segtui.core.records import JsonObject
from segtui.core.workspace import Workspace


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's refusal
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def ws(tmp_path: Path) -> str:
    return str(tmp_path / "ws")


@pytest.fixture
def model_xml(tmp_path: Path) -> Path:
    return build_omz_maskrcnn(tmp_path / "m" / "model.xml", labels=["circle", "square"])


@pytest.fixture
def model_id(capsys: pytest.CaptureFixture[str], ws: str, model_xml: Path) -> int:
    code, out, _ = run(
        capsys, "import-model", str(model_xml), "--name", "tiny", "--workspace", ws, "--json"
    )
    assert code == 0
    number = json.loads(out)["id"]
    assert isinstance(number, int)
    return number


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> JsonObject:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def _stored(ws: str, model_id: int) -> JsonObject:
    with Workspace(Path(ws)) as workspace:
        return workspace.model(model_id).accuracy_settings


def test_show_prints_each_key_its_value_and_origin(
    capsys: pytest.CaptureFixture[str], ws: str, model_id: int
) -> None:
    code, out, _ = run(capsys, "configure", str(model_id), "--show", "--workspace", ws)
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert ["key", "value", "origin"] in lines
    assert ["format", "omz-maskrcnn", "detected"] in lines
    assert ["scale", "1,1,1", "detected"] in lines
    assert ["class_names", "circle,square", "detected"] in lines
    assert not any(row and row[0] == "nms_iou" for row in lines)
    # By name, without --show: the same table.
    code, by_name, _ = run(capsys, "configure", "tiny", "--workspace", ws)
    assert code == 0 and by_name == out


def test_set_stores_the_values_and_json_says_so(
    capsys: pytest.CaptureFixture[str], ws: str, model_id: int
) -> None:
    before = _json(capsys, "configure", str(model_id), "--workspace", ws)
    code, out, err = run(
        capsys,
        "configure",
        str(model_id),
        "--set",
        "scale=255",
        "--set",
        "channel-order=rgb",
        "--workspace",
        ws,
    )
    assert code == 0
    assert f"Model {model_id} (tiny): channel_order, scale changed; settings version" in err
    assert "set by you" in out
    data = _json(capsys, "configure", str(model_id), "--workspace", ws)
    assert set(data) == {"version", "format_id", "values", "origins"}
    assert data["values"]["scale"] == [255.0, 255.0, 255.0]
    assert data["values"]["channel_order"] == "RGB"
    assert data["origins"]["scale"] == "user" and data["origins"]["mean"] == "detected"
    assert data["version"] != before["version"]
    assert _stored(ws, model_id) == {"scale": [255.0, 255.0, 255.0], "channel_order": "RGB"}
    reset = _json(capsys, "configure", str(model_id), "--reset", "scale", "--workspace", ws)
    assert reset["origins"]["scale"] == "detected"
    assert _stored(ws, model_id) == {"channel_order": "RGB"}


def test_show_yaml_feeds_from_file_unchanged(
    capsys: pytest.CaptureFixture[str], ws: str, model_id: int, tmp_path: Path
) -> None:
    changes = ["mean=123.675,116.28,103.53", "class_names=a: b,yes", "max_detections=3"]
    args = [a for change in changes for a in ("--set", change)]
    shown = _json(capsys, "configure", str(model_id), *args, "--workspace", ws)
    code, text, _ = run(capsys, "configure", str(model_id), "--show", "--yaml", "--workspace", ws)
    assert code == 0
    assert "\nmax_detections: 3\n" in text and "\n# resize: standard\n" in text
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    keys = ["mean", "class_names", "max_detections"]
    resets = [a for key in keys for a in ("--reset", key)]
    cleared = _json(capsys, "configure", str(model_id), *resets, "--workspace", ws)
    assert cleared["version"] != shown["version"]
    again = _json(capsys, "configure", str(model_id), "--from-file", str(path), "--workspace", ws)
    assert again == shown


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--set", "mean=1,2"], "mean: needs 3 values, one per input channel"),
        (["--set", "format=yolo-seg"], "format: The model cannot be read as yolo-seg"),
        (["--set", "score_threshold=2"], "score_threshold: 2 is out of range"),
        (["--set", "nms_iou=0.5"], "nms_iou applies to YOLO-seg models only"),
        (["--set", "gamma=1"], "Unknown accuracy setting 'gamma'"),
        (["--reset", "gamma"], "Unknown accuracy setting 'gamma'"),
        (["--set", "class_names=one"], "1 names given, but the model has 2 classes"),
    ],
)
def test_a_refused_change_exits_1_naming_the_key_and_stores_nothing(
    capsys: pytest.CaptureFixture[str], ws: str, model_id: int, argv: list[str], reason: str
) -> None:
    code, _, err = run(
        capsys, "configure", str(model_id), "--set", "pad_value=9", *argv, "--workspace", ws
    )
    assert code == 1
    assert reason in err and "Traceback" not in err
    assert _stored(ws, model_id) == {}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("- scale\n", "holds a list, not a mapping of settings"),
        ("scale: [1, 2\n", "is not valid YAML at line"),
        ("scale: 0\n", "scale: 0 is out of range"),
        ("channel_order: BGRA\n", "channel_order: 'BGRA' is not one of: RGB, BGR"),
    ],
)
def test_a_bad_settings_file_is_refused(
    capsys: pytest.CaptureFixture[str],
    ws: str,
    model_id: int,
    tmp_path: Path,
    text: str,
    reason: str,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, _, err = run(
        capsys, "configure", str(model_id), "--from-file", str(path), "--workspace", ws
    )
    assert code == 1
    assert reason in err
    assert _stored(ws, model_id) == {}


def test_configure_refuses_what_is_not_a_model_or_not_key_value(
    capsys: pytest.CaptureFixture[str], ws: str, model_id: int
) -> None:
    code, _, err = run(capsys, "configure", "99", "--workspace", ws)
    assert code == 1 and "No model with id 99" in err
    code, _, err = run(capsys, "configure", "nameless", "--workspace", ws)
    assert code == 1 and "No model named 'nameless'" in err
    code, _, err = run(capsys, "configure", str(model_id), "--set", "scale", "--workspace", ws)
    assert code == 2 and "'scale' is not KEY=VALUE" in err
    code, _, err = run(
        capsys, "configure", str(model_id), "--from-file", "missing.yaml", "--workspace", ws
    )
    assert code == 1 and "No settings file missing.yaml" in err


def test_import_model_flags_store_the_settings(
    capsys: pytest.CaptureFixture[str], ws: str, model_xml: Path
) -> None:
    data = _json(
        capsys,
        "import-model",
        str(model_xml),
        "--rgb",
        "--scale",
        "255",
        "--mean",
        "0,0,1",
        "--resize",
        "letterbox",
        "--format",
        "model-api-maskrcnn",
        "--set",
        "max_detections=1",
        "--workspace",
        ws,
    )
    assert data["format_id"] == "model-api-maskrcnn"
    assert data["accuracy_settings"] == {
        "format": "model-api-maskrcnn",
        "channel_order": "RGB",
        "mean": [0.0, 0.0, 1.0],
        "scale": [255.0, 255.0, 255.0],
        "resize": "letterbox",
        "max_detections": 1,
    }
    shown = _json(capsys, "configure", str(data["id"]), "--workspace", ws)
    assert shown["origins"]["resize"] == "user" and shown["origins"]["pad_value"] == "detected"
    code, out, _ = run(capsys, "show", "model", str(data["id"]), "--workspace", ws)
    assert code == 0
    assert "format      model-api-maskrcnn (set by you; detected omz-maskrcnn)" in out
    assert "settings    set by you: format, channel_order, mean, scale, resize, max_detections" in (
        out
    )


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--mean", "1,2"], "mean: needs 3 values"),
        (["--format", "yolo-seg"], "it has 3 output(s); yolo-seg has two"),
        (["--set", "mask_threshold=1.5"], "mask_threshold: 1.5 is out of range"),
        (["--resize", "crop"], "resize: 'crop' is not one of"),
    ],
)
def test_import_model_refuses_bad_settings_and_imports_nothing(
    capsys: pytest.CaptureFixture[str], ws: str, model_xml: Path, argv: list[str], reason: str
) -> None:
    code, _, err = run(capsys, "import-model", str(model_xml), *argv, "--workspace", ws)
    assert code == 1
    assert reason in err
    with Workspace(Path(ws)) as workspace:
        assert workspace.models() == []
