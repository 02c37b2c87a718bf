"""Project export and import: a round trip reproduces the projects, links, models, results and
reports; a re-import adds nothing; names, models and datasets already present are handled;
every refusal leaves the workspace as it was."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import report_builder as build
from archive_attacks import ATTACKS
from cli_run import run_cli
from conftest import workspace_files, write_scene
from held_jobs import held
from stored_report import SETUP, predictions
from transfer_data import benchmark_run, evaluation_result, make_whole, sweep_data

from segtui.core import job_registry, jobs, project_import
from segtui.core.archive import write_archive
from segtui.core.archive_manifest import quoted
from segtui.core.datasets import import_dataset
from segtui.core.errors import SegtuiError
from segtui.core.models import import_model
from segtui.core.preflight import submit_checked
from segtui.core.project_export import (
    ExportContents,
    ExportRequest,
    collect_export,
    export_project,
)
from segtui.core.project_import import ImportOutcome, import_archive
from segtui.core.projects import project_summary
from segtui.core.report import report_data, report_predictions
from segtui.core.transfer_doc import ARCHIVE_KIND, EXPORT_DOC, ExportDocument, document_bytes
from segtui.core.transfer_ids import Table, remap_result
from segtui.core.types import JobKind, JobState, ResultKind
from segtui.core.workspace import ProjectRecord, ResultRecord, Workspace


@dataclass(frozen=True)
class Source:
    ws: Workspace
    parent: ProjectRecord
    child: ProjectRecord
    report: ResultRecord
    images: Path


def write_images(root: Path) -> Path:
    """The three images the stored report was made on (see stored_report.predictions)."""
    write_scene(root / "a.png", (48, 64), 1)
    write_scene(root / "b.jpg", (60, 40), 2)
    write_scene(root / "sub" / "c.bmp", (32, 32), 3)
    return root


def make_source(tmp: Path) -> Source:
    """A parent and its optimized child on three images, with benchmarks, a sweep, an
    evaluation and the child's stored report (its rows and both prediction files)."""
    images = write_images(tmp / "images")
    ws = Workspace(tmp / "source")
    staging = tmp / "staging"
    staging.mkdir()
    parent, child, report = build.build_report(ws, images, staging, SETUP, predictions())
    make_whole(ws, parent.model_id, int8=False)
    make_whole(ws, child.model_id, int8=True)
    for project, fps, precision in ((parent, 20.5, "f32"), (child, 55.25, "bf16")):
        data = benchmark_run(project.model_id, fps, precision)
        ws.add_result(project_id=project.id, kind=ResultKind.BENCHMARK, data=data)
    sweep = sweep_data(child.model_id, 61.0)
    ws.add_result(project_id=child.id, kind=ResultKind.SWEEP, data=sweep)
    accuracy = evaluation_result(0.41, 0.45)
    ws.add_result(project_id=parent.id, kind=ResultKind.ACCURACY, data=accuracy)
    return Source(ws, parent, child, report, images)


def export_to(ws: Workspace, project_id: int, out: Path, **switches: bool) -> Path:
    """The project exported in-process (the export job's own function, without a job)."""
    work = out.parent / f"work-{out.stem}"
    work.mkdir(parents=True)
    export_project(ws, ExportRequest(project_id, out, **switches), work)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def snapshot(ws: Workspace) -> dict[str, Any]:
    """The workspace's rows and files with every id replaced by its row's rank by name."""
    projects = sorted(ws.projects(), key=lambda p: p.name)
    models = sorted(ws.models(), key=lambda m: m.name)
    datasets = {d.id: d for d in ws.datasets()}
    ranks: dict[Table, dict[int, int]] = {
        "project": {p.id: n for n, p in enumerate(projects)},
        "model": {m.id: n for n, m in enumerate(models)},
    }
    results = []
    for project in projects:
        for r in ws.results(project.id):
            reports = ws.root / "reports" / str(r.id)
            data = remap_result(r.id, r.kind, r.data, ranks)
            results.append((project.name, r.kind, data, r.created_at, _files(reports)))
    return {
        "projects": [
            {
                "name": p.name,
                "device": p.device,
                "model": ranks["model"][p.model_id],
                "dataset": datasets[p.dataset_id].name,
                "parent": None if p.parent_id is None else ranks["project"][p.parent_id],
                "created_at": p.created_at,
            }
            for p in projects
        ],
        "models": [
            {
                **{k: v for k, v in asdict(m).items() if k not in ("id", "dir", "optimized_from")},
                "optimized_from": None
                if m.optimized_from is None
                else ranks["model"][m.optimized_from],
                "files": _files(m.dir),
            }
            for m in models
        ],
        "datasets": [
            {
                **{k: v for k, v in asdict(d).items() if k not in ("id", "root", "annotations")},
                "images": [asdict(i) for i in ws.dataset_images(d.id)],
                "annotations": None if d.annotations is None else d.annotations.read_bytes(),
            }
            for d in sorted(datasets.values(), key=lambda d: d.name)
        ],
        "results": sorted(results, key=repr),
    }


