"""Bad inputs to import-model, import-dataset, create-project, show and list: each refused cleanly.

Each case runs the real `segtui` main function on one shared workspace that holds a model,
its optimized child, a dataset and a project; every refusal must say what was wrong and what
to do, exit non-zero without a traceback, and leave the workspace's rows and files as they were.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from cli_run import run_cli
from conftest import write_scene
from tiny_models import build_classifier, build_dynamic, build_omz_maskrcnn, build_omz_maskrcnn_conv

from segtui.core import import_checks
from segtui.core.errors import SegtuiError
from segtui.core.models import import_model
from segtui.core.projects import create_project_from_paths
from segtui.core.workspace import Workspace
from segtui.ui.screens.create_project import parse_input_shape

USAGE = 2  # argparse refuses the value itself
REFUSED = 1  # segtui refuses the request


class Setup(NamedTuple):
    root: Path
    files: Path  # the inputs the cases name


def _write_inputs(files: Path) -> None:
    """Models, class-name files and folders, good and bad, for the cases to name."""
    build_omz_maskrcnn(files / "m" / "model.xml", input_hw=(48, 64), labels=["cat", "dog"])
    build_dynamic(files / "dyn" / "model.xml")
    build_omz_maskrcnn_conv(files / "conv" / "model.xml", input_hw=(64, 64))
    build_classifier(files / "cls" / "model.xml")
    for name, change in (
        ("nobin", lambda b: b.unlink()),
        ("trunc", lambda b: b.write_bytes(b.read_bytes()[:100])),
        ("bigbin", lambda b: b.write_bytes(b.read_bytes() + bytes(64))),
        ("bindir", lambda b: (b.unlink(), b.mkdir())),
    ):
        shutil.copytree(files / "m", files / name)
        change(files / name / "model.bin")
    shutil.copytree(files / "m", files / "two")
    shutil.copyfile(files / "m" / "model.xml", files / "two" / "other.xml")
    (files / "empty").mkdir()
    (files / "noversion.xml").write_text('<net name="x"><layers><layer id="0"/></layers></net>')
    (files / "future.xml").write_text('<net name="x" version="99"><layers/></net>')
    (files / "weights.pt").write_bytes(b"PK\x03\x04")
    os.mkfifo(files / "fifo.xml")
    os.mkfifo(files / "fifo.txt")
    texts = {
        "empty.txt": b"",
        "blank.txt": b"\n  \n\t\n",
        "binary.txt": b"cat\x00dog\n",
        "latin1.txt": "chat\nchien\nb\xe9b\xe9\n".encode("latin-1"),
        "dup.txt": b"cat\ndog\ncat\n",
        "three.txt": b"a\nb\nc\n",
        "escape.txt": b"cat\nd\x1bog\n",
        "huge.txt": b"x\n" * (import_checks.MAX_CLASS_FILE_BYTES // 2 + 1),
    }
    for name, raw in texts.items():
        (files / name).write_bytes(raw)
    for n in range(2):
        write_scene(files / "images" / f"{n}.png", (48, 64), n)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("bad_imports")
    files = tmp / "files"
    _write_inputs(files)
    with Workspace(tmp / "ws") as ws:
        project = create_project_from_paths(
            ws, model_path=files / "m" / "model.xml", dataset_path=files / "images"
        )
        assert (project.id, project.model_id, project.dataset_id) == (1, 1, 1)
        child = import_model(ws, files / "m" / "model.xml", name="INT8", optimized_from=1)
        assert child.id == 2
    yield Setup(tmp / "ws", files)


class Case(NamedTuple):
    argv: tuple[str, ...]
    code: int
    #: Each must be in the output: what was wrong, and what to do.
    says: tuple[str, ...]


def _case(argv: str, code: int, *says: str) -> Case:
    return Case(tuple(argv.split()), code, says)


SHAPE_HINT = "Give 1,3,H,W with H and W from 16 to 8192"

CASES: dict[str, Case] = {
    # --input-shape: judged against the model's image input, before any reshape.
    "shape-0-0": _case(
        "import-model {F}/m/model.xml --input-shape 0,0",
        REFUSED,
        "0,0 has 2 dimension(s)",
        "model.xml's image input is [1,3,48,64] (N,C,H,W)",
        SHAPE_HINT,
    ),
    "shape-negative": _case(
        "import-model {F}/dyn/model.xml --input-shape -1,3,64,64",
        REFUSED,
        "-1,3,64,64 has -1 as N",
        "at least 1",
        "[1,3,?,?]",
        SHAPE_HINT,
    ),
    "shape-negative-x": _case(
        "import-model {F}/dyn/model.xml --input-shape -1x3x64x64", REFUSED, "-1 as N", SHAPE_HINT
    ),
    "shape-zero-sides": _case(
        "import-model {F}/dyn/model.xml --input-shape 1,3,0,0", REFUSED, "0 as H", SHAPE_HINT
    ),
    "shape-side-too-big": _case(
        "import-model {F}/dyn/model.xml --input-shape 1,3,100000,64",
        REFUSED,
        "100,000 as H",
        "at most 8192",
    ),
    "shape-too-many-pixels": _case(
        "import-model {F}/dyn/model.xml --input-shape 1,3,8192,8192",
        REFUSED,
        "67 million pixels",
        "at most 33.6 million",
    ),
    "shape-batch": _case(
        "import-model {F}/dyn/model.xml --input-shape 2,3,64,64",
        REFUSED,
        "batch of 2",
        "N must be 1",
    ),
    "shape-channels": _case(
        "import-model {F}/dyn/model.xml --input-shape 1,4,64,64",
        REFUSED,
        "4 channel(s)",
        "takes 3",
    ),
    "shape-tiny": _case(
        "import-model {F}/dyn/model.xml --input-shape 1,3,8,8", REFUSED, "8 as H", "at least 16"
    ),
    "shape-words": _case(
        "import-model {F}/dyn/model.xml --input-shape 1,3,a,b",
        USAGE,
        "--input-shape",
        "'a' is not one",
        "whole numbers separated by commas",
    ),
    "shape-empty": _case(
        "import-model {F}/dyn/model.xml --input-shape=", USAGE, "--input-shape", "is empty"
    ),
    "shape-layers-refuse": _case(
        "import-model {F}/conv/model.xml --input-shape 1,3,128,128",
        REFUSED,
        "cannot take the input shape 1,3,128,128",
        "layer Reshape_",
        "is incompatible with input shape",
        "exported as [1,3,64,64]",
    ),
    # --name of import-model, import-dataset and create-project.
    "name-empty": _case(
        "import-model {F}/conv/model.xml --name=", REFUSED, "--name is empty", "leave it out"
    ),
    "dataset-name-empty": _case(
        "import-dataset {F}/images --name=", REFUSED, "--name is empty", "leave it out"
    ),
    "project-name-empty": _case(
        "create-project 1 {F}/images --name=", REFUSED, "--name is empty", "leave it out"
    ),
    # --classes: read and judged before the model.
    "classes-missing": _case(
        "import-model {F}/conv/model.xml --classes {F}/nope.txt",
        REFUSED,
        "nope.txt cannot be read (no such file)",
        "one class name per line",
    ),
    "classes-empty": _case(
        "import-model {F}/conv/model.xml --classes {F}/empty.txt",
        REFUSED,
        "holds no names",
        "one name per line",
    ),
    "classes-blank-lines": _case(
        "import-model {F}/conv/model.xml --classes {F}/blank.txt", REFUSED, "holds no names"
    ),
    "classes-binary": _case(
        "import-model {F}/conv/model.xml --classes {F}/binary.txt",
        REFUSED,
        "is not a text file (it holds binary data)",
        "UTF-8",
    ),
    "classes-not-utf8": _case(
        "import-model {F}/conv/model.xml --classes {F}/latin1.txt",
        REFUSED,
        "is not UTF-8 text (byte 0xe9",
    ),
    "classes-duplicate": _case(
        "import-model {F}/conv/model.xml --classes {F}/dup.txt",
        REFUSED,
        "names the class 'cat' twice (lines 1 and 3)",
        "Each class needs its own name",
    ),
    "classes-count": _case(
        "import-model {F}/m/model.xml --classes {F}/three.txt",
        REFUSED,
        "3 class names were given, but model.xml predicts 2 class(es)",
        "its own labels are cat, dog",
        "Give 2 names",
    ),
    "classes-control-character": _case(
        "import-model {F}/conv/model.xml --classes {F}/escape.txt",
        REFUSED,
        "Line 2 of",
        "control character '\\x1b'",
    ),
    "classes-folder": _case(
        "import-model {F}/conv/model.xml --classes {F}/empty",
        REFUSED,
        "is not a regular file (a folder)",
    ),
    "classes-fifo": _case(
        "import-model {F}/conv/model.xml --classes {F}/fifo.txt",
        REFUSED,
        "is not a regular file (a device, a pipe or a socket)",
    ),
    "classes-huge": _case(
        "import-model {F}/conv/model.xml --classes {F}/huge.txt",
        REFUSED,
        "too large for a list of class names",
    ),
    # The model file itself.
    "model-empty-folder": _case(
        "import-model {F}/empty", REFUSED, "folder with 0 model files", "Pass the model's .xml"
    ),
    "model-folder-of-two": _case(
        "import-model {F}/two", REFUSED, "folder with 2 model files (model.xml, other.xml)"
    ),
    "model-bin": _case(
        "import-model {F}/m/model.bin", REFUSED, "weights file of an IR", "Pass model.xml"
    ),
    "model-bin-missing": _case(
        "import-model {F}/nobin/model.xml", REFUSED, "model.bin is missing", "Keep the .bin"
    ),
    "model-bin-truncated": _case(
        "import-model {F}/trunc/model.xml", REFUSED, "model.bin is truncated", "Copy the .bin"
    ),
    "model-bin-too-big": _case(
        "import-model {F}/bigbin/model.xml",
        REFUSED,
        "does not belong to model.xml",
        "saved together",
    ),
    "model-bin-folder": _case(
        "import-model {F}/bindir/model.xml", REFUSED, "model.bin is not a regular file (a folder)"
    ),
    "model-fifo": _case(
        "import-model {F}/fifo.xml", REFUSED, "fifo.xml is not a regular file", "Pass the model's"
    ),
    "model-empty-path": _case("import-model =", REFUSED),  # replaced below: an empty argument
    "model-missing": _case("import-model {F}/nope.xml", REFUSED, "No such file", "Check the path"),
    "model-unknown-type": _case(
        "import-model {F}/weights.pt", REFUSED, "unknown model file type .pt", "ONNX (.onnx)"
    ),
    "model-ir-without-version": _case(
        "import-model {F}/noversion.xml", REFUSED, "its IR version is missing", "ovc"
    ),
    "model-ir-future-version": _case(
        "import-model {F}/future.xml", REFUSED, "its IR version is 99", "ovc"
    ),
    "model-classifier": _case(
        "import-model {F}/cls/model.xml",
        REFUSED,
        "Not an instance-segmentation model segtui can read",
        "outputs prob[1,1000] f32",
        "Export the model in one of these formats",
    ),
    "dataset-empty-path": _case("import-dataset =", REFUSED),  # replaced below
    # create-project: ids or paths, said which was tried; nothing identical created twice.
    "project-exists": _case(
        "create-project 1 1",
        REFUSED,
        "Project 1 (model · images) already has this model, dataset and device (CPU)",
        "segtui show 1",
    ),
    "project-exists-same-shape": _case(
        "create-project 1 1 --input-shape 1,3,48,64", REFUSED, "Project 1", "already has"
    ),
    "project-shape-0-0": _case(
        "create-project 1 1 --input-shape 0,0",
        REFUSED,
        "0,0 has 2 dimension(s)",
        "model 1's image input is [1,3,48,64]",
    ),
    "project-shape-wide": _case(
        "create-project 1 {F}/images --input-shape 1,3,16,10000", REFUSED, "10,000 as W"
    ),
    "project-no-model-9": _case(
        "create-project 9 {F}/images",
        REFUSED,
        "No model with id 9, and no file or folder named '9'",
        "segtui list models",
    ),
    "project-no-dataset-9": _case(
        "create-project {F}/conv/model.xml 9",
        REFUSED,
        "No dataset with id 9, and no file or folder named '9'",
        "segtui list datasets",
    ),
    "project-model-id-dataset-missing": _case(
        "create-project 1 {F}/file.json", REFUSED, "No such file or folder", "file.json"
    ),
    "project-images-with-id": _case(
        "create-project 1 1 --images {F}/images",
        REFUSED,
        "dataset 1 is already imported",
        "Leave out the images folder",
    ),
    "project-reshape-optimized": _case(
        "create-project 2 1 --input-shape 1,3,64,64",
        REFUSED,
        "Model 2 (INT8) is the optimized form of model 1",
        "then optimize",
    ),
    "project-unsupported-model": _case(
        "create-project {F}/cls/model.xml {F}/images",
        REFUSED,
        "Not an instance-segmentation model",
    ),
    "project-device": _case("create-project 1 1 --device NPU9", REFUSED, "NPU9", "Available"),
    # show and list.
    "show-model-999": _case("show model 999", REFUSED, "No model with id 999", "list models"),
    "show-model-huge": _case(
        "show model 99999999999999999999999", REFUSED, "No model with id 9999"
    ),
    "show-dataset-abc": _case(
        "show dataset abc", REFUSED, "'abc' is not a dataset id", "segtui list datasets"
    ),
    "show-project-huge": _case(
        "show project 99999999999999999999999", REFUSED, "No project with id 9999", "segtui list"
    ),
    "show-project-nope": _case("show project nope", REFUSED, "No project named 'nope'"),
    "list-foo": _case(
        "list foo", USAGE, "invalid choice: 'foo'", "choose from 'projects', 'models'"
    ),
}

# Values that a shell would pass as one argument, with blanks or control characters.
CASES["model-empty-path"] = Case(("import-model", ""), REFUSED, ("model path is empty",))
CASES["dataset-empty-path"] = Case(("import-dataset", ""), REFUSED, ("dataset path is empty",))
for _key, _name, _says in (
    ("name-blank", "   ", "--name is only blanks"),
    ("name-escape", "a\x1b[31mred", "control character '\\x1b' (character 2)"),
    ("name-newline", "two\nlines", "control character '\\n'"),
    ("name-bidi", "abc\u202egpj.exe", "control character '\\u202e'"),
    ("name-too-long", "x" * 201, "201 characters long: at most 200"),
):
    CASES[_key] = Case(("import-model", "{F}/conv/model.xml", "--name", _name), REFUSED, (_says,))


def _state(root: Path) -> tuple[object, ...]:
    """The workspace's rows (models, datasets, projects, jobs) and its files."""
    with Workspace(root) as ws:
        rows = (
            [(m.id, m.name, m.class_names) for m in ws.models()],
            [(d.id, d.name) for d in ws.datasets()],
            [(p.id, p.name, p.model_id, p.dataset_id, p.device) for p in ws.projects()],
            [j.id for j in ws.jobs()],
        )
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith("segtui.db")
    )
    return (*rows, files)


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_a_bad_import_is_refused_and_changes_nothing(
    case: Case, setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _state(setup.root)
    argv = [arg.replace("{F}", str(setup.files)) for arg in case.argv]
    code, text = run_cli(capsys, [*argv, "--workspace", str(setup.root)])
    assert code == case.code, text
    for fragment in case.says:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert "Traceback" not in text and "Unexpected error" not in text
    assert ".cpp" not in text and "Exception from" not in text  # never OpenVINO's raw message
    last = text.splitlines()[-1]
    assert last.startswith("segtui") and "error" in last, text
    assert _state(setup.root) == before


def test_the_corpus_is_large_and_covers_every_import_command() -> None:
    commands = {case.argv[0] for case in CASES.values()}
    assert commands == {"import-model", "import-dataset", "create-project", "show", "list"}
    assert len(CASES) >= 60


def _refuse_reading(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """`target` unreadable: chmod where that binds, else (root reads anything) os.open refuses."""
    if os.geteuid() != 0:
        target.chmod(0)
        return
    real_open = os.open

    def guarded(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
        if Path(path) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)


@pytest.mark.parametrize("which", ["model.xml", "model.bin", "classes.txt"])
def test_an_unreadable_file_is_named(
    which: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = build_omz_maskrcnn(tmp_path / "m" / "model.xml", input_hw=(48, 64), labels=["a", "b"])
    (tmp_path / "m" / "classes.txt").write_text("one\ntwo\n")
    root = tmp_path / "ws"
    Workspace(root).close()
    before = _state(root)
    _refuse_reading(monkeypatch, tmp_path / "m" / which)
    argv = ["import-model", str(xml), "--classes", str(tmp_path / "m" / "classes.txt")]
    code, text = run_cli(capsys, [*argv, "--workspace", str(root)])
    monkeypatch.undo()
    assert code == REFUSED and "Traceback" not in text
    assert f"{which} cannot be read (permission denied)" in text
    assert "permissions" in text or "one class name per line" in text
    assert _state(root) == before


def test_an_existing_model_is_said_and_a_reshape_makes_a_new_one_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xml = build_omz_maskrcnn(tmp_path / "m" / "model.xml", input_hw=(48, 64), labels=["a", "b"])
    write_scene(tmp_path / "images" / "a.png", (48, 64), 1)
    ws = ["--workspace", str(tmp_path / "ws")]
    assert run_cli(capsys, ["import-model", str(xml), *ws])[0] == 0
    # The model's own size is no reshape: the same model, and the user is told.
    code, text = run_cli(capsys, ["import-model", str(xml), "--input-shape", "1,3,48,64", *ws])
    assert code == 0 and "already in the workspace as model 1 (model)" in text
    assert run_cli(capsys, ["import-dataset", str(tmp_path / "images"), *ws])[0] == 0
    assert run_cli(capsys, ["create-project", "1", "1", *ws])[0] == 0
    # Another size on a registered model: a reshaped model and a second project, once.
    code, text = run_cli(capsys, ["create-project", "1", "1", "--input-shape", "1,3,64,64", *ws])
    assert code == 0 and "Project 2: model 64x64 · images (CPU)" in text
    code, text = run_cli(capsys, ["create-project", "1", "1", "--input-shape", "1,3,64,64", *ws])
    assert code == REFUSED and "Project 2 (model 64x64 · images) already has" in text
    with Workspace(tmp_path / "ws") as workspace:
        models = workspace.models()
        assert [(m.id, m.name) for m in models] == [(1, "model"), (2, "model 64x64")]
        assert models[1].analysis["inputs"][0]["shape"] == [1, 3, 64, 64]
        assert models[1].class_names == ["a", "b"]
        assert len(workspace.projects()) == 2


def test_an_argument_that_is_both_an_id_and_a_path_says_which_it_is_read_as(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build_omz_maskrcnn(tmp_path / "1" / "model.xml", input_hw=(48, 64))
    write_scene(tmp_path / "images" / "a.png", (48, 64), 1)
    monkeypatch.chdir(tmp_path)
    ws = ["--workspace", "ws"]
    # No model 1 yet: '1' is the folder.
    code, text = run_cli(capsys, ["create-project", "1", "images", *ws])
    assert code == 0 and "Project 1: model · images" in text, text
    # Model 1 now exists: the id is taken, and the user is told how to name the folder.
    code, text = run_cli(capsys, ["create-project", "1", "images", "--device", "CPU", *ws])
    assert code == 0 and "'1' is read as model id 1; write ./1 for the file." in text
    code, text = run_cli(capsys, ["create-project", "./1", "images", *ws])
    assert code == 0 and "read as" not in text
    with Workspace(tmp_path / "ws") as workspace:
        assert [m.id for m in workspace.models()] == [1]
        assert [(p.model_id, p.dataset_id) for p in workspace.projects()] == [
            (1, 1),
            (1, 2),
            (1, 3),
        ]


def test_the_form_judges_the_input_shape_as_the_command_line_does() -> None:
    assert parse_input_shape("") is None and parse_input_shape(" 1x3x64x96 ") == [1, 3, 64, 96]
    refusals: dict[str, str] = {
        "0,0": "has 2 dimension(s)",
        "1,3,-5,64": "-5 as H",
        "1,3,9000,64": "at most 8192",
        "1,3,a,64": "'a' is not one",
        "4,3,64,64": "batch of 4",
        "1,1,64,64": "takes 3",
    }
    for text, says in refusals.items():
        with pytest.raises(SegtuiError) as info:
            parse_input_shape(text)
        assert says in info.value.message, (text, info.value.message)
        assert "1,3,800,1344" in info.value.hint


def test_names_are_checked_as_given() -> None:
    def check(text: str | None) -> str | None:
        return import_checks.check_name(text, "--name")

    assert check(None) is None and check("  Mask R-CNN · COCO  ") == "Mask R-CNN · COCO"
    assert check("модель ü 🚀") == "модель ü 🚀" and check("x" * 200) == "x" * 200
    for bad, says in (
        ("", "is empty"),
        ("\t \n", "only blanks"),
        ("a\x00b", "'\\x00'"),
        ("a\u2028b", "'\\u2028'"),
        ("bad\udcffname", "not UTF-8 text"),
    ):
        with pytest.raises(SegtuiError) as info:
            check(bad)
        assert says in info.value.message, (bad, info.value.message)
