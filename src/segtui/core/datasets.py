"""Dataset import (a folder of images, or COCO instances JSON + images) and robust image loading."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import numpy.typing as npt

from segtui.core.coco_checks import (
    CocoFile,
    check_coco,
    check_geometry,
    check_paths,
    normalised,
    outside_folder,
)
from segtui.core.errors import DatasetImportError
from segtui.core.image_header import HeaderError, header_size
from segtui.core.json_input import os_reason, read_json
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.records import (
    DatasetAnalysis,
    DatasetImage,
    DatasetRecord,
    JsonObject,
    SkippedFile,
)
from segtui.core.types import DatasetKind
from segtui.core.workspace import Workspace, atomic_write_text

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# Images larger than this are refused per file (a decoded 100 MP RGB image is 300 MB),
# from the header, before anything is decoded.
MAX_PIXELS = 100_000_000
# No image of at most MAX_PIXELS needs more (16-bit RGBA uncompressed is 800 MB).
MAX_FILE_BYTES = 1 << 30


class ImageReadError(Exception):
    """One image that cannot be decoded; the message says why."""


def _read_image_file(path: Path) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """The file's bytes and the size its header states, checked before anything is decoded.

    Opened without blocking (a FIFO named like an image must not hang the import) and
    checked to be a regular file of a sane size before it is read whole.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ImageReadError(f"cannot read file ({os_reason(exc)})") from exc
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ImageReadError("not a regular file")
        if info.st_size == 0:
            raise ImageReadError("empty file")
        if info.st_size > MAX_FILE_BYTES:
            raise ImageReadError(f"file too large ({info.st_size / 1e9:.1f} GB)")
        try:
            size = header_size(file, MAX_PIXELS)
            file.seek(0)
            data = file.read()
        except HeaderError as exc:
            raise ImageReadError(str(exc)) from exc
        except OSError as exc:
            raise ImageReadError(f"cannot read file ({os_reason(exc)})") from exc
    return np.frombuffer(data, dtype=np.uint8), size


_stderr_lock = threading.Lock()
_stderr_users = 0
_stderr_saved = -1


def _point_stderr_at_null() -> int:
    """Descriptor 2 to /dev/null; returns a copy of the old one (-1 where that failed)."""
    try:
        saved = os.dup(2)
    except OSError:
        return -1
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        os.close(saved)
        return -1
    os.dup2(null, 2)
    os.close(null)
    return saved


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 points at /dev/null while OpenCV decodes.

    libpng and OpenCV print a corrupt file's errors straight to descriptor 2: on the
    CLI that is noise before the clean message, in the TUI it lands on the screen. The
    file is reported as skipped with its reason instead. Counted, so that threads
    decoding at once restore the real stderr only when the last one is done.
    """
    global _stderr_users, _stderr_saved
    with _stderr_lock:
        if _stderr_users == 0:
            _stderr_saved = _point_stderr_at_null()
        _stderr_users += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_users -= 1
            if _stderr_users == 0 and _stderr_saved >= 0:
                os.dup2(_stderr_saved, 2)
                os.close(_stderr_saved)
                _stderr_saved = -1


def load_image(path: Path) -> npt.NDArray[np.uint8]:
    """Decode an image to HxWx3 BGR uint8.

    The pixel limit is checked from the header first, so a decompression bomb is never
    allocated. OpenCV's IMREAD_COLOR applies the EXIF orientation, expands grayscale,
    drops alpha and reduces 16-bit samples to 8 bits, which is what the models expect.
    Reading the bytes ourselves keeps unicode paths working.
    """
    raw, (width, height) = _read_image_file(path)
    # By content, not by name: a PNG named .jpg is a readable PNG.
    if raw[:2].tobytes() == b"\xff\xd8" and not _jpeg_complete(raw):
        raise ImageReadError("truncated JPEG (no end-of-image marker)")
    try:
        with _native_stderr_silenced():
            image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageReadError("not a readable image (OpenCV refused to decode it)") from exc
    except MemoryError as exc:
        raise ImageReadError("not enough memory to decode it") from exc
    if image is None:
        raise ImageReadError("not a readable image (corrupt or unsupported encoding)")
    decoded = (image.shape[1], image.shape[0])
    # The EXIF orientation may swap width and height; anything else is a lying header.
    if decoded not in ((width, height), (height, width)):
        raise ImageReadError(
            f"its header says {width}×{height} pixels but it decodes to {decoded[0]}×{decoded[1]}"
        )
    return np.ascontiguousarray(image, dtype=np.uint8)


def _jpeg_complete(raw: npt.NDArray[np.uint8]) -> bool:
    # Trailing padding after EOI is common; look at the last bytes only.
    tail = raw[-64:].tobytes()
    return b"\xff\xd9" in tail


@dataclass
class ScanResult:
    """Images found under a folder, and the files skipped with their reason."""

    images: list[DatasetImage] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def _link_problem(root: Path, path: Path) -> str | None:
    """Why a symbolic link in an image folder is not followed (None: it is not a link)."""
    if not path.is_symlink():
        return None
    if outside_folder(root, path.relative_to(root).as_posix()):
        # The same words whether or not the target exists: nothing is said about it.
        return "symbolic link to a file outside the folder (not followed)"
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return "broken symbolic link (its target does not exist)"
    return None


def printable(text: str) -> str:
    """A path as text that can be shown and stored: bytes that are not UTF-8 become '�'."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a name of bytes that are not UTF-8 (surrogate escapes)
        return False
    return True