def database_dump(root: Path) -> list[str]:
    """Every row of the workspace database, as SQL."""
    with sqlite3.connect(root / "segtui.db") as conn:
        return list(conn.iterdump())


def state(ws: Workspace) -> tuple[list[str], list[str]]:
    return database_dump(ws.root), workspace_files(ws)


def pack(
    tmp: Path,
    contents: ExportContents,
    doc: ExportDocument | bytes,
    replaced: dict[str, bytes] | None = None,
) -> Path:
    """An archive with a valid manifest holding `doc` and the export's members, some of
    them `replaced` by other bytes."""
    doc_file = tmp / EXPORT_DOC
    doc_file.write_bytes(doc if isinstance(doc, bytes) else document_bytes(doc))
    members = [(EXPORT_DOC, doc_file)]
    for name, path in contents.members:
        if replaced is not None and name in replaced:
            path = tmp / "replaced" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(replaced[name])
        members.append((name, path))
    archive = tmp / "packed.tar.gz"
    write_archive(archive, members, kind=ARCHIVE_KIND)
    return archive


# -- the round trip --------------------------------------------------------------------------


def test_export_then_import_reproduces_the_projects_and_reimport_adds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_source(tmp_path)
    code, text = run_cli(
        capsys,
        ["--workspace", str(src.ws.root), "export", "Tiny", "--with-children", "--json"],
    )
    assert code == 0, text
    exported = json.loads(text)
    archive = src.ws.root / "exports" / "segtui-export-tiny.tar.gz"
    assert exported["path"] == str(archive) and archive.stat().st_size == exported["size_bytes"]
    assert exported["projects"] == [src.parent.id, src.child.id]
    # export.json, two model.xml and their model.bin, two report files.
    assert exported["members"] == 7
    assert src.ws.job(exported["job_id"]).state == "done"

    dest_root = tmp_path / "dest"
    code, text = run_cli(capsys, ["--workspace", str(dest_root), "import", str(archive), "--json"])
    assert code == 0, text
    outcome: ImportOutcome = json.loads(text)
    assert {r["status"] for r in outcome["projects"] + outcome["models"]} == {"added"}
    assert [r["status"] for r in outcome["results"]] == ["added"] * 5
    with Workspace(dest_root) as dest:
        assert snapshot(dest) == snapshot(src.ws)
        assert dest.jobs() == []
        parent = dest.project(outcome["project_id"])
        (child,) = dest.children(parent.id)
        (report,) = dest.results(child.id, ResultKind.REPORT_PARENT)
        summary = report_data(report)["summary"]
        assert (summary["project_id"], summary["parent_project_id"]) == (child.id, parent.id)
        assert report.job_id is None
        stored = report_predictions(dest, report.id)
        expected = report_predictions(src.ws, src.report.id)
        assert [[p.to_json() for p in side] for side in stored] == [
            [p.to_json() for p in side] for side in expected
        ]
        assert dest.dataset(parent.dataset_id).root == src.images.resolve()
        shown = project_summary(dest, child.id)["project"]
        assert (shown["parent_id"], shown["status"]) == (parent.id, "ready")
        before = state(dest)

    code, text = run_cli(capsys, ["--workspace", str(dest_root), "import", str(archive), "--json"])
    assert code == 0, text
    again: ImportOutcome = json.loads(text)
    assert {r["status"] for r in again["projects"] + again["models"] + again["datasets"]} == {
        "reused"
    }
    assert {r["status"] for r in again["results"]} == {"identical"}
    assert again["project_id"] == parent.id
    with Workspace(dest_root) as dest:
        assert state(dest) == before

    # Into the workspace it came from: everything there already.
    source_before = state(src.ws)
    back = import_archive(src.ws, archive)
    assert back["project_id"] == src.parent.id
    assert state(src.ws) == source_before


