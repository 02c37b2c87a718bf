"""The document inside a project archive (`export.json`): its shape, its members, its checks.

`segtui export` writes one `export.json` beside the files it packs; `segtui import` reads it
back before anything is written. Every row carries the id it had where it was exported:
that id is only a key inside the document (a project's parent, a model's `optimized_from`,
a result's project name rows by it). The importing workspace gives each row a new id.

The archive layer (`core.archive`) vouches for the members' bytes; this module vouches for
the document's shape and for every key and file it names, so that the import can trust it.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import partial
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from segtui.core.archive import ARCHIVE_FORMAT
from segtui.core.errors import SegtuiError
from segtui.core.import_checks import check_name
from segtui.core.json_input import json_depth
from segtui.core.records import DatasetAnalysis, JsonObject, ModelAnalysis
from segtui.core.transfer_stored import stored_problem
from segtui.core.types import DatasetKind, ResultKind

if TYPE_CHECKING:
    from segtui.core.optimize import OptimizationRecord

#: The archive kind `core.archive` records in its manifest (another kind is refused).
ARCHIVE_KIND = "segtui-project"
#: The member that holds the document.
EXPORT_DOC = "export.json"
#: The newest document format this segtui reads (the archive's own format number).
DOC_FORMAT = ARCHIVE_FORMAT
#: The files of a report's folder (`report.create_report`): its two models' predictions.
REPORT_FILES = ("optimized.json", "parent.json")
#: The largest image a dataset may list (core.datasets' limit).
_MAX_PIXELS = 100_000_000
#: The hint of every refusal of the document: it was not written by `segtui export`.
REEXPORT_HINT = "Export the project again with `segtui export`, and import that file."


class ExportedProject(TypedDict):
    id: int
    name: str
    model: int
    dataset: int
    device: str
    #: The id of its parent in this document (always exported with it), or None.
    parent: int | None
    created_at: float


class ExportedModel(TypedDict):
    id: int
    name: str
    format_id: str
    source_path: str
    xml_name: str
    checksum: str
    analysis: ModelAnalysis
    class_names: list[str]
    #: The id of the model it was optimized from, in this document, or None.
    optimized_from: int | None
    #: How it was optimized (settings and ignored scope), as the workspace stored it.
    optimization: OptimizationRecord | None
    #: The accuracy settings the user set (core.accuracy_settings); archives made before
    #: they were kept lack it (none set).
    accuracy_settings: NotRequired[JsonObject]
    created_at: float
    #: The files of its folder, members `models/<id>/<file>`.
    files: list[str]


class ExportedImage(TypedDict):
    path: str  # relative to the dataset's root
    width: int
    height: int
    coco_id: int | None


class ExportedDataset(TypedDict):
    id: int
    name: str
    kind: str
    #: The image folder where it was exported (for re-linking when the images stay behind).
    root: str
    analysis: DatasetAnalysis
    created_at: float
    images: list[ExportedImage]
    #: Its normalised COCO annotations are the member `datasets/<id>/annotations.json`.
    annotations: bool
    #: Its images are the members `datasets/<id>/images/<path>` (`export --with-dataset`).
    with_images: bool


class ExportedResult(TypedDict):
    id: int
    project: int
    kind: str
    #: As stored, ids of projects and models included (see `transfer_ids`).
    data: JsonObject
    created_at: float
    #: The files of its report folder, members `reports/<id>/<file>`.
    files: list[str]


class ExportDocument(TypedDict):
    format: int
    segtui_version: str
    exported_at: float
    #: The project `segtui export` was asked for.
    project: int
    with_children: bool
    with_dataset: bool
    #: Parents before their children, models before the models optimized from them.
    projects: list[ExportedProject]
    models: list[ExportedModel]
    datasets: list[ExportedDataset]
    results: list[ExportedResult]


def model_member(model_id: int, name: str) -> str:
    return f"models/{model_id}/{name}"


def annotations_member(dataset_id: int) -> str:
    return f"datasets/{dataset_id}/annotations.json"


def image_member(dataset_id: int, path: str) -> str:
    return f"datasets/{dataset_id}/images/{path}"


def report_member(result_id: int, name: str) -> str:
    return f"reports/{result_id}/{name}"


def document_bytes(document: ExportDocument) -> bytes:
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")


# -- reading an untrusted document ----------------------------------------------------------

_TIME = (int, float)
_ID = (int,)
_OPTIONAL_ID = (int, type(None))
#: The fields that name a row of the document: whole numbers from 1 (SQLite's row ids).
_ROW_IDS = frozenset({"id", "model", "dataset", "project", "parent", "optimized_from"})
#: SQLite stores integers up to this; a larger one could not be inserted.
_MAX_INT = 2**63 - 1
#: A date Python can show: the last second of the year 9999.
_MAX_TIME = 253_402_300_799
#: segtui's document nests about 8 levels; Python's parser and deepcopy fail near 1000.
_MAX_DEPTH = 64
# Characters that would drive the terminal or reorder what it shows, where a text is printed.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "document": {
        "format": _ID,
        "segtui_version": (str,),
        "exported_at": _TIME,
        "project": _ID,
        "with_children": (bool,),
        "with_dataset": (bool,),
        "projects": (list,),
        "models": (list,),
        "datasets": (list,),
        "results": (list,),
    },
    "project": {
        "id": _ID,
        "name": (str,),
        "model": _ID,
        "dataset": _ID,
        "device": (str,),
        "parent": _OPTIONAL_ID,
        "created_at": _TIME,
    },
    "model": {
        "id": _ID,
        "name": (str,),
        "format_id": (str,),
        "source_path": (str,),
        "xml_name": (str,),
        "checksum": (str,),
        "analysis": (dict,),
        "class_names": (list,),
        "optimized_from": _OPTIONAL_ID,
        "optimization": (dict, type(None)),
        "created_at": _TIME,
        "files": (list,),
    },
    "dataset": {
        "id": _ID,
        "name": (str,),
        "kind": (str,),
        "root": (str,),
        "analysis": (dict,),
        "created_at": _TIME,
        "images": (list,),
        "annotations": (bool,),
        "with_images": (bool,),
    },
    "image": {"path": (str,), "width": _ID, "height": _ID, "coco_id": _OPTIONAL_ID},
    "result": {
        "id": _ID,
        "project": _ID,
        "kind": (str,),
        "data": (dict,),
        "created_at": _TIME,
        "files": (list,),
    },
}


def refused(detail: str) -> SegtuiError:
    return SegtuiError(
        f"The archive's {EXPORT_DOC} is not a segtui export: {detail}.", REEXPORT_HINT
    )


def control_character(text: str) -> str | None:
    """The first character of `text` that must not reach a terminal, described; or None."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in _BIDI_CONTROLS:
            return f"the control character {char!r}"
    return None


