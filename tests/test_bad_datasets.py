"""A corpus of bad dataset inputs: each ends in a message naming the file or entry and what is wrong.

Images are skipped and listed (the good image beside them is imported); a COCO file
with a bad entry is refused whole, naming the entry, and leaves the workspace as it was.
"""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import workspace_files, write_scene
from PIL import Image

from segtui.core.datasets import ImageReadError, import_dataset, load_image
from segtui.core.errors import DatasetImportError, SegtuiError
from segtui.core.image_header import header_size
from segtui.core.predictions import encode_mask
from segtui.core.workspace import Workspace

TOO_LARGE = "image too large by its header (over 100 megapixels)"
PNG_40000 = "image too large by its header: 40000×40000 pixels (over 100 megapixels)"
OUTSIDE = "symbolic link to a file outside the folder (not followed)"
CORRUPT = "not a readable image (corrupt or unsupported encoding)"
UNRECOGNISED = "not a readable image (unrecognised or corrupt header)"


# -- image files --------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, idat: bytes = b"", depth: int = 8) -> bytes:
    """A PNG whose IHDR claims width × height (valid CRCs), with the given compressed data."""
    colour = 0 if depth == 1 else 2
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", idat or zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )


def real_bomb_png() -> bytes:
    """A complete, valid 20000×20000 black PNG of a few dozen KB (1 bit per pixel)."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 20000 // 8)
    rows = row * 1000
    data = b"".join(packer.compress(rows) for _ in range(20)) + packer.flush()
    return png_claiming(20000, 20000, data, depth=1)


def encoded(ext: str, size: tuple[int, int] = (48, 64)) -> bytearray:
    image = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return bytearray(buffer.tobytes())


def jpeg_claiming(width: int, height: int) -> bytes:
    data = encoded(".jpg")
    at = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    data = encoded(".bmp")
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def pil_bytes(fmt: str, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (64, 48)).save(buffer, fmt)
    return buffer.getvalue()


def tiff_claiming(width: int, height: int) -> bytes:
    data = bytearray(pil_bytes("TIFF", "L"))
    ifd = struct.unpack_from("<I", data, 4)[0]
    for n in range(struct.unpack_from("<H", data, ifd)[0]):
        at = ifd + 2 + 12 * n
        tag, kind = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):
            struct.pack_into(
                "<H" if kind == 3 else "<I", data, at + 8, {256: width, 257: height}[tag]
            )
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    frame = pil_bytes("WEBP")[12:]
    extended = b"VP8X" + struct.pack("<I", 10) + bytes(4)
    extended += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + extended + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _bad_crc_png() -> bytes:
    data = encoded(".png")
    data[data.index(b"IDAT") + 10] ^= 0xFF
    return bytes(data)


def _write(name: str, data: bytes) -> Callable[[Path, Path], None]:
    def make(folder: Path, outside: Path) -> None:
        (folder / name).write_bytes(data)

    return make


def _link(name: str, target: Callable[[Path, Path], Path]) -> Callable[[Path, Path], None]:
    def make(folder: Path, outside: Path) -> None:
        (folder / name).symlink_to(target(folder, outside))

    return make


def _loop(folder: Path, outside: Path) -> None:
    (folder / "a.png").symlink_to(folder / "b.png")
    (folder / "b.png").symlink_to(folder / "a.png")


def _fifo(folder: Path, outside: Path) -> None:
    os.mkfifo(folder / "pipe.png")


def _fifo_for_x(folder: Path) -> None:
    (folder / "x.png").unlink()
    os.mkfifo(folder / "x.png")


def _unreadable_file(folder: Path, outside: Path) -> None:
    write_scene(folder / "locked.png")
    (folder / "locked.png").chmod(0)


def _unreadable_folder(folder: Path, outside: Path) -> None:
    write_scene(folder / "locked" / "inner.png")
    (folder / "locked").chmod(0)


def _secret(folder: Path, outside: Path) -> Path:
    write_scene(outside / "secret.png")
    return outside / "secret.png"


def _cut(ext: str) -> bytes:
    data = encoded(ext)
    return bytes(data[: len(data) // 2])


as_user = pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")

# fmt: off
IMAGE_CASES: list[Any] = [
    pytest.param(_write("bomb.png", png_claiming(40000, 40000)), {"bomb.png": PNG_40000}, id="png-100-bytes-claiming-40000x40000"),
    pytest.param(_write("bomb.png", png_claiming(40000, 40000)[:33]), {"bomb.png": PNG_40000}, id="png-ihdr-only-40000x40000"),
    pytest.param(_write("bomb.png", real_bomb_png()), {"bomb.png": "image too large by its header: 20000×20000 pixels (over 100 megapixels)"}, id="png-real-20000x20000"),
    pytest.param(_write("big.png", png_claiming(12000, 10000)), {"big.png": "image too large by its header: 12000×10000 pixels (over 100 megapixels)"}, id="png-120-megapixels"),
    pytest.param(_write("big.jpg", jpeg_claiming(11000, 10000)), {"big.jpg": "image too large by its header: 11000×10000 pixels (over 100 megapixels)"}, id="jpeg-sof-110-megapixels"),
    pytest.param(_write("big.bmp", bmp_claiming(11000, 10000)), {"big.bmp": "image too large by its header: 11000×10000 pixels (over 100 megapixels)"}, id="bmp-110-megapixels"),
    pytest.param(_write("big.tif", tiff_claiming(11000, 10000)), {"big.tif": "image too large by its header: 11000×10000 pixels (over 100 megapixels)"}, id="tiff-110-megapixels"),
    pytest.param(_write("big.webp", webp_claiming(16000, 16000)), {"big.webp": TOO_LARGE}, id="webp-canvas-256-megapixels"),
    pytest.param(_write("header.png", png_claiming(10, 10)), {"header.png": CORRUPT}, id="png-header-without-pixels"),
    pytest.param(_write("cut.png", _cut(".png")), {"cut.png": CORRUPT}, id="png-truncated"),
    pytest.param(_write("crc.png", _bad_crc_png()), {"crc.png": CORRUPT}, id="png-corrupt-data"),
    pytest.param(_write("cut.jpg", _cut(".jpg")), {"cut.jpg": "truncated JPEG (no end-of-image marker)"}, id="jpeg-truncated"),
    pytest.param(_write("flat.jpg", jpeg_claiming(64, 0)), {"flat.jpg": UNRECOGNISED}, id="jpeg-height-zero"),
    pytest.param(_write("empty.png", b""), {"empty.png": "empty file"}, id="zero-bytes"),
    pytest.param(_write("text.jpg", b"hello, not an image"), {"text.jpg": UNRECOGNISED}, id="text-named-jpg"),
    pytest.param(_write("anim.png", pil_bytes("GIF")), {"anim.png": UNRECOGNISED}, id="gif-named-png"),
    pytest.param(_write(os.fsdecode(b"caf\xe9.png"), b"x"), {"caf\ufffd.png": "its name is not UTF-8 text (rename it)"}, id="name-not-utf8"),
    pytest.param(_write("notes.txt", b"hello"), {"notes.txt": "not an image file (by extension)"}, id="not-an-image-extension"),
    pytest.param(_link("secret.png", _secret), {"secret.png": OUTSIDE}, id="symlink-outside-existing"),
    pytest.param(_link("ghost.png", lambda f, o: o / "missing.png"), {"ghost.png": OUTSIDE}, id="symlink-outside-missing"),
    pytest.param(_link("passwd.png", lambda f, o: Path("/etc/passwd")), {"passwd.png": OUTSIDE}, id="symlink-etc-passwd"),
    pytest.param(_link("up.png", lambda f, o: Path("../outside/secret.png")), {"up.png": OUTSIDE}, id="symlink-relative-up"),
    pytest.param(_loop, {"a.png": "symbolic link loop", "b.png": "symbolic link loop"}, id="symlink-loop"),
    pytest.param(_link("broken.png", lambda f, o: f / "gone.png"), {"broken.png": "broken symbolic link (its target does not exist)"}, id="symlink-broken-inside"),
    pytest.param(_link("elsewhere", lambda f, o: o), {"elsewhere": "symbolic link to a folder (not followed)"}, id="symlink-to-folder"),
    pytest.param(_fifo, {"pipe.png": "not a regular file"}, id="fifo-named-png"),
    pytest.param(_unreadable_file, {"locked.png": "cannot read file (permission denied)"}, id="unreadable-file", marks=as_user),
    pytest.param(_unreadable_folder, {"locked": "folder cannot be read (permission denied)"}, id="unreadable-folder", marks=as_user),
]
# fmt: on


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """An image folder holding one good image, and a folder beside it (outside it)."""
    folder, outside = tmp_path / "images", tmp_path / "outside"
    write_scene(folder / "good.png", (48, 64))
    outside.mkdir()
    return folder, outside


@pytest.mark.parametrize(("make", "skipped"), IMAGE_CASES)
def test_a_bad_image_is_skipped_and_listed_beside_the_good_one(
    workspace: Workspace,
    folders: tuple[Path, Path],
    make: Callable[[Path, Path], None],
    skipped: dict[str, str],
) -> None:
    folder, outside = folders
    make(folder, outside)
    try:
        record = import_dataset(workspace, folder)
    finally:
        for path in folder.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o700)  # let pytest clean up the unreadable cases
    images = workspace.dataset_images(record.id)
    assert [(i.path, i.width, i.height) for i in images] == [("good.png", 64, 48)]
    assert {s["path"]: s["reason"] for s in record.analysis["skipped"]} == skipped


@pytest.mark.parametrize(
    ("name", "data"),
    [
        pytest.param("bomb.png", png_claiming(40000, 40000), id="tiny"),
        pytest.param("bomb.png", real_bomb_png(), id="real"),
    ],
)
def test_a_decompression_bomb_never_reaches_the_decoder(
    workspace: Workspace,
    folders: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    data: bytes,
) -> None:
    folder, _ = folders
    (folder / name).write_bytes(data)
    decoded: list[int] = []
    real = cv2.imdecode

    def counting(raw: Any, flags: int) -> Any:
        decoded.append(len(raw))
        return real(raw, flags)

    monkeypatch.setattr("segtui.core.datasets.cv2.imdecode", counting)
    record = import_dataset(workspace, folder)
    assert record.image_count == 1
    assert decoded == [(folder / "good.png").stat().st_size]  # only the good image
    with pytest.raises(ImageReadError, match=r"^image too large by its header"):
        load_image(folder / name)  # predict and evaluate read through load_image too
    assert decoded == [(folder / "good.png").stat().st_size]


def test_a_lying_header_is_skipped(
    workspace: Workspace, folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = folders
    write_scene(folder / "liar.png", (30, 20))

    def lying(file: Any, max_pixels: int) -> tuple[int, int]:
        size = header_size(file, max_pixels)
        return (10, 10) if size == (20, 30) else size

    monkeypatch.setattr("segtui.core.datasets.header_size", lying)
    record = import_dataset(workspace, folder)
    assert record.image_count == 1
    assert record.analysis["skipped"] == [
        {"path": "liar.png", "reason": "its header says 10×10 pixels but it decodes to 20×30"}
    ]


def test_an_opencv_error_never_escapes(
    workspace: Workspace, folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = folders
    write_scene(folder / "odd.png", (30, 20))
    real = cv2.imdecode

    def failing(raw: Any, flags: int) -> Any:
        if len(raw) != (folder / "good.png").stat().st_size:
            raise cv2.error("CV_IO_MAX_IMAGE_PIXELS exceeded")
        return real(raw, flags)

    monkeypatch.setattr("segtui.core.datasets.cv2.imdecode", failing)
    record = import_dataset(workspace, folder)
    assert record.image_count == 1
    assert record.analysis["skipped"] == [
        {"path": "odd.png", "reason": "not a readable image (OpenCV refused to decode it)"}
    ]


def test_a_folder_of_only_bad_images_is_refused_naming_them(
    workspace: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png_claiming(40000, 40000))
    (folder / "empty.jpg").write_bytes(b"")
    with pytest.raises(DatasetImportError) as info:
        import_dataset(workspace, folder)
    assert info.value.message == (
        f"{folder} holds no readable images; 2 file(s) skipped, e.g. "
        f"bomb.png ({PNG_40000}), empty.jpg (empty file)."
    )
    assert workspace.datasets() == [] and workspace_files(workspace) == []


# -- COCO files -----------------------------------------------------------------------

POLYGON = [8.0, 6.0, 32.0, 6.0, 32.0, 24.0, 8.0, 24.0]
BBOX_TEXT = "bbox must be 4 finite numbers [x, y, width, height] with non-negative width and height"
Mutation = Callable[[dict[str, Any]], object]


def _set(section: str, index: int, **values: object) -> Mutation:
    return lambda d: d[section][index].update(values)


def _drop(section: str, index: int, key: str) -> Mutation:
    return lambda d: d[section][index].pop(key)


def _polygon(*polygons: list[Any]) -> Mutation:
    return _set("annotations", 0, segmentation=list(polygons))


def _rle(**values: object) -> Mutation:
    return lambda d: d["annotations"][0]["segmentation"].update(values)


def _zigzag() -> list[float]:
    points: list[float] = []
    for n in range(200):
        points += [0.0 if n % 2 else 63.0, float(n % 48)]
    return points


ANN0 = "instances.json: annotations[0] (id 1)"
# fmt: off
COCO_CASES: list[Any] = [
    pytest.param(lambda d: d.clear() or d.update(images=[]), "instances.json lists no images.", id="no-images"),
    pytest.param(lambda d: d.pop("images"), "instances.json is not a COCO instances file: it needs 'images', 'annotations' and 'categories'.", id="missing-images"),
    pytest.param(lambda d: d.pop("categories"), "instances.json is not a COCO instances file: it has annotations but no 'categories' (it needs 'images', 'annotations' and 'categories').", id="missing-categories"),
    pytest.param(lambda d: d.update(images={"x": 1}), "instances.json: 'images' must be a list, not an object.", id="images-an-object"),
    pytest.param(lambda d: d.update(annotations="none"), "instances.json: 'annotations' must be a list, not a string.", id="annotations-a-string"),
    pytest.param(lambda d: d.update(categories=None), "instances.json: 'categories' must be a list, not null.", id="categories-null"),
    pytest.param(_set("images", 0, id="abc"), 'instances.json: images[0]: id must be a non-negative integer (not "abc").', id="image-id-abc"),
    pytest.param(_set("images", 0, id=True), "instances.json: images[0]: id must be a non-negative integer (not true).", id="image-id-bool"),
    pytest.param(_set("images", 0, id=-3), "instances.json: images[0]: id must be a non-negative integer (not -3).", id="image-id-negative"),
    pytest.param(_set("images", 0, id=1.5), "instances.json: images[0]: id must be a non-negative integer (not 1.5).", id="image-id-float"),
    pytest.param(_set("images", 0, id=2**70), "instances.json: images[0]: id must be a non-negative integer (too large).", id="image-id-huge"),
    pytest.param(_set("images", 1, id=1), "instances.json: images[1] (id 1): duplicate id (images[0] has it too).", id="image-id-duplicate"),
    pytest.param(lambda d: d["images"].__setitem__(1, "y.png"), "instances.json: images[1]: must be an object, not a string.", id="image-a-string"),
    pytest.param(_drop("images", 0, "file_name"), "instances.json: images[0] (id 1): file_name must be a non-empty string (not null).", id="file-name-missing"),
    pytest.param(_set("images", 0, file_name=7), "instances.json: images[0] (id 1): file_name must be a non-empty string (not 7).", id="file-name-number"),
    pytest.param(_set("images", 1, file_name="x.png"), 'instances.json: images[1] (id 2): file_name "x.png" is also the file of images[0].', id="file-name-duplicate"),
    pytest.param(_set("images", 0, file_name="\udcff.png"), "instances.json: images[0] (id 1): file_name is not valid Unicode text.", id="file-name-lone-surrogate"),
    pytest.param(_set("images", 0, width="64"), 'instances.json: images[0] (id 1): width must be a positive integer (not "64").', id="width-a-string"),
    pytest.param(_set("images", 0, width=640, height=480), "instances.json: images[0] (id 1): width×height 640×480 differ from the image file's 64×48.", id="size-differs-from-file"),
    pytest.param(_set("categories", 0, id="box"), 'instances.json: categories[0]: id must be a non-negative integer (not "box").', id="category-id-string"),
    pytest.param(_set("categories", 1, id=1), "instances.json: categories[1] (id 1): duplicate id (categories[0] has it too).", id="category-id-duplicate"),
    pytest.param(_set("categories", 0, name={"en": "box"}), "instances.json: categories[0] (id 1): name must be a string (not an object).", id="category-name-object"),
    pytest.param(lambda d: d["annotations"].__setitem__(0, "oops"), "instances.json: annotations[0]: must be an object, not a string.", id="annotation-a-string"),
    pytest.param(_set("annotations", 0, id="abc"), 'instances.json: annotations[0]: id must be a non-negative integer (not "abc").', id="annotation-id-abc"),
    pytest.param(_set("annotations", 0, image_id="abc"), f'{ANN0}: image_id must be a non-negative integer (not "abc").', id="image-id-ref-abc"),
    pytest.param(_set("annotations", 0, image_id=77), f"{ANN0}: image_id 77 is not the id of any entry in 'images'.", id="image-id-ref-unknown"),
    pytest.param(_drop("annotations", 0, "category_id"), f"{ANN0}: category_id must be a non-negative integer (missing).", id="category-id-ref-missing"),
    pytest.param(_set("annotations", 0, category_id=9), f"{ANN0}: category_id 9 is not the id of any entry in 'categories'.", id="category-id-ref-unknown"),
    pytest.param(_set("annotations", 0, iscrowd=2), f"{ANN0}: iscrowd must be 0 or 1 (not 2).", id="iscrowd-2"),
    pytest.param(_set("annotations", 0, area=-1), f"{ANN0}: area must be a finite number ≥ 0 (not -1).", id="area-negative"),
    pytest.param(_set("annotations", 0, area=float("inf")), f"{ANN0}: area must be a finite number ≥ 0 (not Infinity).", id="area-infinite"),
    pytest.param(_set("annotations", 0, bbox="oops"), f'{ANN0}: {BBOX_TEXT} (not "oops").', id="bbox-a-string"),
    pytest.param(_set("annotations", 0, bbox=[1, 2, 3]), f"{ANN0}: {BBOX_TEXT} (not [1, 2, 3]).", id="bbox-three-numbers"),
    pytest.param(_set("annotations", 0, bbox=[10, 10, -5, 4]), f"{ANN0}: {BBOX_TEXT} (not [10, 10, -5, 4]).", id="bbox-negative-width"),
    pytest.param(_set("annotations", 0, bbox=[1, 1, float("nan"), 3]), f"{ANN0}: {BBOX_TEXT} (not [1, 1, NaN, 3]).", id="bbox-nan"),
    pytest.param(_set("annotations", 0, bbox=[1, 1, 10**400, 3]), f"{ANN0}: {BBOX_TEXT} (not [1, 1, {'1' + '0' * 37}...).", id="bbox-integer-beyond-float"),
    pytest.param(_polygon([1, 1, 10**400, 5, 9, 9]), f"{ANN0}: segmentation[0] must be a list of finite numbers (x, y, x, y, ...).", id="polygon-integer-beyond-float"),
    pytest.param(_set("annotations", 0, bbox=[-10, -10, 20, 20]), f"{ANN0}: bbox [-10, -10, 20, 20] lies outside its 64×48 image.", id="bbox-negative-corner"),
    pytest.param(_set("annotations", 0, bbox=[-50, -40, 10, 10]), f"{ANN0}: bbox [-50, -40, 10, 10] lies outside its 64×48 image.", id="bbox-far-negative"),
    pytest.param(_set("annotations", 0, bbox=[60, 0, 30, 10]), f"{ANN0}: bbox [60, 0, 30, 10] lies outside its 64×48 image.", id="bbox-past-the-right-edge"),
    pytest.param(_drop("annotations", 0, "segmentation"), f"{ANN0}: it has no segmentation (segtui needs instance masks: polygons or RLE).", id="segmentation-missing"),
    pytest.param(_set("annotations", 0, segmentation="mask"), f"{ANN0}: segmentation must be polygons (a list of lists) or RLE (an object), not a string.", id="segmentation-a-string"),
    pytest.param(_polygon(), f"{ANN0}: segmentation is an empty list (no polygon).", id="polygons-empty"),
    pytest.param(_polygon([1, 1, 5, 5]), f"{ANN0}: segmentation[0] has 2 point(s): a polygon needs at least 3.", id="polygon-two-points"),
    pytest.param(_polygon(POLYGON, [1, 1, 5, 5, 9]), f"{ANN0}: segmentation[1] has an odd count of numbers (5): a polygon is x, y pairs.", id="polygon-odd-count"),
    pytest.param(_polygon([1, 1, float("nan"), 5, 9, 9]), f"{ANN0}: segmentation[0] must be a list of finite numbers (x, y, x, y, ...).", id="polygon-nan"),
    pytest.param(_set("annotations", 0, segmentation=POLYGON), f"{ANN0}: segmentation[0] must be a list of finite numbers (x, y, x, y, ...).", id="polygon-not-nested"),
    pytest.param(_polygon([1e300, 1, 5, 5, 9, 9]), f"{ANN0}: segmentation[0] has points far outside its 64×48 image.", id="polygon-huge-coordinates"),
    pytest.param(_polygon(_zigzag()), f"{ANN0}: segmentation[0] has an outline of 12600 pixels, too long for its 64×48 image.", id="polygon-endless-outline"),
    pytest.param(_rle(counts="!!!!"), f"{ANN0}: RLE counts is not a valid compressed RLE string.", id="rle-garbage-characters"),
    pytest.param(_rle(counts="00"), f"{ANN0}: RLE counts do not decode to its size 48×64 (corrupt RLE).", id="rle-garbage-runs"),
    pytest.param(_rle(counts=[-5, 3077]), f"{ANN0}: RLE counts do not decode to its size 48×64 (corrupt RLE).", id="rle-negative-run"),
    pytest.param(_rle(counts=5), f"{ANN0}: RLE counts must be a string or a list of integers (not 5).", id="rle-counts-a-number"),
    pytest.param(_rle(size="48x64"), f'{ANN0}: RLE size must be [height, width], two positive integers (not "48x64").', id="rle-size-a-string"),
    pytest.param(_set("annotations", 0, segmentation=dict(encode_mask(np.ones((10, 10), np.uint8)))), f"{ANN0}: RLE size [10, 10] is not its image's [height, width] [48, 64].", id="rle-of-another-size"),
]
# fmt: on


@pytest.mark.parametrize(("mutate", "message"), COCO_CASES)
def test_a_bad_coco_entry_refuses_the_file_naming_it(
    workspace: Workspace, coco_dataset: Path, mutate: Mutation, message: str
) -> None:
    data = json.loads(coco_dataset.read_text())
    mutate(data)
    coco_dataset.write_text(json.dumps(data))
    with pytest.raises(DatasetImportError) as info:
        import_dataset(workspace, coco_dataset)
    assert info.value.message == message and info.value.hint
    assert isinstance(info.value, SegtuiError)
    assert workspace.datasets() == [] and workspace_files(workspace) == []


# fmt: off
RAW_CASES: list[Any] = [
    pytest.param(b"{nope", "instances.json is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)).", id="not-json"),
    pytest.param(b'{"images": "\xff"}', "instances.json is not valid JSON (not UTF-8 text at byte 12).", id="not-utf8"),
    pytest.param(b"[" * 200_000 + b"]" * 200_000, "instances.json nests lists or objects more than 64 levels deep (a COCO file needs about 5).", id="nested-200k-deep"),
    pytest.param(b'{"images": ' + b"[{" * 100_000, "instances.json nests lists or objects more than 64 levels deep (a COCO file needs about 5).", id="nested-unterminated"),
    pytest.param(b'{"images": [{"id": ' + b"7" * 5000 + b"}]}", "instances.json is not valid JSON for segtui (a number with thousands of digits).", id="integer-of-5000-digits"),
    pytest.param(b"[]", "instances.json is not a COCO instances file: its top level is a list, not an object (it needs 'images', 'annotations' and 'categories').", id="top-level-list"),
    pytest.param(b'"images"', "instances.json is not a COCO instances file: its top level is a string, not an object (it needs 'images', 'annotations' and 'categories').", id="top-level-string"),
    pytest.param(b"", "instances.json is not valid JSON (Expecting value: line 1 column 1 (char 0)).", id="empty-file"),
]
# fmt: on


@pytest.mark.parametrize(("raw", "message"), RAW_CASES)
def test_a_file_that_is_not_coco_json_is_refused(
    workspace: Workspace, coco_dataset: Path, raw: bytes, message: str
) -> None:
    coco_dataset.write_bytes(raw)
    with pytest.raises(DatasetImportError) as info:
        import_dataset(workspace, coco_dataset)
    assert info.value.message == message and info.value.hint
    assert workspace.datasets() == [] and workspace_files(workspace) == []


def test_several_bad_entries_are_named_first_few_then_counted(
    workspace: Workspace, coco_dataset: Path
) -> None:
    data = json.loads(coco_dataset.read_text())
    template = data["annotations"][0]
    data["annotations"] = [dict(template, id=10 + n, bbox="oops") for n in range(7)]
    coco_dataset.write_text(json.dumps(data))
    with pytest.raises(DatasetImportError) as info:
        import_dataset(workspace, coco_dataset)
    listed = "; ".join(
        f'annotations[{n}] (id {10 + n}): {BBOX_TEXT} (not "oops")' for n in range(5)
    )
    assert info.value.message == f"instances.json has 7 invalid entries: {listed}; and 2 more."
    assert workspace.datasets() == [] and workspace_files(workspace) == []


# -- paths ----------------------------------------------------------------------------


def _images_dir(coco_dataset: Path) -> Path:
    return coco_dataset.parent.parent / "images"


@pytest.mark.parametrize(
    "file_name",
    [
        pytest.param("{outside}/secret.png", id="absolute"),
        pytest.param("../../outside/secret.png", id="dot-dot"),
        pytest.param("../../../../../../../../../etc/passwd", id="etc-passwd"),
        pytest.param("/etc/passwd", id="absolute-etc-passwd"),
        pytest.param("sub/../../x.png", id="dot-dot-inside-a-path"),
        pytest.param("link/secret.png", id="through-a-folder-link"),
    ],
)
def test_a_file_name_outside_the_image_folder_is_refused_saying_nothing_about_it(
    workspace: Workspace, coco_dataset: Path, tmp_path: Path, file_name: str
) -> None:
    outside = tmp_path / "outside"
    (coco_dataset.parent.parent / "images" / "link").symlink_to(outside)
    messages = []
    for exists in (False, True):
        if exists:
            write_scene(outside / "secret.png")
        data = json.loads(coco_dataset.read_text())
        data["images"][0]["file_name"] = file_name.format(outside=outside)
        coco_dataset.write_text(json.dumps(data))
        with pytest.raises(DatasetImportError) as info:
            import_dataset(workspace, coco_dataset)
        messages.append(str(info.value))
    assert messages[0] == messages[1]  # the same whether or not the file exists
    root = _images_dir(coco_dataset).resolve()
    assert messages[0].startswith(
        f"instances.json: images[0] (id 1): file_name must name a file inside the image folder {root}."
    )
    assert "secret" not in messages[0] and "passwd" not in messages[0]
    assert workspace.datasets() == [] and workspace_files(workspace) == []


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        pytest.param(
            lambda d: (d / "x.png").unlink() or (d / "x.png").symlink_to(d / "x.png"),
            "1 image(s) referenced by instances.json cannot be read, e.g. x.png (cannot read file (a symbolic link loop)).",
            id="symlink-loop",
        ),
        pytest.param(
            lambda d: (d / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n broken"),
            f"1 image(s) referenced by instances.json cannot be read, e.g. x.png ({UNRECOGNISED}).",
            id="corrupt-image",
        ),
        pytest.param(
            lambda d: (d / "x.png").write_bytes(png_claiming(40000, 40000)),
            f"1 image(s) referenced by instances.json cannot be read, e.g. x.png ({PNG_40000}).",
            id="decompression-bomb",
        ),
        pytest.param(
            lambda d: (d / "y.png").unlink(),
            "instances.json references 1 image(s) that are not in {root}, e.g. y.png.",
            id="missing-image",
        ),
        pytest.param(
            _fifo_for_x,
            "1 image(s) referenced by instances.json cannot be read, e.g. x.png (not a regular file).",
            id="fifo-image",
        ),
    ],
)
def test_an_image_of_a_coco_file_that_cannot_be_read_refuses_the_file(
    workspace: Workspace,
    coco_dataset: Path,
    prepare: Callable[[Path], object],
    message: str,
) -> None:
    prepare(_images_dir(coco_dataset))
    with pytest.raises(DatasetImportError) as info:
        import_dataset(workspace, coco_dataset)
    assert info.value.message == message.format(root=_images_dir(coco_dataset).resolve())
    assert workspace.datasets() == [] and workspace_files(workspace) == []


def test_an_unreadable_image_is_skipped_even_where_permissions_cannot_be_dropped(
    workspace: Workspace, folders: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = folders
    write_scene(folder / "locked.png")
    real_open = os.open

    def refusing(path: Any, flags: int, *args: Any) -> int:
        if Path(path).name == "locked.png":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr("segtui.core.datasets.os.open", refusing)
    record = import_dataset(workspace, folder)
    assert record.image_count == 1
    assert record.analysis["skipped"] == [
        {"path": "locked.png", "reason": "cannot read file (permission denied)"}
    ]