def test_export_refusals_come_before_any_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_source(tmp_path)
    taken = tmp_path / "taken.tar.gz"
    taken.write_bytes(b"keep me")
    (tmp_path / "folder.tar.gz").mkdir()
    (tmp_path / "link.tar.gz").symlink_to(taken)
    base = ["--workspace", str(src.ws.root), "export", str(src.child.id), "--out"]
    cases = {
        str(taken): "taken.tar.gz already exists",
        str(tmp_path / "missing" / "x.tar.gz"): "does not exist",
        str(tmp_path / "folder.tar.gz"): "folder.tar.gz is a folder",
        str(tmp_path / "link.tar.gz"): "is a symbolic link",
        "  ": "--out needs a file name",
    }
    before = state(src.ws)
    for out, message in cases.items():
        code, text = run_cli(capsys, [*base, out])
        assert code == 1, out
        assert message in text and "Traceback" not in text, text
    assert taken.read_bytes() == b"keep me"
    assert state(src.ws) == before and src.ws.jobs() == []

    code, text = run_cli(capsys, [*base, str(taken), "--force", "--json"])
    assert code == 0, text
    assert json.loads(text)["projects"] == [src.parent.id, src.child.id]
    assert taken.read_bytes()[:2] == b"\x1f\x8b"  # replaced by the gzip archive


# -- what is there already -------------------------------------------------------------------


def test_same_model_reused_and_taken_names_renamed(tmp_path: Path) -> None:
    src = make_source(tmp_path / "src")
    archive = export_to(src.ws, src.parent.id, tmp_path / "a.tar.gz", with_children=True)
    dest = Workspace(tmp_path / "dest")
    staging = tmp_path / "staging"
    staging.mkdir()
    # The parent's model (same files, classes, no parent), a model of other classes under the
    # child model's name, and a project under the parent project's name.
    same = build.stand_in_model(dest, staging, SETUP.model_name, SETUP.classes)
    other = build.stand_in_model(dest, staging, f"{SETUP.model_name} INT8", ["x"])
    make_whole(dest, same, int8=False)
    make_whole(dest, other, int8=False)
    elsewhere = import_dataset(dest, write_images(tmp_path / "elsewhere"), name="elsewhere")
    dest.add_project(name=SETUP.name, model_id=other, dataset_id=elsewhere.id, device="CPU")

    outcome = import_archive(dest, archive)
    models = {r["archive_name"]: r for r in outcome["models"]}
    assert models[SETUP.model_name]["status"] == "reused"
    assert models[SETUP.model_name]["id"] == same
    child_model = models[f"{SETUP.model_name} INT8"]
    assert child_model["status"] == "renamed"
    assert child_model["name"] == f"{SETUP.model_name} INT8 (2)"
    assert dest.model(child_model["id"]).optimized_from == same
    projects = {r["archive_name"]: r for r in outcome["projects"]}
    assert projects[SETUP.name]["name"] == f"{SETUP.name} (2)"
    assert projects[f"{SETUP.name} INT8"]["status"] == "added"
    assert len(dest.models()) == 3 and len(dest.projects()) == 3
    assert dest.project(outcome["project_id"]).model_id == same
    dest.close()