def _text_problem(document: object) -> str | None:
    """A text anywhere in the document (results' data included) that would drive the
    terminal where it is printed, described; line breaks and tabs are plain text there."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and not value.isprintable():
            bad = control_character(value.replace("\n", "").replace("\t", ""))
            if bad is not None:
                return f"a text ({value[:40]!r}) holds {bad}"
    return None


def _value_problem(field: str, item: object, types: tuple[type, ...]) -> str | None:
    """Why `item` cannot be the value of `field`, or None (its type is checked already)."""
    if isinstance(item, str):
        bad = control_character(item)
        return None if bad is None else f"holds {bad}"
    if isinstance(item, bool) or item is None or not isinstance(item, int | float):
        return None
    if types is _TIME:
        if not math.isfinite(item) or not 0 <= item <= _MAX_TIME:
            return f"is {item!r}, not a date"
    elif field in _ROW_IDS and not 1 <= item <= _MAX_INT:
        return f"is {item!r}, not an id (a whole number from 1)"
    elif not -_MAX_INT - 1 <= item <= _MAX_INT:
        return f"is {item!r}, too large a number"
    return None


def _checked(value: object, what: str, where: str) -> JsonObject:
    """`value` as an object with every field of `what` of its type (a bool is no number),
    ids from 1, dates that are dates, numbers SQLite stores and texts without control
    characters."""
    if not isinstance(value, dict):
        raise refused(f"{where} is not an object")
    for field, types in _FIELDS[what].items():
        if field not in value:
            raise refused(f"{where} has no {field!r}")
        item = value[field]
        if isinstance(item, bool) and bool not in types:
            raise refused(f"{where}: {field!r} is not a number")
        if not isinstance(item, types):
            raise refused(f"{where}: {field!r} is not {' or '.join(t.__name__ for t in types)}")
        problem = _value_problem(field, item, types)
        if problem is not None:
            raise refused(f"{where}: {field!r} {problem}")
    return cast(JsonObject, value)


def _unique_ids(rows: Iterable[Mapping[str, Any]], what: str) -> set[int]:
    ids: set[int] = set()
    for row in rows:
        if row["id"] in ids:
            raise refused(f"two {what}s have the id {row['id']}")
        ids.add(row["id"])
    return ids


def safe_relative(path: str) -> bool:
    """A plain relative POSIX path, written one way only: no root, no '..', no empty or '.'
    part, no trailing '/', no backslash ('a//b' and './b' would name the same file twice)."""
    if not path or "\\" in path or "\x00" in path:
        return False
    pure = PurePosixPath(path)
    if pure.is_absolute() or pure.as_posix() != path:
        return False
    return all(p not in ("", ".", "..") for p in pure.parts)


def _check_name(name: str, where: str) -> None:
    """A name as segtui stores one: "Tiny " would pass for "Tiny" in every list."""
    if check_name(name, f"The archive's {where} name") != name:
        raise refused(f"{where} has blanks around its name {name!r}")


def _check_files(
    names: list[Any], member: Callable[[str], str], members: Collection[str], where: str
) -> None:
    for name in names:
        if not isinstance(name, str) or not safe_relative(name):
            raise refused(f"{where} names the file {name!r}, which is not a plain relative path")
        if member(name) not in members:
            raise refused(f"{where} names {member(name)!r}, which the archive does not hold")


def _check_acyclic(links: Mapping[int, int | None], what: str) -> None:
    """Every chain of `links` (child -> parent) ends: no row is its own ancestor."""
    for start in links:
        seen = {start}
        step = links[start]
        while step is not None:
            if step in seen:
                raise refused(f"{what} {start} is its own ancestor")
            seen.add(step)
            step = links.get(step)


def _check_models(models: list[JsonObject], members: Collection[str]) -> set[int]:
    ids = _unique_ids(models, "model")
    for model in models:
        where = f"model {model['id']}"
        _check_name(model["name"], where)
        if model["optimized_from"] is not None and model["optimized_from"] not in ids:
            raise refused(
                f"{where} was optimized from model {model['optimized_from']}, which it lacks"
            )
        if not all(isinstance(name, str) for name in model["class_names"]):
            raise refused(f"{where} has class names that are not text")
        bad = next(filter(None, map(control_character, model["class_names"])), None)
        if bad is not None:
            raise refused(f"{where} has a class name that holds {bad}")
        if model["xml_name"] not in model["files"]:
            raise refused(f"{where} lacks its file {model['xml_name']!r}")
        weights = str(PurePosixPath(model["xml_name"]).with_suffix(".bin"))
        if not model["xml_name"].endswith(".xml") or weights not in model["files"]:
            raise refused(f"{where} lacks the weights of {model['xml_name']!r} ({weights!r})")
        _check_files(model["files"], partial(model_member, model["id"]), members, where)
        _check_accuracy_settings(model, where)
    _check_acyclic({m["id"]: m["optimized_from"] for m in models}, "Model")
    return ids


def _check_accuracy_settings(model: JsonObject, where: str) -> None:
    """A model's accuracy settings hold keys its format has, each value as `configure`
    stores it, and the format and class names the model row says are in effect."""
    from segtui.core.accuracy_fields import FIELDS
    from segtui.core.formats import keys_for
    from segtui.core.setting_fields import SettingError

    values = model.get("accuracy_settings", {})
    if not isinstance(values, dict):
        raise refused(f"{where}'s accuracy settings are not an object")
    applicable = keys_for(str(values.get("format", model["format_id"])))
    for key, value in values.items():
        if key not in FIELDS or key not in applicable:
            raise refused(f"{where} has the accuracy setting {key!r}, which its format lacks")
        try:
            checked = FIELDS[key].check(value)
        except SettingError as exc:
            raise refused(f"{where}'s accuracy setting {exc.message.rstrip('.')}") from None
        if checked != value:
            raise refused(f"{where}'s accuracy setting {key} is not written as segtui writes it")
    for key, column in (("format", "format_id"), ("class_names", "class_names")):
        if key in values and values[key] != model[column]:
            raise refused(f"{where}'s accuracy setting {key} is not its {column}")


def _check_datasets(datasets: list[JsonObject], members: Collection[str]) -> set[int]:
    ids = _unique_ids(datasets, "dataset")
    for dataset in datasets:
        key, where = dataset["id"], f"dataset {dataset['id']}"
        _check_name(dataset["name"], where)
        if dataset["kind"] not in tuple(DatasetKind):
            raise refused(f"{where} has the unknown kind {dataset['kind']!r}")
        images = [_checked(im, "image", f"an image of {where}") for im in dataset["images"]]
        if not images:
            raise refused(f"{where} has no images")
        paths = [im["path"] for im in images]
        if any(im["width"] < 1 or im["height"] < 1 for im in images):
            raise refused(f"{where} lists an image without pixels")
        if any(im["width"] * im["height"] > _MAX_PIXELS for im in images):
            raise refused(f"{where} lists an image of more than {_MAX_PIXELS:,} pixels")
        if len(set(paths)) != len(paths):
            raise refused(f"{where} lists an image twice")
        if dataset["with_images"]:
            _check_files(paths, partial(image_member, key), members, where)
        elif not all(safe_relative(p) for p in paths):
            raise refused(f"{where} lists an image path that is not a plain relative path")
        if (dataset["kind"] == DatasetKind.COCO) != dataset["annotations"]:
            raise refused(f"{where}: its annotations do not match its kind")
        if dataset["annotations"] and annotations_member(key) not in members:
            raise refused(f"{where} lacks its annotations file")
    return ids


def _check_projects(projects: list[JsonObject], models: set[int], datasets: set[int]) -> set[int]:
    ids = _unique_ids(projects, "project")
    for project in projects:
        where = f"project {project['id']}"
        _check_name(project["name"], where)
        if project["model"] not in models or project["dataset"] not in datasets:
            raise refused(f"{where} names a model or a dataset the archive lacks")
        if project["parent"] is not None and project["parent"] not in ids:
            raise refused(f"{where} names a parent project the archive lacks")
        if not project["device"].strip():
            raise refused(f"{where} has no device")
    _check_acyclic({p["id"]: p["parent"] for p in projects}, "Project")
    return ids


def read_document(raw: bytes | None, members: Collection[str]) -> ExportDocument:
    """The archive's document, checked whole (shape, keys, named members), or a refusal.

    `members` are the paths the archive's manifest lists.
    """
    if raw is None:
        raise refused("it is missing")
    if json_depth(raw) > _MAX_DEPTH:
        raise refused(f"it nests lists or objects more than {_MAX_DEPTH} levels deep")
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise refused("it is not JSON text") from None
    doc = _checked(value, "document", "the document")
    if doc["format"] > DOC_FORMAT:
        raise SegtuiError(
            f"The archive was written by a newer segtui (format {doc['format']}; "
            f"this one reads up to {DOC_FORMAT}).",
            "Upgrade segtui, or export again with this version.",
        )
    lists = {
        name: [_checked(row, name[:-1], f"a {name[:-1]}") for row in doc[name]]
        for name in ("models", "datasets", "projects", "results")
    }
    models = _check_models(lists["models"], members)
    datasets = _check_datasets(lists["datasets"], members)
    projects = _check_projects(lists["projects"], models, datasets)
    if doc["project"] not in projects:
        raise refused(f"the exported project {doc['project']} is not in it")
    _unique_ids(lists["results"], "result")
    for result in lists["results"]:
        where = f"result {result['id']}"
        if result["project"] not in projects:
            raise refused(f"{where} belongs to a project the archive lacks")
        _check_files(result["files"], partial(report_member, result["id"]), members, where)
        report = result["kind"] in (ResultKind.REPORT_PARENT, ResultKind.REPORT_ANNOTATIONS)
        if sorted(result["files"]) not in ([], list(REPORT_FILES) if report else []):
            wanted = f"a report has {' and '.join(REPORT_FILES)}" if report else "only reports do"
            raise refused(
                f"{where} ({result['kind']}) has the files {result['files']}, but {wanted}"
            )
    problem = stored_problem(lists)
    if problem is not None:
        raise refused(problem)
    problem = _text_problem(doc)  # results' data: their texts are printed too
    if problem is not None:
        raise refused(problem)
    document = cast(ExportDocument, doc)
    unnamed = sorted(set(members) - named_members(document))
    if unnamed:
        raise refused(f"the archive holds {unnamed[0]!r}, which it does not name")
    return document


def named_members(document: ExportDocument) -> set[str]:
    """Every member the document names, itself included."""
    named = {EXPORT_DOC}
    for model in document["models"]:
        named.update(model_member(model["id"], name) for name in model["files"])
    for dataset in document["datasets"]:
        if dataset["annotations"]:
            named.add(annotations_member(dataset["id"]))
        if dataset["with_images"]:
            named.update(image_member(dataset["id"], i["path"]) for i in dataset["images"])
    for result in document["results"]:
        named.update(report_member(result["id"], name) for name in result["files"])
    return named


__all__ = [
    "ARCHIVE_KIND",
    "DOC_FORMAT",
    "EXPORT_DOC",
    "REEXPORT_HINT",
    "REPORT_FILES",
    "ExportDocument",
    "ExportedDataset",
    "ExportedImage",
    "ExportedModel",
    "ExportedProject",
    "ExportedResult",
    "annotations_member",
    "control_character",
    "document_bytes",
    "image_member",
    "model_member",
    "named_members",
    "read_document",
    "report_member",
    "safe_relative",
]
