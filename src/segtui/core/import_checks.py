"""What a user hands an import, checked before any work: names, class names, input shapes, files.

Each check raises a SegtuiError that says what was wrong and what to do; `label` names the
field as the caller shows it (`--name` on the command line, "Project name" in a form).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from segtui.core.errors import ModelImportError, SegtuiError
from segtui.core.json_input import os_reason

#: A name is shown in lists and tables: longer than this is a mistake (a pasted file?).
MAX_NAME_LENGTH = 200
#: The largest height or width an input shape may ask for, and the largest H×W.
MAX_INPUT_SIDE = 8192
MAX_INPUT_PIXELS = 8192 * 4096
#: The smallest height or width: below this no segmentation model has anything to see.
MIN_INPUT_SIDE = 16
#: A class-names file is a short text: one name per line.
MAX_CLASS_FILE_BYTES = 1 << 20
MAX_CLASSES = 10_000

# Bidirectional overrides reorder what a terminal shows (a name could pass for another).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SHAPE_SEPARATORS = re.compile(r"[,x×\s]+")
SHAPE_EXAMPLE = "1,3,800,1344"


class InputShapeError(ModelImportError):
    """An input shape that is not N,C,H,W of positive whole numbers within bounds."""


def _bad_character(text: str) -> str | None:
    """The first character a name must not hold, described; None when all are fine."""
    for position, char in enumerate(text, start=1):
        category = unicodedata.category(char)
        if category == "Cs":
            return f"bytes that are not UTF-8 text (character {position})"
        if category in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            return f"the control character {char!r} (character {position})"
    return None


def check_name(text: str | None, label: str, *, default: str = "the default name") -> str | None:
    """A name as given (surrounding blanks removed); None when none was given."""
    if text is None:
        return None
    name = text.strip()
    if not name:
        what = "empty" if not text else "only blanks"
        raise SegtuiError(
            f"{label} is {what}: a name needs at least one visible character.",
            f"Give a name with at least one letter or digit, or leave it out to use {default}.",
        )
    if len(name) > MAX_NAME_LENGTH:
        raise SegtuiError(
            f"{label} is {len(name):,} characters long: at most {MAX_NAME_LENGTH} are allowed.",
            "Give a shorter name.",
        )
    bad = _bad_character(name)
    if bad is not None:
        raise SegtuiError(
            f"{label} holds {bad}.", "Use printable characters only (letters, digits, spaces, ·-_)."
        )
    return name


def parse_input_shape(text: str) -> tuple[int, ...]:
    """'1,3,800,1344' (or 1x3x800x1344) as whole numbers; `check_input_shape` judges them."""
    parts = [p for p in _SHAPE_SEPARATORS.split(text.strip()) if p]
    if not parts:
        raise InputShapeError(
            "The input shape is empty.", f"Give N,C,H,W as whole numbers, e.g. {SHAPE_EXAMPLE}."
        )
    for part in parts:
        if not re.fullmatch(r"[+-]?[0-9]+", part):
            raise InputShapeError(
                f"The input shape {text.strip()!r} is not whole numbers: {part!r} is not one.",
                f"Give N,C,H,W as whole numbers separated by commas, e.g. {SHAPE_EXAMPLE}.",
            )
    return tuple(int(part) for part in parts)


def shape_text(dims: Sequence[int | None]) -> str:
    return ",".join("?" if d is None else str(d) for d in dims)


def _dimension_problem(dims: Sequence[int]) -> str | None:
    """What is wrong with N,C,H,W's values, whatever the model; None when nothing is."""
    for label, dim in zip("NCHW", dims, strict=True):
        if dim < 1:
            return f"has {dim} as {label}: every dimension must be a whole number of at least 1"
    if dims[0] != 1:
        return (
            f"asks for a batch of {dims[0]}: segtui imports a model for one image at a time "
            "(N must be 1; benchmarks set their own batch)"
        )
    for label, dim in zip("HW", dims[2:], strict=True):
        if dim > MAX_INPUT_SIDE:
            return f"has {dim:,} as {label}: at most {MAX_INPUT_SIDE} is allowed"
        if dim < MIN_INPUT_SIDE:
            return (
                f"has {dim} as {label}: at least {MIN_INPUT_SIDE} pixels are needed for a "
                "segmentation model to see anything"
            )
    if dims[2] * dims[3] > MAX_INPUT_PIXELS:
        return (
            f"asks for {dims[2] * dims[3] / 1e6:.0f} million pixels per image: at most "
            f"{MAX_INPUT_PIXELS / 1e6:.1f} million are allowed"
        )
    return None


def check_input_shape(
    dims: Sequence[int], port: Sequence[int | None] | None = None, where: str = ""
) -> tuple[int, ...]:
    """N,C,H,W for an image input: N 1, C the input's channels, H and W within bounds.

    `port` is the shape of the model's image input (None for a dynamic dimension) and
    `where` names the model: the messages then say what the model takes.
    """
    channels = port[1] if port is not None and len(port) == 4 and port[1] is not None else 3
    layout = "" if port is None else f" {where}'s image input is [{shape_text(port)}] (N,C,H,W)."
    hint = (
        f"Give 1,{channels},H,W with H and W from {MIN_INPUT_SIDE} to {MAX_INPUT_SIDE}, "
        f"e.g. 1,{channels},800,1344."
    )
    shown = shape_text(dims)
    rank = 4 if port is None else len(port)
    if len(dims) != rank or rank != 4:
        raise InputShapeError(
            f"The input shape {shown} has {len(dims)} dimension(s): an image input needs "
            f"{rank}, N,C,H,W.{layout}",
            hint,
        )
    problem = _dimension_problem(dims)
    if problem is None and dims[1] != channels:
        problem = f"asks for {dims[1]} channel(s): the image input takes {channels}"
    if problem is not None:
        raise InputShapeError(f"The input shape {shown} {problem}.{layout}", hint)
    return tuple(dims)


