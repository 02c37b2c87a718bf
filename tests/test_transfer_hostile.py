"""Hostile archives whose manifest and checksums are right but whose `export.json` lies:
each is refused before anything is written, with a message that says what is wrong."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import report_builder as build
from test_transfer import make_source, pack, state
from transfer_data import make_whole

from segtui.core import project_import
from segtui.core.archive import verify_archive
from segtui.core.datasets import import_dataset
from segtui.core.errors import DiskFullError, SegtuiError
from segtui.core.project_export import ExportContents, ExportRequest, collect_export
from segtui.core.project_import import apply_import, import_archive
from segtui.core.records import JsonObject
from segtui.core.transfer_doc import (
    ARCHIVE_KIND,
    EXPORT_DOC,
    ExportDocument,
    ExportedResult,
    document_bytes,
    read_document,
)
from segtui.core.transfer_plan import plan_import
from segtui.core.types import ResultKind
from segtui.core.workspace import Workspace


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> ExportContents:
    """A parent and its child as `segtui export --with-children` collects them."""
    src = make_source(tmp_path_factory.mktemp("hostile"))
    request = ExportRequest(src.parent.id, src.ws.root / "unused", with_children=True)
    contents = collect_export(src.ws, request)
    src.ws.close()
    return contents


def refused_unchanged(archive: Path, ws_root: Path, message: str) -> SegtuiError:
    """Import `archive` into the workspace at `ws_root`: refused, nothing written."""
    with Workspace(ws_root) as ws:
        before = state(ws)
        with pytest.raises(SegtuiError, match=re.escape(message)) as refusal:
            import_archive(ws, archive)
        assert state(ws) == before
    return refusal.value


def _result(doc: ExportDocument, kind: ResultKind) -> JsonObject:
    return next(r["data"] for r in doc["results"] if r["kind"] == kind)


def _nested(depth: int) -> object:
    value: object = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _deep_in_result(doc: ExportDocument) -> None:
    _result(doc, ResultKind.ACCURACY)["deep"] = _nested(900)  # deepcopy fails there


def _huge_coco_id(doc: ExportDocument) -> None:
    doc["datasets"][0]["images"][0]["coco_id"] = 2**64  # no SQLite integer


def _negative_project_id(doc: ExportDocument) -> None:
    # A new row's stand-in id is -1 - id: -3 would stand in for project 2 of the workspace.
    doc["projects"][1]["id"] = -3
    for result in doc["results"]:
        if result["project"] == doc["projects"][1]["id"]:
            result["project"] = -3


def _escape_in_device(doc: ExportDocument) -> None:
    doc["projects"][0]["device"] = "CPU\x1b]0;owned\x07"


def _escape_in_class_name(doc: ExportDocument) -> None:
    doc["models"][0]["class_names"][0] = "person\x1b[2J"


def _escape_in_result_text(doc: ExportDocument) -> None:
    _result(doc, ResultKind.SWEEP)["cells"][1]["error"] = "out of memory\x9b2J"  # C1 CSI


def _escape_in_image_path(doc: ExportDocument) -> None:
    doc["datasets"][0]["images"][0]["path"] = "a\x1b[31m.png"


def _dotted_image_path(doc: ExportDocument) -> None:
    # "./a.png" is a second name of a.png: the dataset would list one image twice.
    doc["datasets"][0]["images"][1]["path"] = "./" + doc["datasets"][0]["images"][0]["path"]


def _late_date(doc: ExportDocument) -> None:
    doc["results"][0]["created_at"] = 1e300  # no date Python can show


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_deep_in_result, "nests lists or objects more than 64 levels deep"),
        (_huge_coco_id, "'coco_id' is 18446744073709551616, too large a number"),
        (_negative_project_id, "'id' is -3, not an id (a whole number from 1)"),
        (_escape_in_device, "'device' holds the control character '\\x1b'"),
        (_escape_in_class_name, "has a class name that holds the control character '\\x1b'"),
        (_escape_in_result_text, "holds the control character '\\x9b'"),
        (_escape_in_image_path, "'path' holds the control character '\\x1b'"),
        (_dotted_image_path, "lists an image path that is not a plain relative path"),
        (_late_date, "'created_at' is 1e+300, not a date"),
    ],
)
def test_a_lying_document_is_refused_before_anything_is_written(
    tmp_path: Path, exported: ExportContents, mutate: Callable[[ExportDocument], None], message: str
) -> None:
    doc = copy.deepcopy(exported.document)
    mutate(doc)
    refused_unchanged(pack(tmp_path, exported, doc), tmp_path / "dest", message)


@pytest.mark.parametrize("value", ["Infinity", "NaN", "-1e18"])
def test_a_date_that_is_no_date_is_refused(
    tmp_path: Path, exported: ExportContents, value: str
) -> None:
    text = document_bytes(exported.document).decode()
    raw = text.replace('"created_at": ', f'"created_at": {value}, "was": ', 1).encode()
    refused_unchanged(pack(tmp_path, exported, raw), tmp_path / "dest", "not a date")


def test_nesting_past_the_parser_is_refused_not_a_crash(
    tmp_path: Path, exported: ExportContents
) -> None:
    text = document_bytes(exported.document).decode().rstrip()
    raw = (text[:-1] + ', "deep": ' + "[" * 5000 + "]" * 5000 + "}").encode()
    refused_unchanged(pack(tmp_path, exported, raw), tmp_path / "dest", "more than 64 levels")


def test_line_breaks_in_result_texts_are_plain_text(
    tmp_path: Path, exported: ExportContents
) -> None:
    doc = copy.deepcopy(exported.document)
    _result(doc, ResultKind.SWEEP)["cells"][1]["error"] = "out of memory:\n\tbatch 4"
    with Workspace(tmp_path / "dest") as ws:
        import_archive(ws, pack(tmp_path, exported, doc))
        (sweep,) = [r for p in ws.projects() for r in ws.results(p.id, ResultKind.SWEEP)]
        assert [c.get("error") for c in sweep.data["cells"]] == [None, "out of memory:\n\tbatch 4"]


# -- models: their files must be what their checksum says ----------------------------------


@pytest.mark.parametrize("into", ["empty", "holding the model"])
def test_a_model_whose_files_are_not_its_checksum_is_refused(
    tmp_path: Path, exported: ExportContents, into: str
) -> None:
    """The workspace reuses a model by checksum, now and when its IR is imported later: a
    false checksum would pass other files off as that model."""
    model = exported.document["models"][0]
    weights = f"models/{model['id']}/model.bin"
    archive = pack(tmp_path, exported, exported.document, {weights: b"someone else's weights"})
    dest = tmp_path / "dest"
    if into != "empty":  # the genuine model is there: it must not be "reused" by a lie
        good = tmp_path / "good"
        good.mkdir()
        with Workspace(dest) as ws:
            import_archive(ws, pack(good, exported, exported.document))
    message = (
        f"Model {model['id']} ({model['name']!r}) of the archive is not what its checksum says"
    )
    refused_unchanged(archive, dest, message)


def _weights_left_out(doc: ExportDocument) -> None:
    doc["models"][0]["files"].remove("model.bin")


def _xml_is_the_weights(doc: ExportDocument) -> None:
    doc["models"][0]["xml_name"] = "model.bin"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_weights_left_out, "model 1 lacks the weights of 'model.xml' ('model.bin')"),
        (_xml_is_the_weights, "model 1 lacks the weights of 'model.bin'"),
    ],
)
def test_a_model_without_its_weights_is_refused(
    tmp_path: Path, exported: ExportContents, mutate: Callable[[ExportDocument], None], message: str
) -> None:
    doc = copy.deepcopy(exported.document)
    mutate(doc)
    refused_unchanged(pack(tmp_path, exported, doc), tmp_path / "dest", message)


# -- two imports at once ------------------------------------------------------------------


def test_an_import_planned_before_another_finished_reuses_its_rows(
    tmp_path: Path, exported: ExportContents
) -> None:
    """Two `segtui import` of one archive at once: the slower one planned "add" for every row,
    then the faster one added them; the slower must reuse them, not add each twice."""
    archive = pack(tmp_path, exported, exported.document)
    with Workspace(tmp_path / "dest") as ws:
        verified = verify_archive(archive, kind=ARCHIVE_KIND, keep=(EXPORT_DOC,))
        sha256s = {m["path"]: m["sha256"] for m in verified.manifest["members"]}
        document = read_document(verified.kept[EXPORT_DOC], sha256s)
        slow = plan_import(ws, document, sha256s)
        assert {r.status for r in slow.projects.values()} == {"added"}
        fast = import_archive(ws, archive)
        before = state(ws)
        outcome = apply_import(ws, slow, verified)
        assert state(ws) == before
        assert [r["status"] for r in outcome["projects"]] == ["reused", "reused"]
        assert [r["id"] for r in outcome["projects"]] == [r["id"] for r in fast["projects"]]
        assert {r["status"] for r in outcome["results"]} == {"identical"}
        names = [p.name for p in ws.projects()]
        assert len(names) == 2 and len(set(names)) == 2


# -- stored JSON the workspace's readers index --------------------------------------------


def _analysis_empty(doc: ExportDocument) -> None:
    doc["models"][0]["analysis"] = {}  # type: ignore[typeddict-item]


def _gflops_text(doc: ExportDocument) -> None:
    doc["models"][0]["analysis"]["gflops"] = "many"  # type: ignore[typeddict-item]


def _optimization_other(doc: ExportDocument) -> None:
    doc["models"][1]["optimization"] = {"settings": 5}  # type: ignore[typeddict-item]


def _dataset_analysis_empty(doc: ExportDocument) -> None:
    doc["datasets"][0]["analysis"] = {}  # type: ignore[typeddict-item]


def _throughput_text(doc: ExportDocument) -> None:
    _result(doc, ResultKind.BENCHMARK)["throughput_fps"] = "fast"


def _sweep_cells_number(doc: ExportDocument) -> None:
    _result(doc, ResultKind.SWEEP)["cells"] = 5


def _report_without_summary(doc: ExportDocument) -> None:
    del _result(doc, ResultKind.REPORT_PARENT)["summary"]


def _metrics_text(doc: ExportDocument) -> None:
    _result(doc, ResultKind.ACCURACY)["metrics"]["mask_ap"] = None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_analysis_empty, "model 1's analysis has no 'fake_quantize_count'"),
        (_gflops_text, "model 1's analysis.gflops is 'many', not a number"),
        (_optimization_other, "model 2's optimization has no 'auto_ignored_scope'"),
        (_dataset_analysis_empty, "dataset 1's analysis has no 'annotated'"),
        (_throughput_text, "'s data.throughput_fps is 'fast', not a number"),
        (_sweep_cells_number, "'s data.cells is 5, not a list"),
        (_report_without_summary, "'s data has no 'summary'"),
        (_metrics_text, "'s data.metrics.mask_ap is None, not a number"),
    ],
)
def test_stored_json_of_another_shape_is_refused(
    tmp_path: Path, exported: ExportContents, mutate: Callable[[ExportDocument], None], message: str
) -> None:
    """`segtui show`, `list`, `compare` and `report` index these: another shape made them
    fail with "Unexpected error" after the import."""
    doc = copy.deepcopy(exported.document)
    mutate(doc)
    refused_unchanged(pack(tmp_path, exported, doc), tmp_path / "dest", message)


# -- a report's prediction files ----------------------------------------------------------


def _report(doc: ExportDocument) -> ExportedResult:
    return next(r for r in doc["results"] if r["kind"] == ResultKind.REPORT_PARENT)


def _predictions(exported: ExportContents, name: str) -> list[JsonObject]:
    member = f"reports/{_report(exported.document)['id']}/{name}"
    path = dict(exported.members)[member]
    return list(json.loads(path.read_text()))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"not": "a list"}', "the list is {'not': 'a list'}, not a list"),
        (b"[1]", "the list[0] is 1, not an object"),
        (b"\xff[]", "it is not JSON text"),
        (b"[" * 40 + b"]" * 40, "nests lists or objects more than 16 levels deep"),
    ],
)
def test_a_prediction_file_that_is_no_predictions_is_refused(
    tmp_path: Path, exported: ExportContents, content: bytes, message: str
) -> None:
    """Visualize and the HTML report read these: another content made them fail."""
    member = f"reports/{_report(exported.document)['id']}/parent.json"
    archive = pack(tmp_path, exported, exported.document, {member: content})
    error = refused_unchanged(archive, tmp_path / "dest", message)
    assert error.message.startswith(f"The archive's {member} is not the predictions")


def _elsewhere(items: list[JsonObject]) -> None:
    items[0]["image"] = "not-in-the-dataset.png"


def _huge_mask(items: list[JsonObject]) -> None:
    # Decoding it would take 10 GB: a mask is as large as its image.
    next(i for i in items if i["instances"])["instances"][0]["rle"]["size"] = [100_000, 100_000]


def _resized(items: list[JsonObject]) -> None:
    items[0]["width"] += 1


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_elsewhere, "it predicts 'not-in-the-dataset.png', which is not an image of its dataset"),
        (_huge_mask, "is not 64×48"),
        (_resized, "'a.png' is 65×48 there, not as in its dataset"),
    ],
)
def test_predictions_of_other_images_are_refused(
    tmp_path: Path,
    exported: ExportContents,
    mutate: Callable[[list[JsonObject]], None],
    message: str,
) -> None:
    items = _predictions(exported, "optimized.json")
    mutate(items)
    member = f"reports/{_report(exported.document)['id']}/optimized.json"
    replaced = {member: json.dumps(items).encode()}
    archive = pack(tmp_path, exported, exported.document, replaced)
    refused_unchanged(archive, tmp_path / "dest", message)


def test_a_report_folder_holds_its_two_prediction_files_only(
    tmp_path: Path, exported: ExportContents
) -> None:
    doc = copy.deepcopy(exported.document)
    report = _report(doc)
    report["files"].append("run.sh")
    extra = tmp_path / "run.sh"
    extra.write_text("#!/bin/sh\n")
    members = [*exported.members, (f"reports/{report['id']}/run.sh", extra)]
    archive = pack(tmp_path, ExportContents(doc, members), doc)
    message = "has the files ['optimized.json', 'parent.json', 'run.sh'], but a report has"
    refused_unchanged(archive, tmp_path / "dest", message)


# -- a dataset's annotations ----------------------------------------------------------------


def test_annotations_segtui_cannot_use_are_refused(tmp_path: Path, coco_dataset: Path) -> None:
    """Evaluate and the reports load them: a broken file failed every later job on it."""
    with Workspace(tmp_path / "src") as ws:
        dataset = import_dataset(ws, coco_dataset, name="boxes")
        staging = tmp_path / "staging"
        staging.mkdir()
        model = build.stand_in_model(ws, staging, "boxer", ["box", "disc"])
        make_whole(ws, model, int8=False)
        project = ws.add_project(name="Boxes", model_id=model, dataset_id=dataset.id, device="CPU")
        request = ExportRequest(project.id, tmp_path / "unused", with_dataset=True)
        contents = collect_export(ws, request)
    member = f"datasets/{dataset.id}/annotations.json"
    broken = b'{"images": [], "annotations": 5, "categories": []}'
    archive = pack(tmp_path, contents, contents.document, {member: broken})
    message = f"dataset {dataset.id} has annotations segtui cannot use: "
    error = refused_unchanged(archive, tmp_path / "dest", message)
    assert "'annotations' must be a list" in error.message


# -- an import killed midway ---------------------------------------------------------------


def test_the_next_import_removes_what_a_killed_import_left(
    tmp_path: Path, exported: ExportContents
) -> None:
    """kill -9 during extraction left the unpacked archive in tmp/ for good (the CLI never
    cleaned it); one whose lock a running import holds stays."""
    archive = pack(tmp_path, exported, exported.document)
    tmp = tmp_path / "dest" / "tmp"
    dead = tmp / "import-dead" / "archive" / "models" / "1"
    dead.mkdir(parents=True)
    (dead / "model.bin").write_bytes(b"\0" * 4096)
    running = tmp / "import-running"
    running.mkdir()
    fd = os.open(running, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with Workspace(tmp_path / "dest") as ws:
            import_archive(ws, archive)
        assert sorted(p.name for p in tmp.iterdir()) == ["import-running"]
    finally:
        os.close(fd)


def test_a_full_disk_while_unpacking_names_the_workspace(
    tmp_path: Path, exported: ExportContents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The extraction's own message named the staging folder, gone by then."""
    archive = pack(tmp_path, exported, exported.document)

    def full(verified: object, dest: Path, **kwargs: object) -> None:
        raise DiskFullError(f"Could not write {dest}/models/1/model.bin: the disk is full.")

    monkeypatch.setattr(project_import, "extract_archive", full)
    root = tmp_path / "dest"
    error = refused_unchanged(archive, root, f"The disk of workspace {root} has too little")
    assert "import-" not in str(error) and "Nothing was imported" in error.message
    assert list((root / "tmp").iterdir()) == []


