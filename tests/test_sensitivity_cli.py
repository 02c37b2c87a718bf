"""`segtui sensitivity` and `segtui optimize --keep-float-from` (issue #13), as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_run import run_cli
from conftest import write_scene
from tiny_quant_models import OFFSET_ADD, build_quant_sensitive_maskrcnn

from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.projects import create_project_from_paths
from segtui.core.workspace import ProjectRecord, Workspace

FAST = ["--images", "8", "--score-images", "3"]


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[tuple[Path, ProjectRecord, ProjectRecord]]:
    """A workspace with the tiny model's project and its INT8 child without the scope."""
    model = build_quant_sensitive_maskrcnn(tmp_path / "model" / "tiny.xml")
    for i in range(8):
        write_scene(tmp_path / "images" / f"img{i}.png", (64, 64), i)
    root = tmp_path / "ws"
    with Workspace(root) as ws:
        parent = create_project_from_paths(
            ws, model_path=model, dataset_path=tmp_path / "images", name="tiny"
        )
        child = optimize_project(
            ws, parent.id, OptimizeSettings(auto_ignore=False), tmp_path / "work"
        )
    yield root, parent, child


def _cli(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str]:
    return run_cli(capsys, ["--workspace", str(root), *argv])


def test_json_lists_the_ranked_groups_with_names_for_an_ignored_scope(
    tiny: tuple[Path, ProjectRecord, ProjectRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    root, parent, child = tiny
    code, out = _cli(capsys, root, "sensitivity", str(child.id), *FAST, "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["project_id"] == child.id and data["parent_project_id"] == parent.id
    first = data["groups"][0]
    assert first["fed_layers"] == [OFFSET_ADD] and first["chosen"]
    assert first["metric_change"] >= 20 and first["quantizers"]
    assert data["ignored_scope"]["names"][0] == OFFSET_ADD
    assert data["settings"] == {"images": 8, "top": 24, "score_images": 3, "keep": 10}
    assert isinstance(data["result_id"], int) and isinstance(data["job_id"], int)

    # --stored prints the same analysis again, without a job.
    code, again = _cli(capsys, root, "sensitivity", str(child.id), "--stored", "--json")
    assert code == 0, again
    stored = json.loads(again)
    assert stored["result_id"] == data["result_id"] and stored["job_id"] is None
    assert stored["groups"] == data["groups"]


def test_text_shows_the_table_and_how_to_reoptimize(
    tiny: tuple[Path, ProjectRecord, ProjectRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    root, parent, child = tiny
    code, out = _cli(capsys, root, "sensitivity", str(child.id), *FAST)
    assert code == 0, out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("rank"))
    for word in ("group", "feeds", "error dB", "clipped", "Δ points", "cost ms", "fed layers"):
        assert word in lines[header]
    first = lines[header + 1].split()
    assert first[0] == "1" and first[2] == "*" and first[3] == "Add"
    assert "Add" in lines[header + 1] and lines[header + 1].rstrip().endswith("Add")
    assert "mask AP vs the parent's predictions" in out
    assert f"segtui optimize {parent.id} --keep-float-from " in out


def test_reoptimize_from_the_analysis(
    tiny: tuple[Path, ProjectRecord, ProjectRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    root, parent, child = tiny
    code, out = _cli(capsys, root, "sensitivity", str(child.id), *FAST, "--json")
    assert code == 0, out
    result_id = json.loads(out)["result_id"]
    code, out = _cli(
        capsys,
        root,
        "optimize",
        str(parent.id),
        "--keep-float-from",
        str(result_id),
        "--top",
        "1",
        "--json",
    )
    assert code == 0, out
    made = json.loads(out)
    link = made["optimization"]["keep_float_from"]
    assert link["result_id"] == result_id and link["project_id"] == child.id
    assert link["names"] == [OFFSET_ADD] and len(link["groups"]) == 1
    # The analysed recipe: no automatic scope, as the analysed child was made.
    assert made["optimization"]["auto_ignored_scope"] is False
    assert made["optimization"]["user_ignore_names"] == [OFFSET_ADD]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keep-float-from", "999"], "no sensitivity analysis with result id 999"),
        (["--top", "2"], "--top and --groups choose groups of a sensitivity analysis"),
        (["--groups", "1,2"], "--top and --groups choose groups of a sensitivity analysis"),
    ],
)
def test_reoptimize_refusals(
    tiny: tuple[Path, ProjectRecord, ProjectRecord],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    root, parent, _ = tiny
    code, out = _cli(capsys, root, "optimize", str(parent.id), *argv)
    assert code == 1 and message in out and "Traceback" not in out


def test_reoptimize_refuses_groups_it_does_not_have_and_the_wrong_parent(
    tiny: tuple[Path, ProjectRecord, ProjectRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    root, parent, child = tiny
    code, out = _cli(capsys, root, "sensitivity", str(child.id), *FAST, "--json")
    result_id = str(json.loads(out)["result_id"])
    code, out = _cli(
        capsys, root, "optimize", str(parent.id), "--keep-float-from", result_id, "--groups", "1,99"
    )
    assert code == 1 and "has no group 99" in out
    code, out = _cli(
        capsys,
        root,
        "optimize",
        str(parent.id),
        "--keep-float-from",
        result_id,
        "--top",
        "1",
        "--groups",
        "1",
    )
    assert code == 1 and "cannot be combined" in out
    code, out = _cli(capsys, root, "optimize", str(child.id), "--keep-float-from", result_id)
    assert code == 1 and f"analysed a child of project {parent.id}" in out
    assert f"segtui optimize {parent.id} --keep-float-from {result_id}" in out
    code, out = _cli(
        capsys, root, "optimize", str(parent.id), "--keep-float-from", result_id, "--groups", "x"
    )
    assert code == 2 and "group ids" in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--images", "0"], 2, "--images"),
        (["--top", "9999"], 2, "--top"),
        (["--keep", "abc"], 2, "--keep"),
    ],
)
def test_bad_options_are_refused_by_the_parser(
    tiny: tuple[Path, ProjectRecord, ProjectRecord],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    root, _, child = tiny
    got, out = _cli(capsys, root, "sensitivity", str(child.id), *argv)
    assert got == code and message in out and "Traceback" not in out


def test_a_project_that_is_not_optimized_is_refused_with_a_hint(
    tiny: tuple[Path, ProjectRecord, ProjectRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    root, parent, child = tiny
    code, out = _cli(capsys, root, "sensitivity", str(parent.id))
    assert code == 1 and "not an optimized (INT8) project" in out
    assert f"segtui optimize {parent.id}" in out and "Traceback" not in out
    code, out = _cli(capsys, root, "sensitivity", str(child.id), "--stored")
    assert code == 1 and "no stored sensitivity analysis" in out
    code, out = _cli(capsys, root, "sensitivity", "nope")
    assert code == 1 and "No project named 'nope'" in out
