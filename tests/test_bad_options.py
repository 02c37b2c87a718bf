"""Bad options of every command: refused before any job, with the option, the value and the range.

Each case runs the real `segtui` main function on one shared workspace that holds stored
results; every refusal must name what was wrong, exit non-zero without a traceback, add no
job and leave every stored result as it was.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from cli_run import run_cli
from conftest import write_scene
from tiny_models import Det, build_omz_maskrcnn

from segtui.cli import main
from segtui.core.errors import SegtuiError
from segtui.core.models import import_model
from segtui.core.preflight import check_annotations, check_job
from segtui.core.projects import create_project_from_paths
from segtui.core.records import DatasetAnalysis, JsonObject
from segtui.core.settings import SettingError
from segtui.core.types import DatasetKind, JobKind, ResultKind
from segtui.core.workspace import Workspace

USAGE = 2  # argparse refuses the option itself
REFUSED = 1  # a refusal by segtui (the values are allowed, the request is not)


class Setup(NamedTuple):
    root: Path
    parent: int  # a project with images only
    child: int  # its "optimized" child
    gpu: int  # a project on a device this machine lacks
    scratch: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("bad_options")
    images = tmp / "images"
    for n in range(3):
        write_scene(images / f"{n}.png", (48, 64), n)
    parent_xml = build_omz_maskrcnn(tmp / "parent" / "model.xml", input_hw=(48, 64))
    child_xml = build_omz_maskrcnn(
        tmp / "child" / "model.xml",
        input_hw=(48, 64),
        detections=[Det(0, 0.8, (8.0, 8.0, 40.0, 40.0), "full")],
    )
    with Workspace(tmp / "ws") as ws:
        parent = create_project_from_paths(
            ws, model_path=parent_xml, dataset_path=images, name="Parent"
        )
        child_model = import_model(ws, child_xml, name="Child", optimized_from=parent.model_id)
        child = ws.add_project(
            name="Child",
            model_id=child_model.id,
            dataset_id=parent.dataset_id,
            device="CPU",
            parent_id=parent.id,
        )
        # Added directly: create_project refuses a device this machine lacks, as it should.
        gpu = ws.add_project(
            name="On a GPU", model_id=parent.model_id, dataset_id=parent.dataset_id, device="GPU9"
        )
        for project_id, kind in (
            (child.id, ResultKind.REPORT_PARENT),
            (child.id, ResultKind.SWEEP),
            (parent.id, ResultKind.BENCHMARK),
            (parent.id, ResultKind.SWEEP),
        ):
            ws.add_result(project_id=project_id, kind=kind, data={"stored": str(kind)})
    scratch = tmp / "scratch"
    scratch.mkdir()
    (scratch / "a-file").write_text("not a folder")
    (scratch / "link.json").symlink_to(scratch / "elsewhere.json")
    yield Setup(tmp / "ws", parent.id, child.id, gpu.id, scratch)


class Case(NamedTuple):
    argv: str
    code: int
    #: Each must be in the message (the option, the value, the range or the reason).
    says: tuple[str, ...]


CASES: dict[str, Case] = {
    # sweep: each list checked element by element, the grid bounded.
    "sweep-batch-0": Case("sweep {P} --batch 0", USAGE, ("--batch", "0 is out of range", "1–256")),
    "sweep-streams-0": Case(
        "sweep {P} --streams 0", USAGE, ("--streams", "0 is out of range", "1–256")
    ),
    "sweep-both-0": Case("sweep {P} --batch 0 --streams 0", USAGE, ("--batch", "1–256")),
    "sweep-streams-one-bad": Case(
        "sweep {P} --streams 1,0,2", USAGE, ("--streams", "Streams 0 is out of range", "1–256")
    ),
    "sweep-streams-too-many": Case(
        "sweep {P} --streams 1,300", USAGE, ("--streams", "300 is out of range", "1–256")
    ),
    "sweep-streams-negative": Case(
        "sweep {P} --streams=-2", USAGE, ("--streams", "-2 is out of range")
    ),
    "sweep-streams-twice": Case("sweep {P} --streams 2,2", USAGE, ("--streams", "twice")),
    "sweep-streams-text": Case(
        "sweep {P} --streams 1,x", USAGE, ("--streams", "whole numbers separated by commas")
    ),
    "sweep-streams-empty": Case("sweep {P} --streams ,", USAGE, ("--streams", "at least one")),
    "sweep-time-0": Case("sweep {P} --time 0", USAGE, ("--time", "0 is out of range", "0.5–600 s")),
    "sweep-time-inf": Case("sweep {P} --time inf", USAGE, ("--time", "finite")),
    "sweep-latency-0": Case(
        "sweep {P} --latency-limit 0", USAGE, ("--latency-limit", "above 0 and at most")
    ),
    "sweep-precision": Case("sweep {P} --precision bf17", USAGE, ("--precision", "f32, default")),
    "sweep-grid-too-big": Case(
        "sweep {P} --batch 1,2,3,4,5,6,7,8,9 --streams 1,2,3,4,5,6,7,8",
        REFUSED,
        ("72 cells is too many", "at most 64"),
    ),
    "sweep-gpu-project": Case("sweep {G}", REFUSED, ("GPU9", "does not have", "CPU")),
    # benchmark: batch and streams bounded, the device checked before the job.
    "benchmark-batch-huge": Case(
        "benchmark {P} --batch 100000", USAGE, ("--batch", "100000 is out of range", "1–256")
    ),
    "benchmark-id-huge": Case(
        "benchmark 99999999999999999999", REFUSED, ("No project with id 99999999999999999999",)
    ),
    "benchmark-id-superscript": Case("benchmark ²", REFUSED, ("No project named '²'",)),
    "benchmark-batch-0": Case("benchmark {P} --batch 0", USAGE, ("--batch", "1–256")),
    "benchmark-batch-fraction": Case(
        "benchmark {P} --batch 1.5", USAGE, ("--batch", "whole number", "'1.5'")
    ),
    "benchmark-streams-0": Case("benchmark {P} --streams 0", USAGE, ("--streams", "1–256")),
    "benchmark-requests-0": Case(
        "benchmark {P} --requests 0", USAGE, ("--requests", "0 is out of range", "1–1024")
    ),
    "benchmark-time-short": Case(
        "benchmark {P} --time 0.1", USAGE, ("--time", "0.1 is out of range", "0.5–3600 s")
    ),
    "benchmark-time-nan": Case("benchmark {P} --time nan", USAGE, ("--time", "finite")),
    "benchmark-hint": Case("benchmark {P} --hint fast", USAGE, ("--hint", "THROUGHPUT, LATENCY")),
    "benchmark-gpu-project": Case("benchmark {G}", REFUSED, ("GPU9", "does not have")),
    # predict: limit and threshold bounded; the output path checked before inference.
    "predict-limit-negative": Case(
        "predict {P} --out {S}/p.json --limit -1", USAGE, ("--limit", "-1 is out of range", "0–")
    ),
    "predict-threshold-2": Case(
        "predict {P} --out {S}/p.json --threshold 2", USAGE, ("--threshold", "2 is out of range")
    ),
    "predict-out-folder": Case("predict {P} --out {S}", REFUSED, ("--out", "is a folder")),
    "predict-out-device": Case(
        "predict {P} --out /dev/null", REFUSED, ("--out", "/dev/null", "not a regular file")
    ),
    "predict-out-under-a-file": Case(
        "predict {P} --out {S}/a-file/p.json", REFUSED, ("--out", "a-file is not a folder")
    ),
    "predict-out-missing-folder": Case(
        "predict {P} --out {S}/missing/p.json", REFUSED, ("--out", "missing does not exist")
    ),
    "predict-out-link": Case(
        "predict {P} --out {S}/link.json", REFUSED, ("--out", "symbolic link")
    ),
    "predict-gpu-project": Case("predict {G} --out {S}/p.json", REFUSED, ("GPU9", "does not have")),
    # report: threshold and IoU bounded; no parent and no annotations refused up front.
    "report-threshold-2": Case(
        "report {C} --threshold 2", USAGE, ("--threshold", "2 is out of range", "0–1")
    ),
    "report-threshold-nan": Case("report {C} --threshold nan", USAGE, ("--threshold", "finite")),
    "report-iou-negative": Case(
        "report {C} --iou -1", USAGE, ("--iou", "-1 is out of range", "0.05–0.95")
    ),
    "report-iou-1": Case("report {C} --iou 1", USAGE, ("--iou", "1 is out of range")),
    "report-type": Case(
        "report {C} --type gold", USAGE, ("--type", "'gold' is not one of: parent, annotations")
    ),
    "report-max-drop": Case(
        "report {C} --max-drop -1", USAGE, ("--max-drop", "-1 is out of range", "0–100 points")
    ),
    "report-without-parent": Case(
        "report {P}", REFUSED, ("'Parent' is not an optimized project", "no parent")
    ),
    "report-annotations-without": Case(
        "report {C} --type annotations", REFUSED, ("has no annotations", "type parent")
    ),
    "report-export-under-a-file": Case(
        "report {C} --export {S}/a-file/r", REFUSED, ("--export", "a-file is not a folder")
    ),
    "report-export-link": Case(
        "report {C} --export {S}/link", REFUSED, ("--export", "link.json", "symbolic link")
    ),
    "report-export-empty": Case("report {C} --export=", REFUSED, ("--export needs a path",)),
    # evaluate.
    "evaluate-without-annotations": Case("evaluate {P}", REFUSED, ("has no annotations",)),
    "evaluate-precision": Case("evaluate {P} --precision int4", USAGE, ("--precision", "int4")),
    "evaluate-gpu-project": Case("evaluate {G}", REFUSED, ("GPU9",)),
    # optimize.
    "optimize-subset-0": Case(
        "optimize {P} --subset 0", USAGE, ("--subset", "above 0 and at most 100 %")
    ),
    "optimize-subset-101": Case("optimize {P} --subset 101", USAGE, ("--subset", "101")),
    "optimize-max-drop": Case(
        "optimize {P} --max-drop 50", USAGE, ("--max-drop", "50 is out of range", "0.1–10 points")
    ),
    "optimize-validation-images": Case(
        "optimize {P} --validation-images 0", USAGE, ("--validation-images", "1–10000")
    ),
    "optimize-method": Case(
        "optimize {P} --method fast", USAGE, ("--method", "default, accuracy-aware")
    ),
    "optimize-preset": Case("optimize {P} --preset fastest", USAGE, ("--preset", "fastest")),
    "optimize-gpu-project": Case("optimize {G}", REFUSED, ("GPU9",)),
    "optimize-ignore-unknown-layer": Case(
        "optimize {P} --ignore no/such/layer",
        REFUSED,
        ("--ignore:", "no layer named 'no/such/layer'"),
    ),
    "optimize-ignore-type-misspelt": Case(
        "optimize {P} --ignore-type Convolutoin",
        REFUSED,
        ("--ignore-type:", "no layer of type 'Convolutoin'"),
    ),
    # deploy.
    "deploy-threshold": Case(
        "deploy {P} --threshold 2 --out {S}/d.tar.gz", USAGE, ("--threshold", "0–1")
    ),
}


def _results(ws: Workspace) -> list[tuple[int, str, JsonObject]]:
    return [(r.id, str(r.kind), r.data) for p in ws.projects() for r in ws.results(p.id)]


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_a_bad_option_is_refused_before_any_job(
    case: Case, setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    with Workspace(setup.root) as ws:
        before = _results(ws)
        assert before and ws.jobs() == []
    argv = case.argv.format(P=setup.parent, C=setup.child, G=setup.gpu, S=setup.scratch).split()
    code, text = run_cli(capsys, [*argv, "--workspace", str(setup.root)])
    assert code == case.code, text
    for fragment in case.says:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert "Traceback" not in text
    # The message is one clear line (argparse's usage aside), never a library's.
    assert "segtui" in text.splitlines()[-1] and "error" in text.splitlines()[-1]
    with Workspace(setup.root) as ws:
        assert ws.jobs() == []
        assert _results(ws) == before
    assert sorted(p.name for p in setup.scratch.iterdir()) == ["a-file", "link.json"]


def test_the_corpus_covers_every_job_command() -> None:
    commands = {case.argv.split()[0] for case in CASES.values()}
    assert commands == {"sweep", "benchmark", "predict", "report", "evaluate", "optimize", "deploy"}
    assert len(CASES) >= 30


def test_preflight_refuses_bad_params_from_any_caller(setup: Setup) -> None:
    """The TUI and scripts submit through the same checks as the command line."""
    with Workspace(setup.root) as ws:
        with pytest.raises(SegtuiError, match=r"Batch sizes 0 is out of range: use 1–256"):
            check_job(ws, JobKind.SWEEP, setup.parent, {"batches": [0], "streams": [1]})
        with pytest.raises(SegtuiError, match="72 cells is too many"):
            check_job(
                ws,
                JobKind.SWEEP,
                setup.parent,
                {"batches": list(range(1, 10)), "streams": list(range(1, 9))},
            )
        with pytest.raises(SegtuiError, match=r"Match IoU -1 is out of range: use 0\.05–0\.95"):
            check_job(ws, JobKind.REPORT, setup.child, {"type": "parent", "iou": -1})
        with pytest.raises(SegtuiError, match="runs on GPU9, which this machine does not have"):
            check_job(ws, JobKind.BENCHMARK, setup.gpu, {})
        assert check_job(ws, JobKind.REPORT, setup.child, {"type": "PARENT"}).id == setup.child
        # Names and types the model has pass; one it lacks is named.
        xml = ws.model(ws.project(setup.parent).model_id).xml_path
        layer = next(ET.parse(xml).iter("layer"))
        real = {"ignore_names": [layer.get("name")], "ignore_types": [layer.get("type")]}
        assert check_job(ws, JobKind.OPTIMIZE, setup.parent, real).id == setup.parent
        with pytest.raises(SegtuiError, match=r"no layer of type 'Nope' to keep") as info:
            check_job(ws, JobKind.OPTIMIZE, setup.parent, {**real, "ignore_types": ["Nope"]})
        assert isinstance(info.value, SettingError) and info.value.field == "ignore_types"
        assert ws.jobs() == []


def test_an_annotations_file_without_annotations_is_refused(setup: Setup) -> None:
    with Workspace(setup.root) as ws:
        images = ws.dataset(ws.project(setup.parent).dataset_id)
    with pytest.raises(SegtuiError, match="has no annotations"):
        check_annotations(images, "hint")
    analysis: DatasetAnalysis = {**images.analysis, "annotation_count": 0}
    empty_coco = dataclasses.replace(
        images, kind=DatasetKind.COCO, annotations=setup.scratch / "a-file", analysis=analysis
    )
    with pytest.raises(SegtuiError, match="COCO file without a single annotation") as info:
        check_annotations(empty_coco, "Import another file.")
    assert "holds the annotations" in info.value.hint
    gone = dataclasses.replace(
        empty_coco, analysis={**analysis, "annotation_count": 3}, annotations=setup.scratch / "x"
    )
    with pytest.raises(SegtuiError, match=r"annotations of dataset .* are missing"):
        check_annotations(gone, "")


def test_a_project_whose_model_files_are_gone_is_refused(
    workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    write_scene(images / "a.png", (48, 64), 1)
    xml = build_omz_maskrcnn(tmp_path / "m" / "model.xml", input_hw=(48, 64))
    project = create_project_from_paths(workspace, model_path=xml, dataset_path=images)
    workspace.model(project.model_id).xml_path.unlink()
    argv = ["benchmark", str(project.id), "--workspace", str(workspace.root)]
    code, text = run_cli(capsys, argv)
    assert code == REFUSED and "Traceback" not in text
    assert f"The files of model {project.model_id}" in text and "missing" in text
    assert workspace.jobs() == []


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("random.onnx", "random", "random.onnx is not a readable ONNX model"),
        ("empty.onnx", "empty", "empty.onnx is not a readable ONNX model"),
        ("loop.xml", "loop", "loop.xml is a symbolic link that loops back on itself"),
        ("a.xml", "chain", "a.xml is a symbolic link that loops back on itself"),
        ("dangling.xml", "dangling", "is a symbolic link to nowhere/m.xml, which does not exist"),
    ],
)
def test_a_bad_model_file_gets_one_clean_message(
    name: str, make: str, says: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    if make == "random":
        path.write_bytes(bytes(range(256)) * 12)
    elif make == "empty":
        path.write_bytes(b"")
    elif make == "loop":
        path.symlink_to(path.name)
    elif make == "chain":
        path.symlink_to("b.xml")
        (tmp_path / "b.xml").symlink_to("a.xml")
    else:
        path.symlink_to("nowhere/m.xml")
    code = main(["import-model", str(path), "--workspace", str(tmp_path / "ws")])
    out, err = capfd.readouterr()  # the file descriptors: a C++ library writes to fd 2
    assert code == REFUSED
    assert says in err
    # One line: no absl/TensorFlow-frontend noise before it, no traceback.
    assert err.count("\n") == 1 and err.startswith("segtui: error:"), err
    assert "No such file" not in err and out == ""
    with Workspace(tmp_path / "ws") as ws:
        assert ws.models() == []
