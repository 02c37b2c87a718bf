"""The scriptable command line: JSON output, exit codes, one-line messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from tiny_models import Det, build_classifier, build_omz_maskrcnn

from segtui.cli import main
from segtui.cli.commands import accuracy as accuracy_commands
from segtui.core.records import JsonObject
from segtui.core.types import ResultKind
from segtui.core.workspace import Workspace


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def model_xml(tmp_path: Path) -> Path:
    # Input 48x64 (h, w); the image_folder images are 48x64, 60x40 and 32x32.
    return build_omz_maskrcnn(
        tmp_path / "m" / "model.xml",
        input_hw=(48, 64),
        detections=[Det(1, 0.9, (16.0, 12.0, 48.0, 36.0), "full")],
        labels=["circle", "square"],
    )


def test_import_show_and_list_models(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_xml: Path
) -> None:
    ws = str(tmp_path / "ws")
    code, out, _ = run(capsys, "import-model", str(model_xml), "--workspace", ws, "--json")
    assert code == 0
    model_id = json.loads(out)["id"]
    code, out, _ = run(capsys, "show", "model", str(model_id), "--workspace", ws)
    assert code == 0
    assert "OMZ Mask R-CNN" in out and "omz-maskrcnn" in out
    assert "input       image [1,3,48,64] f32" in out
    assert "output      masks [3,28,28] f32" in out
    assert "GFLOPs" in out and "parameters" in out
    code, out, _ = run(capsys, "list", "models", "--workspace", ws, "--json")
    assert [m["id"] for m in json.loads(out)] == [model_id]


def test_create_project_predict_writes_coco_results(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_xml: Path, image_folder: Path
) -> None:
    ws = str(tmp_path / "ws")
    code, out, _ = run(
        capsys, "create-project", str(model_xml), str(image_folder), "--workspace", ws, "--json"
    )
    assert code == 0
    summary = json.loads(out)
    assert (
        summary["dataset"]["image_count"] == 3 and summary["model"]["format_id"] == "omz-maskrcnn"
    )
    project_id = summary["project"]["id"]
    results = tmp_path / "results.json"
    code, out, _ = run(
        capsys, "predict", str(project_id), "--out", str(results), "--workspace", ws, "--json"
    )
    assert code == 0 and json.loads(out)["precision"] == "f32"
    entries = json.loads(results.read_text())
    by_file = {e["file_name"]: e for e in entries}
    assert set(by_file) == {"a.png", "b.jpg", "sub/c.bmp"}
    # a.png is 48x64 like the input: the box comes back unchanged; b.jpg is 60x40 (h, w).
    assert by_file["a.png"]["bbox"] == pytest.approx([16.0, 12.0, 32.0, 24.0], abs=1e-3)
    assert by_file["b.jpg"]["bbox"] == pytest.approx([10.0, 15.0, 20.0, 30.0], abs=1e-3)
    assert all(e["category_id"] == 2 and e["score"] == pytest.approx(0.9) for e in entries)
    code, out, _ = run(capsys, "list", "--workspace", ws)
    header, rule, row = out.splitlines()
    assert code == 0 and header.split() == [
        "id",
        "name",
        "model",
        "dataset",
        "images",
        "device",
        "parent",
        "status",
        "best",
        "fps",
    ]
    assert set(rule.strip()) == {"─"}
    assert row.split()[0] == str(project_id) and " 3 " in row and "CPU" in row
    assert row.split()[-2:] == ["ready", "–"]  # no benchmark yet
    code, out, _ = run(capsys, "list", "--workspace", ws, "--json")
    (listed,) = json.loads(out)
    assert listed["id"] == project_id and listed["images"] == 3 and listed["status"] == "ready"
    assert listed["format_id"] == "omz-maskrcnn" and listed["parent_id"] is None


def test_failures_exit_non_zero_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = str(tmp_path / "ws")
    code, out, err = run(
        capsys,
        "import-model",
        str(build_classifier(tmp_path / "c" / "model.xml")),
        "--workspace",
        ws,
    )
    assert code == 1 and out == ""
    assert (
        err.startswith("segtui: error: Not an instance-segmentation model") and err.count("\n") == 1
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(capsys, "import-dataset", str(empty), "--workspace", ws, "--json")
    assert code == 1 and "no readable images" in json.loads(out)["error"]
    code, _, err = run(capsys, "show", "project", "99", "--workspace", ws)
    assert code == 1 and "No project with id 99" in err
    code, _, _ = run(capsys, "list", "--workspace", ws, "--json")
    assert code == 0


def test_console_entry_point_runs_as_a_module(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "segtui", "list", "devices", "--workspace", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "CPU" in proc.stdout.split()


def test_deploy_writes_a_package_and_refuses_to_overwrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_xml: Path, image_folder: Path
) -> None:
    ws = str(tmp_path / "ws")
    code, out, _ = run(
        capsys, "create-project", str(model_xml), str(image_folder), "--workspace", ws, "--json"
    )
    project_id = str(json.loads(out)["project"]["id"])
    target = tmp_path / "pkg.tar.gz"
    code, out, _ = run(
        capsys, "deploy", project_id, "--out", str(target), "--workspace", ws, "--json"
    )
    assert code == 0 and target.is_file()
    data = json.loads(out)
    assert data["size_bytes"] == target.stat().st_size and "infer.py" in data["files"]
    code, out, err = run(capsys, "deploy", project_id, "--out", str(target), "--workspace", ws)
    assert code == 1 and out == ""
    assert err.strip() == (
        f"segtui: error: {target} already exists. Choose another file name, or remove it "
        "first (segtui deploy --force overwrites)."
    )
    code, _, err = run(capsys, "deploy", project_id, "--with-parent", "--workspace", ws)
    assert code == 1 and "has no parent model" in err


def _stored_parent_report(project_id: int) -> JsonObject:
    """A parent-type report as the database holds it: A matches B with mask AP 0.75."""
    totals = {"images": 3, "images_without_instances": 1, "images_differ": 1}
    summary = {
        "type": "parent",
        "threshold": 0.1,
        "iou": 0.5,
        "precision": "f32",
        "requested_precision": "f32",
        "device": "CPU",
        "project_id": project_id,
        "parent_project_id": None,
        "inference_seconds": 1.0,
        "a_vs_b": {"mask_ap": 0.75, "box_ap": 0.8},
        "totals": totals | {"a": 2, "b": 2, "matches": 1},
    }
    return {"summary": summary, "basic": [], "advanced": []}


def test_report_max_drop_gate_exits_1_with_the_report_as_the_only_json(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model_xml: Path,
    image_folder: Path,
) -> None:
    ws = str(tmp_path / "ws")
    code, out, _ = run(
        capsys, "create-project", str(model_xml), str(image_folder), "--workspace", ws, "--json"
    )
    project_id = json.loads(out)["project"]["id"]
    with Workspace(Path(ws)) as workspace:
        stored = workspace.add_result(
            project_id=project_id,
            kind=ResultKind.REPORT_PARENT,
            data=_stored_parent_report(project_id),
        )

    def finished_report_job(*_: object) -> SimpleNamespace:
        # The gate is under test, not the job: it "wrote" the stored report.
        return SimpleNamespace(id=1, result={"result_id": stored.id})

    monkeypatch.setattr(accuracy_commands, "run_job", finished_report_job)
    # Nor the checks before the job (this project has no parent to make a report against).
    monkeypatch.setattr(accuracy_commands, "check_job", lambda *_: None)
    argv = ["report", str(project_id), "--workspace", ws, "--json", "--max-drop"]
    code, out, err = run(capsys, *argv, "10")
    assert code == 1
    document = json.loads(out)  # one JSON document on stdout: the report's
    assert (document["result_id"], document["mask_ap_drop"]) == (stored.id, 25.0)
    assert err == "segtui: mask AP drop 25.00 points exceeds --max-drop 10.0\n"
    code, out, err = run(capsys, *argv, "25")
    assert code == 0 and json.loads(out)["mask_ap_drop"] == 25.0 and err == ""


def test_a_reader_that_goes_away_ends_the_command_quietly_with_141(tmp_path: Path) -> None:
    """`segtui list --json | head`: the pipe closes before segtui writes; no traceback."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes anything
    try:
        done = subprocess.run(
            [sys.executable, "-m", "segtui", "--workspace", str(tmp_path / "ws"), "list", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_create_project_takes_any_mix_of_ids_names_and_paths(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_xml: Path, image_folder: Path
) -> None:
    ws = str(tmp_path / "ws")

    def create(model: str, dataset: str, device: str) -> tuple[int, dict[str, object]]:
        code, out, err = run(
            capsys, "create-project", model, dataset, "--device", device, "--workspace", ws,
            "--json", "--name", f"p-{device}-{model[:4]}",
        )  # fmt: skip
        return code, (json.loads(out) if code == 0 else {"error": err})

    code, first = create(str(model_xml), str(image_folder), "CPU")  # path + path
    assert code == 0, first
    model_name = json.loads(run(capsys, "list", "models", "--workspace", ws, "--json")[1])[0]
    dataset = json.loads(run(capsys, "list", "datasets", "--workspace", ws, "--json")[1])[0]
    # The same model and dataset by name, and by id + name: the duplicate is refused, which
    # shows both were found as the registered ones (not read as paths).
    for model, data in (
        (model_name["name"], dataset["name"]),
        (str(model_name["id"]), dataset["name"]),
    ):
        code, out = create(model, data, "CPU")
        assert code == 1 and "already has this model, dataset and device" in str(out["error"])
    # A name with a path: the registered model, the folder imported as a dataset again.
    code, out = create(model_name["name"], str(image_folder), "CPU")
    assert code == 0, out
    model_json = out["model"]
    assert isinstance(model_json, dict) and model_json["id"] == model_name["id"]
    code, _out, err = run(
        capsys, "create-project", "no such model", dataset["name"], "--workspace", ws
    )
    assert code == 1 and "no model of that name" in err and "Traceback" not in err