def test_a_name_with_blanks_around_it_is_refused(tmp_path: Path, exported: ExportContents) -> None:
    """segtui strips every name it stores: "Tiny " beside "Tiny" would look the same."""
    doc = copy.deepcopy(exported.document)
    doc["projects"][0]["name"] += " "
    message = f"project {doc['projects'][0]['id']} has blanks around its name"
    refused_unchanged(pack(tmp_path, exported, doc), tmp_path / "dest", message)


# -- re-linking the images where the archive says they are ---------------------------------


def test_relinking_never_opens_what_is_not_a_regular_file(
    tmp_path: Path, exported: ExportContents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive names the folder (`root`) and the files: opening a device can act (a
    watchdog arms), so one that is not a regular file is refused without being opened."""
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "a.png")  # stands for /dev/watchdog: any file that is not regular
    doc = copy.deepcopy(exported.document)
    doc["datasets"][0]["root"] = str(root)
    opened: list[str] = []
    real_open = os.open

    def recording(path: str | Path, flags: int, *args: int, **kwargs: object) -> int:
        opened.append(str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", recording)
    error = refused_unchanged(pack(tmp_path, exported, doc), tmp_path / "dest", "a.png is not")
    assert f"in {root}, a.png is not a regular file" in error.message
    assert str(root / "a.png") not in opened


def _no_throughput(doc: ExportDocument) -> None:
    _result(doc, ResultKind.BENCHMARK)["throughput_fps"] = 0


def _no_latency_in_a_cell(doc: ExportDocument) -> None:
    _result(doc, ResultKind.SWEEP)["cells"][0]["latency_median_ms"] = -1.5


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_no_throughput, "measured throughput_fps = 0"),
        (_no_latency_in_a_cell, "measured latency_median_ms = -1.5"),
    ],
)
def test_a_measurement_of_nothing_is_refused(
    tmp_path: Path, exported: ExportContents, mutate: Callable[[ExportDocument], None], message: str
) -> None:
    """`compare` and the HTML report divide by these: 0 failed them (ZeroDivisionError)."""
    doc = copy.deepcopy(exported.document)
    mutate(doc)
    refused_unchanged(pack(tmp_path, exported, doc), tmp_path / "dest", message)


def _report_without_figures(doc: ExportDocument) -> None:
    del _result(doc, ResultKind.REPORT_PARENT)["summary"]["a_vs_b"]


def _report_of_the_other_type(doc: ExportDocument) -> None:
    _result(doc, ResultKind.REPORT_PARENT)["summary"]["type"] = "annotations"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_report_without_figures, "(report:parent) has no 'a_vs_b' in its summary"),
        (_report_of_the_other_type, "(report:parent) holds a report of type 'annotations'"),
    ],
)
def test_a_report_without_its_types_figures_is_refused(
    tmp_path: Path, exported: ExportContents, mutate: Callable[[ExportDocument], None], message: str
) -> None:
    """`report --stored` and the HTML report read the figures of the summary's type (found
    by fuzzing: a report:parent without a_vs_b failed them with KeyError)."""
    doc = copy.deepcopy(exported.document)
    mutate(doc)
    refused_unchanged(pack(tmp_path, exported, doc), tmp_path / "dest", message)