def test_same_checksum_parent_and_child_stay_two_models(
    pair: tuple[ProjectRecord, ProjectRecord],
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The pair's child model is a copy of its parent's: same checksum, but optimized from it."""
    parent, child = pair
    out = tmp_path / "pair.tar.gz"
    work = tmp_path / "work"
    work.mkdir()
    export_project(workspace, ExportRequest(child.id, out), work)
    dest = Workspace(tmp_path / "dest")
    import_model(dest, tmp_path / "m" / "model.xml", name="mine")  # the parent's model
    outcome = import_archive(dest, out)
    assert [r["status"] for r in outcome["models"]] == ["reused", "added"]
    reused, added = (r["id"] for r in outcome["models"])
    assert dest.model(added).optimized_from == reused
    assert dest.model(added).checksum == dest.model(reused).checksum
    new_child = next(r["id"] for r in outcome["projects"] if r["archive_id"] == child.id)
    assert outcome["project_id"] == new_child
    new_parent = dest.project(new_child).parent_id
    assert dest.project(new_parent or 0).name == parent.name
    dest.close()
    code, text = run_cli(
        capsys, ["--workspace", str(tmp_path / "dest"), "show", "project", str(new_child)]
    )
    assert code == 0, text
    assert f"parent      project {new_parent}" in text


# -- datasets --------------------------------------------------------------------------------


def test_dataset_without_images_is_relinked_or_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_source(tmp_path / "src")
    archive = export_to(src.ws, src.parent.id, tmp_path / "a.tar.gz")
    moved = src.images.rename(tmp_path / "moved")
    dest = Workspace(tmp_path / "dest")
    before = state(dest)
    code, text = run_cli(capsys, ["--workspace", str(dest.root), "import", str(archive)])
    assert code == 1 and "Traceback" not in text
    assert f"Dataset '{SETUP.dataset_name}' was exported without its images" in text
    assert f"{src.images} does not exist" in text and "--dataset-root DIR" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.png").write_bytes((moved / "b.jpg").read_bytes())  # the wrong picture
    with pytest.raises(SegtuiError, match=re.escape("a.png is 40×60 pixels, not 64×48")):
        import_archive(dest, archive, dataset_root=empty)
    assert state(dest) == before

    outcome = import_archive(dest, archive, dataset_root=moved)
    (dataset,) = outcome["datasets"]
    assert dataset["status"] == "added"
    assert dest.dataset(dataset["id"]).root == moved.resolve()
    dest.close()


def test_with_dataset_the_images_and_annotations_come_along(
    tmp_path: Path, coco_dataset: Path
) -> None:
    ws = Workspace(tmp_path / "src")
    dataset = import_dataset(ws, coco_dataset, name="boxes")
    staging = tmp_path / "staging"
    staging.mkdir()
    model = build.stand_in_model(ws, staging, "boxer", ["box", "disc"])
    make_whole(ws, model, int8=False)
    project = ws.add_project(name="Boxes", model_id=model, dataset_id=dataset.id, device="CPU")
    archive = export_to(ws, project.id, tmp_path / "a.tar.gz", with_dataset=True)
    originals = _files(dataset.root)
    dataset.root.rename(tmp_path / "gone")  # the archive needs it no more

    dest = Workspace(tmp_path / "dest")
    outcome = import_archive(dest, archive)
    (row,) = outcome["datasets"]
    imported = dest.dataset(row["id"])
    assert imported.root == dest.root / "datasets" / str(imported.id) / "images"
    assert _files(imported.root) == originals
    assert imported.annotations is not None and dataset.annotations is not None
    assert imported.annotations.read_bytes() == dataset.annotations.read_bytes()
    assert snapshot(dest) == snapshot(ws)
    before = state(dest)
    import_archive(dest, archive)
    assert state(dest) == before
    ws.close()
    dest.close()


# -- refused documents -----------------------------------------------------------------------


def _parent_missing(doc: ExportDocument) -> None:
    doc["projects"][1]["parent"] = 77


def _unknown_model_in_result(doc: ExportDocument) -> None:
    bench = next(r for r in doc["results"] if r["kind"] == ResultKind.BENCHMARK)
    bench["data"]["model_id"] = 999


def _newer_format(doc: ExportDocument) -> None:
    doc["format"] = 99


def _path_outside(doc: ExportDocument) -> None:
    doc["models"][0]["files"].append("../../escape")


def _name_with_escape(doc: ExportDocument) -> None:
    doc["projects"][0]["name"] = "evil\x1b[2J"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_parent_missing, "names a parent project the archive lacks"),
        (_unknown_model_in_result, "names model 999 in 'model_id'"),
        (_newer_format, "written by a newer segtui (format 99"),
        (_path_outside, "'../../escape', which is not a plain relative path"),
        (_name_with_escape, "holds the control character"),
    ],
)
def test_a_bad_document_is_refused_before_anything_is_written(
    tmp_path: Path, mutate: Callable[[ExportDocument], None], message: str
) -> None:
    src = make_source(tmp_path / "src")
    request = ExportRequest(src.parent.id, tmp_path / "unused", with_children=True)
    contents = collect_export(src.ws, request)
    mutate(contents.document)
    archive = pack(tmp_path, contents, contents.document)
    for ws in (Workspace(tmp_path / "dest"), src.ws):
        before = state(ws)
        with pytest.raises(SegtuiError, match=re.escape(message)):
            import_archive(ws, archive)
        assert state(ws) == before
        ws.close()


# -- refused archives ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of the parent, its child and their results (images left behind)."""
    tmp = tmp_path_factory.mktemp("good")
    src = make_source(tmp)
    archive = export_to(src.ws, src.parent.id, tmp / "good.tar.gz", with_children=True)
    src.ws.close()
    return archive


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_bad_archive_is_refused_with_the_workspace_unchanged(
    name: str, good_archive: Path, tmp_path: Path
) -> None:
    attack = ATTACKS[name]
    bad = attack(good_archive, tmp_path / f"{name}.tar.gz")
    with Workspace(tmp_path / "dest") as dest:
        import_archive(dest, good_archive)  # something there already, to stay as it is
        before = state(dest)
        with pytest.raises(SegtuiError) as refusal:
            import_archive(dest, bad)
        assert attack.phrase in refusal.value.message
        member = getattr(refusal.value, "member", None)
        if attack.names_member:
            assert member is not None and quoted(member) in refusal.value.message
        assert state(dest) == before


def test_a_cancelled_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_source(tmp_path)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "a.tar.gz"
    monkeypatch.setenv(job_registry.PAUSE_ENV, "Writing the archive")
    job = submit_checked(src.ws, JobKind.EXPORT, src.child.id, ExportRequest(0, out).params())
    held(src.ws, job.id)  # half written: the manifest and part of the members are out
    final = jobs.cancel(src.ws, job.id)
    assert final.state == JobState.CANCELLED
    assert list(folder.iterdir()) == []


def test_import_refusals_on_the_command_line(
    tmp_path: Path, good_archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    altered = ATTACKS["altered"](good_archive, tmp_path / "altered.tar.gz")
    cases = {
        str(altered): "was altered: its checksum does not match the manifest",
        str(tmp_path / "nothing.tar.gz"): "nothing.tar.gz does not exist",
        str(tmp_path): "is a folder",
        "": "The archive path is empty",
    }
    for path, message in cases.items():
        code, text = run_cli(capsys, ["--workspace", str(dest), "import", path])
        assert code == 1 and message in text and "Traceback" not in text, text
    with Workspace(dest) as ws:
        assert ws.projects() == [] and ws.models() == [] and ws.jobs() == []


def test_a_failure_midway_leaves_the_workspace_as_it_was(
    tmp_path: Path, good_archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The models' folders are in place when the projects fail: all of it goes again."""
    dest = Workspace(tmp_path / "dest")
    before = state(dest)

    def no_room(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project_import, "_insert_project", no_room)
    with pytest.raises(OSError, match="No space left"):
        import_archive(dest, good_archive)
    assert state(dest) == before
    assert (
        list((dest.root / "tmp").iterdir()) == [] and list((dest.root / "models").iterdir()) == []
    )
    monkeypatch.undo()
    assert len(import_archive(dest, good_archive)["projects"]) == 2
    dest.close()