def _folder_files(root: Path) -> tuple[list[str], list[SkippedFile]]:
    """Relative paths of the files under `root` (a resolved folder), and what was left out.

    Folder links are not descended into and file links that lead outside the folder are
    not followed; both are listed, as are loops, broken links, unreadable folders and
    names that are not UTF-8 (the database stores paths as text).
    """
    files: list[str] = []
    skipped: list[SkippedFile] = []

    def skip(path: Path, reason: str) -> None:
        rel = path.relative_to(root).as_posix() if path != root else "."
        skipped.append({"path": printable(rel), "reason": reason})

    def unreadable(exc: OSError) -> None:
        skip(Path(str(exc.filename or root)), f"folder cannot be read ({os_reason(exc)})")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        here = Path(dirpath)
        for name in dirnames:
            if (here / name).is_symlink():
                skip(here / name, "symbolic link to a folder (not followed)")
        for name in filenames:
            path = here / name
            if name.startswith("."):
                continue
            problem = _link_problem(root, path)
            if problem is None and not _is_utf8(str(path)):
                problem = "its name is not UTF-8 text (rename it)"
            if problem is None:
                files.append(path.relative_to(root).as_posix())
            else:
                skip(path, problem)
    files.sort(key=lambda rel: PurePosixPath(rel).parts)
    skipped.sort(key=lambda s: PurePosixPath(s["path"]).parts)
    return files, skipped