def _text_of(raw: bytes, path: Path) -> str:
    hint = "Give a text file (UTF-8) with one class name per line."
    if b"\x00" in raw:
        raise ModelImportError(
            f"The class names file {path} is not a text file (it holds binary data).", hint
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ModelImportError(
            f"The class names file {path} is not UTF-8 text "
            f"(byte 0x{raw[exc.start]:02x} at offset {exc.start}).",
            hint,
        ) from exc


def _read_small_file(path: Path) -> bytes:
    hint = "Give a text file with one class name per line."
    try:
        # O_NONBLOCK: a FIFO given by mistake must not block the import.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ModelImportError(
            f"The class names file {path} cannot be read ({os_reason(exc)}).", hint
        ) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CLASS_FILE_BYTES:
        os.close(fd)  # io.open refuses a folder's descriptor: judged before it
        if stat.S_ISREG(info.st_mode):
            raise ModelImportError(
                f"The class names file {path} is {info.st_size / 1e6:.1f} MB: "
                f"too large for a list of class names (at most {MAX_CLASS_FILE_BYTES >> 20} MB).",
                "Check that you picked the right file.",
            )
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, a pipe or a socket"
        raise ModelImportError(f"The class names file {path} is not a regular file ({kind}).", hint)
    with os.fdopen(fd, "rb") as file:
        try:
            return file.read(MAX_CLASS_FILE_BYTES + 1)
        except OSError as exc:
            raise ModelImportError(
                f"The class names file {path} cannot be read ({os_reason(exc)}).", hint
            ) from exc


def read_class_names(path: Path) -> list[str]:
    """The class names in a text file, one per line (blank lines skipped), each checked."""
    text = _text_of(_read_small_file(path), path)
    hint = "Give one name per line, in the order of the model's class ids."
    names: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        bad = _bad_character(name)
        if bad is not None:
            raise ModelImportError(f"Line {number} of {path} holds {bad}.", hint)
        if len(name) > MAX_NAME_LENGTH:
            raise ModelImportError(
                f"Line {number} of {path} is {len(name):,} characters long: a class name "
                f"has at most {MAX_NAME_LENGTH}.",
                hint,
            )
        if name in first_line:
            raise ModelImportError(
                f"{path} names the class {name!r} twice (lines {first_line[name]} and {number}).",
                "Each class needs its own name: " + hint[0].lower() + hint[1:],
            )
        first_line[name] = number
        names.append(name)
    if not names:
        raise ModelImportError(
            f"The class names file {path} holds no names (it is empty or only blank lines).", hint
        )
    if len(names) > MAX_CLASSES:
        raise ModelImportError(
            f"{path} holds {len(names):,} class names: at most {MAX_CLASSES:,} are allowed.",
            "Check that you picked the right file.",
        )
    return names


def missing_model_file(path: Path) -> ModelImportError:
    """Why `path` (which does not exist as a file) cannot be read: a link loop, a dangling link."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python 3.11 reports a loop so; later versions raise OSError
            return ModelImportError(
                f"{path} is a symbolic link that loops back on itself: no file is behind it.",
                "Pass the model file itself, or fix the link.",
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return ModelImportError(
                    f"{path} is a symbolic link that loops back on itself: no file is behind it.",
                    "Pass the model file itself, or fix the link.",
                )
        return ModelImportError(
            f"{path} is a symbolic link to {os.readlink(path)}, which does not exist.",
            "Pass the model file itself, or fix the link.",
        )
    return ModelImportError(f"No such file: {path}.", "Check the path.")


def model_file(path: Path) -> Path:
    """The model file `path` names: itself, or the one .xml/.onnx in a folder; else a clear error."""
    try:
        text = str(path.absolute())
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # bytes that are not UTF-8 (surrogate escapes)
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise ModelImportError(
            f"{shown} has a name that is not UTF-8 text.",
            "Rename it: segtui stores paths as text.",
        ) from exc
    try:
        is_dir = stat.S_ISDIR(path.stat().st_mode)
    except FileNotFoundError:
        raise missing_model_file(path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise missing_model_file(path) from None
        raise ModelImportError(
            f"{path} cannot be opened ({os_reason(exc)}).", "Check the path."
        ) from exc
    if not is_dir:
        return path
    try:
        candidates = sorted(path.glob("*.xml")) + sorted(path.glob("*.onnx"))
    except OSError as exc:
        raise ModelImportError(
            f"The folder {path} cannot be listed ({os_reason(exc)}).", "Check its permissions."
        ) from exc
    if len(candidates) != 1:
        listed = ", ".join(c.name for c in candidates[:5]) + (" …" if len(candidates) > 5 else "")
        raise ModelImportError(
            f"{path} is a folder with {len(candidates)} model files"
            + (f" ({listed})." if candidates else " (no .xml or .onnx in it)."),
            "Pass the model's .xml or .onnx file itself.",
        )
    return candidates[0]


def check_readable_file(path: Path) -> None:
    """Refuse a model file that is not a regular file or that this user cannot read."""
    try:
        # O_NONBLOCK: a FIFO named like a model must not block the import.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ModelImportError(
            f"{path} cannot be read ({os_reason(exc)}).",
            "Check the file's permissions (ls -l), or copy it somewhere you can read it.",
        ) from exc
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device, a pipe or a socket"
        raise ModelImportError(
            f"{path} is not a regular file ({kind}).",
            "Pass the model's .xml or .onnx file (with its .bin beside an .xml).",
        )
