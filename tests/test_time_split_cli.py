"""The time split and the standalone quantizers on the command line: benchmark, compare,
optimize (text and --json); profiles stored before the split still print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
from cli_run import run_cli
from conftest import write_scene
from split_profiles import FLATTEN_FQ, IDLE_FQ, child_run, parent_run
from tiny_models import build_omz_maskrcnn_conv

from segtui.cli.commands.performance import split_lines
from segtui.core.projects import create_project_from_paths
from segtui.core.runtime_graph import RuntimeProfile, TimeCategory
from segtui.core.workspace import ProjectRecord, Workspace


def _compare(
    capsys: pytest.CaptureFixture[str], ws: Workspace, a: ProjectRecord, *extra: str
) -> str:
    code, text = run_cli(capsys, ["compare", str(a.id), "--workspace", str(ws.root), *extra])
    assert code == 0, text
    return text


def test_compare_prints_the_split_side_by_side(
    capsys: pytest.CaptureFixture[str],
    workspace: Workspace,
    pair: tuple[ProjectRecord, ProjectRecord],
) -> None:
    parent, child = pair
    workspace.add_result(project_id=parent.id, kind="benchmark", data=parent_run())
    workspace.add_result(project_id=child.id, kind="benchmark", data=child_run())
    text = _compare(capsys, workspace, child)
    assert "Where the time goes (best runs, per inference):" in text
    lines = {line.split("  ")[1].strip(): line for line in text.splitlines() if "  " in line}
    # A (the child) at 8 of 20 ms in quantized compute; B (the parent) at none of 40.
    assert lines["quantized compute"].split()[2:] == ["8.00", "40.0%", "0.00", "0.0%"]
    assert lines["float compute"].split()[2:] == ["0.50", "2.5%", "28.00", "70.0%"]
    document = json.loads(_compare(capsys, workspace, child, "--json"))
    rows = {row["category"]: row for row in document["time_split"]}
    assert list(rows) == [str(c) for c in TimeCategory]
    assert rows["geometry"] == {
        "category": "geometry",
        "a_ms": 5.0,
        "b_ms": 5.0,
        "a_share": 0.25,
        "b_share": 0.125,
    }


def test_compare_of_profiles_stored_before_the_split(
    capsys: pytest.CaptureFixture[str],
    workspace: Workspace,
    pair: tuple[ProjectRecord, ProjectRecord],
) -> None:
    parent, child = pair
    workspace.add_result(project_id=parent.id, kind="benchmark", data=parent_run(split=False))
    workspace.add_result(project_id=child.id, kind="benchmark", data=child_run())
    text = _compare(capsys, workspace, child)
    assert "throughput ×2.77" in text and "Where the time goes" not in text
    assert json.loads(_compare(capsys, workspace, child, "--json"))["time_split"] == []


def test_split_lines_name_every_category_and_each_standalone_quantizer() -> None:
    lines = split_lines(cast(RuntimeProfile, child_run()["runtime"]))
    assert lines[0] == "where the time goes, per inference:"
    assert lines[1].split() == ["quantized", "compute", "8.00", "ms", "40.0", "%"]
    assert "standalone quantizers (run as layers of their own): 2" in lines
    assert f"  {FLATTEN_FQ}: 0.800 ms (4.0 %), feeds INT8 compute" in lines
    assert f"  {IDLE_FQ}: 0.200 ms (1.0 %), feeds no INT8 compute" in lines
    assert split_lines({"total_ms": 3.0, "time_by_type_ms": {"Eltwise": 3.0}}) == []


def test_benchmark_prints_the_split(
    capsys: pytest.CaptureFixture[str],
    workspace: Workspace,
    pair: tuple[ProjectRecord, ProjectRecord],
) -> None:
    parent, _ = pair
    argv = ["benchmark", str(parent.id), "--time", "0.5", "--workspace", str(workspace.root)]
    code, text = run_cli(capsys, argv)
    assert code == 0, text
    assert "\n  where the time goes, per inference:\n" in text
    for name in TimeCategory:
        assert f"\n    {name}" in text
    code, text = run_cli(capsys, [*argv, "--json"])
    runtime = json.loads(text[text.index("{") :])["runtime"]
    assert list(runtime["time_split_ms"]) == [str(c) for c in TimeCategory]
    assert sum(runtime["time_split_ms"].values()) == pytest.approx(runtime["total_ms"], abs=1e-3)


@pytest.fixture
def conv_project(tmp_path: Path) -> tuple[Path, int]:
    for i in range(3):
        write_scene(tmp_path / "images" / f"img{i}.png", (48, 64), i)
    model = build_omz_maskrcnn_conv(tmp_path / "m" / "tiny.xml", input_hw=(64, 64))
    root = tmp_path / "ws"
    with Workspace(root) as ws:
        project = create_project_from_paths(
            ws, model_path=model, dataset_path=tmp_path / "images", name="tiny"
        )
    return root, project.id


@pytest.mark.parametrize("keep", [False, True])
def test_optimize_records_and_prints_the_standalone_quantizers(
    capsys: pytest.CaptureFixture[str], conv_project: tuple[Path, int], keep: bool
) -> None:
    root, project = conv_project
    extra = ["--keep-standalone-quantizers"] if keep else []
    argv = ["--workspace", str(root), "optimize", str(project), *extra]
    code, text = run_cli(capsys, argv)
    assert code == 0, text
    with Workspace(root) as ws:
        child = ws.project(int(text.split("Child project ")[1].split(":")[0]))
        record = ws.model(child.model_id).optimization
    assert record is not None
    assert record["drop_standalone_quantizers"] is not keep
    if keep:
        assert "standalone_quantizers" not in record
        assert "Standalone quantizers:" not in text
        return
    # The one standalone quantizer is on the scaled input, and feeds the first convolution.
    found = record["standalone_quantizers"]
    assert found["int8_compute_before"] == found["int8_compute_after"] > 0
    assert (found["found"], found["dropped"], found["restored"]) == (1, [], [])
    assert len(found["kept"]) == 1 and found["kept"][0].endswith("/fq_output_0")
    assert "\nStandalone quantizers: 1 found: 1 kept (feed INT8 compute)" in text