def scan_images(
    root: Path,
    relpaths: list[str] | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ScanResult:
    """Decode every image under `root` (recursive) or the given relative paths; skip and list bad files."""
    result = ScanResult()
    if relpaths is None:
        relpaths, result.skipped = _folder_files(root)
    total = len(relpaths)
    for n, rel in enumerate(relpaths):
        if cancel is not None:
            cancel.raise_if_cancelled()
        path = root / rel
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            result.skipped.append({"path": rel, "reason": "not an image file (by extension)"})
            continue
        try:
            image = load_image(path)
        except ImageReadError as exc:
            result.skipped.append({"path": rel, "reason": str(exc)})
            continue
        h, w = image.shape[:2]
        result.images.append(DatasetImage(len(result.images), rel, w, h, None))
        if n % 16 == 0 or n == total - 1:
            progress((n + 1) / max(total, 1), f"Reading images {n + 1}/{total}")
    return result


def _analysis(
    images: list[DatasetImage], skipped: list[SkippedFile], *, annotated: bool
) -> DatasetAnalysis:
    """Image counts and sizes; an annotated dataset adds its annotation keys."""
    sizes: dict[str, int] = {}
    for image in images:
        key = f"{image.width}x{image.height}"
        sizes[key] = sizes.get(key, 0) + 1
    common = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    return {
        "image_count": len(images),
        "sizes": dict(common),
        "distinct_sizes": len(sizes),
        "min_size": [min(i.width for i in images), min(i.height for i in images)]
        if images
        else None,
        "max_size": [max(i.width for i in images), max(i.height for i in images)]
        if images
        else None,
        "skipped": skipped,
        "annotated": annotated,
    }


def _folder(path: Path, what: str) -> Path:
    """`path` resolved, when it is a folder; else a message saying what it is instead."""
    try:
        info = path.stat()
    except OSError as exc:
        raise DatasetImportError(
            f"{what} {path} cannot be opened ({os_reason(exc)}).", "Check the path."
        ) from exc
    if not stat.S_ISDIR(info.st_mode):
        raise DatasetImportError(f"{what} {path} is not a folder.", "Check the path.")
    return Path(os.path.realpath(path))


def import_image_folder(
    ws: Workspace,
    folder: Path,
    *,
    name: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> DatasetRecord:
    """Register a not-annotated dataset: every readable image under `folder`."""
    folder = _folder(Path(folder), "The image folder")
    scan = scan_images(folder, progress=progress, cancel=cancel)
    if not scan.images:
        detail = (
            f"; {len(scan.skipped)} file(s) skipped, e.g. {_skipped_text(scan.skipped)}"
            if scan.skipped
            else ""
        )
        raise DatasetImportError(
            f"{folder} holds no readable images{detail}.",
            f"Put images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder or its subfolders.",
        )
    analysis = _analysis(scan.images, scan.skipped, annotated=False)
    return ws.add_dataset(
        name=name or folder.name,
        kind=DatasetKind.IMAGES,
        root=folder,
        analysis=analysis,
        images=scan.images,
    )


def _skipped_text(skipped: list[SkippedFile], limit: int = 3) -> str:
    return ", ".join(f"{s['path']} ({s['reason']})" for s in skipped[:limit])


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a folder that cannot be searched
        return False


def _find_images_dir(ann_path: Path, file_names: list[str]) -> Path:
    candidates = [
        ann_path.parent,
        ann_path.parent / "images",
        ann_path.parent.parent / "images",
        ann_path.parent.parent,
    ]
    # Only plain relative names are probed: nothing outside the candidates is looked at.
    probe = [
        f
        for f in file_names[:20]
        if not PurePosixPath(f).is_absolute() and ".." not in PurePosixPath(f).parts
    ]
    # The folder where most of the first files exist; missing ones are reported afterwards.
    best = max(candidates, key=lambda cand: sum(_is_file(cand / f) for f in probe))
    return Path(os.path.realpath(best))


def _coco_analysis(
    ann_path: Path,
    categories: tuple[JsonObject, ...],
    annotations: list[JsonObject],
    images: list[DatasetImage],
) -> DatasetAnalysis:
    """The dataset's analysis with its classes and instance counts per class."""
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in categories}
    instance_counts: dict[str, int] = {}
    for ann in annotations:
        key = names[int(ann["category_id"])]
        instance_counts[key] = instance_counts.get(key, 0) + 1
    analysis = _analysis(images, [], annotated=True)
    analysis["classes"] = [names[c] for c in sorted(names)]
    analysis["category_ids"] = sorted(names)
    analysis["instance_counts"] = instance_counts
    analysis["annotation_count"] = len(annotations)
    analysis["source_annotations"] = str(ann_path)
    return analysis


def _coco_images(
    ann_path: Path,
    coco: CocoFile,
    root: Path,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> list[DatasetImage]:
    """The images of a checked COCO file, each confined to `root`, present and decodable."""
    check_paths(coco, root)
    file_names = [im.file_name for im in coco.images]
    missing = [f for f in file_names if not os.path.lexists(root / f)]
    if missing:
        raise DatasetImportError(
            f"{ann_path.name} references {len(missing)} image(s) that are not in {root}, "
            f"e.g. {', '.join(missing[:3])}.",
            "Pass the image folder with --images (or fix the file_name entries).",
        )
    scan = scan_images(root, file_names, progress=progress, cancel=cancel)
    if scan.skipped:
        raise DatasetImportError(
            f"{len(scan.skipped)} image(s) referenced by {ann_path.name} cannot be read, "
            f"e.g. {_skipped_text(scan.skipped)}.",
            "Fix or remove those images and their annotations.",
        )
    return [
        DatasetImage(img.idx, img.path, img.width, img.height, entry.id)
        for img, entry in zip(scan.images, coco.images, strict=True)
    ]


def import_coco(
    ws: Workspace,
    ann_path: Path,
    *,
    images_dir: Path | None = None,
    name: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> DatasetRecord:
    """Register an annotated dataset from a COCO instances JSON and its image folder.

    Every entry is checked (coco_checks) and a normalised copy is stored in the workspace:
    annotation ids renumbered from 1 (id 0 silently yields AP 0 in pycocotools), iscrowd,
    area and bbox present, image sizes as decoded. A file without annotations is
    registered as images, with a note: there is nothing to score against.
    """
    ann_path = Path(os.path.realpath(ann_path))
    coco = check_coco(read_json(ann_path, "a COCO instances JSON"), ann_path.name)
    if images_dir is not None:
        root = _folder(Path(images_dir), "The image folder")
    else:
        root = _find_images_dir(ann_path, [im.file_name for im in coco.images])
    images = _coco_images(ann_path, coco, root, progress, cancel)
    sizes = {d.coco_id: (d.width, d.height) for d in images if d.coco_id is not None}
    check_geometry(coco, sizes)
    if not coco.annotations:
        note: SkippedFile = {
            "path": ann_path.name,
            "reason": "lists no annotations: imported as images, which cannot be evaluated",
        }
        analysis = _analysis(images, [note], annotated=False)
        analysis["source_annotations"] = str(ann_path)
        return ws.add_dataset(
            name=name or ann_path.stem,
            kind=DatasetKind.IMAGES,
            root=root,
            analysis=analysis,
            images=images,
        )
    stored = normalised(coco, sizes)
    analysis = _coco_analysis(ann_path, coco.categories, stored["annotations"], images)
    return _register_coco(ws, name or ann_path.stem, root, analysis, images, stored)


def _register_coco(
    ws: Workspace,
    name: str,
    root: Path,
    analysis: DatasetAnalysis,
    images: list[DatasetImage],
    normalised: JsonObject,
) -> DatasetRecord:
    """Stage the normalised annotations and register the dataset with them."""
    staged = ws.staging_dir()
    staged_file = staged / "annotations.json"
    try:
        atomic_write_text(staged_file, json.dumps(normalised))
        return ws.add_dataset(
            name=name,
            kind=DatasetKind.COCO,
            root=root,
            analysis=analysis,
            images=images,
            annotations_file=staged_file,
        )
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def import_dataset(
    ws: Workspace,
    path: Path,
    *,
    images_dir: Path | None = None,
    name: str | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> DatasetRecord:
    """Import a folder of images, or a COCO .json with its image folder."""
    path = Path(path)
    for given in (path, images_dir):
        if given is not None and not _is_utf8(os.path.abspath(given)):
            raise DatasetImportError(
                f"{printable(str(given))} has a name that is not UTF-8 text.",
                "Rename it: segtui stores paths as text.",
            )
    if not os.path.lexists(path):
        raise DatasetImportError(f"No such file or folder: {path}.", "Check the path.")
    try:
        is_folder = stat.S_ISDIR(path.stat().st_mode)
    except OSError as exc:
        raise DatasetImportError(
            f"{path} cannot be opened ({os_reason(exc)}).", "Check the path."
        ) from exc
    if is_folder:
        if images_dir is not None:
            raise DatasetImportError(
                f"--images {images_dir} applies to a COCO .json file, but {path} is a folder of images.",
                "Leave out --images to import the folder, or pass the COCO .json file instead.",
            )
        return import_image_folder(ws, path, name=name, progress=progress, cancel=cancel)
    if path.suffix.lower() == ".json":
        return import_coco(
            ws, path, images_dir=images_dir, name=name, progress=progress, cancel=cancel
        )
    raise DatasetImportError(
        f"{path.name} is neither a folder of images nor a COCO .json file.",
        "Pass a folder of images, or a COCO instances .json (with --images for its image folder).",
    )


def image_path(dataset: DatasetRecord, image: DatasetImage) -> Path:
    return dataset.root / image.path
