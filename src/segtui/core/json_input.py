"""Reading a JSON input file safely: a regular file, its nesting bounded before parsing, errors in words."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path

from segtui.core.errors import DatasetImportError
from segtui.core.fault_kinds import Fault, errnos_of

#: A COCO file nests 5 levels (file, list, annotation, polygons, polygon); more than
#: this is not COCO, and Python's parser would hit its recursion limit near 1000.
MAX_DEPTH = 64

# A JSON string, escapes included (the unrolled form: linear, no backtracking).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)

# Why an input file cannot be read, in the words of one who reads it.
_REASONS = {
    errno.ENOENT: "no such file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ELOOP: "a symbolic link loop",
    **dict.fromkeys(errnos_of(Fault.DENIED), "permission denied"),
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
}


def os_reason(exc: OSError) -> str:
    """An OS error in a few words (a symlink loop says so, not 'No such file')."""
    return _REASONS.get(exc.errno or 0, exc.strerror or "unreadable")


def read_bytes(path: Path) -> bytes:
    """A regular file's bytes; never blocks on a FIFO, and says what is wrong in words."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise DatasetImportError(
            f"{path.name} cannot be read ({os_reason(exc)}).", "Check the path."
        ) from exc
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise DatasetImportError(f"{path.name} is not a regular file.", "Check the path.")
        try:
            return file.read()
        except OSError as exc:
            raise DatasetImportError(
                f"{path.name} cannot be read ({os_reason(exc)}).", "Check the file."
            ) from exc


def json_depth(raw: bytes) -> int:
    """How deep the JSON's lists and objects nest, counted without parsing (strings skipped)."""
    import numpy as np  # here: this module is on the TUI's start path, numpy is not

    marks = np.frombuffer(_JSON_STRING.sub(b'""', raw), np.uint8)
    opens = (marks == ord("[")) | (marks == ord("{"))
    closes = (marks == ord("]")) | (marks == ord("}"))
    at = np.flatnonzero(opens | closes)
    if not at.size:
        return 0
    return int(np.cumsum(np.where(opens[at], 1, -1)).max())


def read_json(path: Path, expected: str) -> object:
    """The JSON in `path`, its nesting bounded (`expected` names the kind of file in hints)."""
    raw = read_bytes(path)
    hint = f"Check that the file is {expected}, written completely."
    if json_depth(raw) > MAX_DEPTH:
        raise DatasetImportError(
            f"{path.name} nests lists or objects more than {MAX_DEPTH} levels deep "
            "(a COCO file needs about 5).",
            hint,
        )
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DatasetImportError(
            f"{path.name} is not valid JSON (not UTF-8 text at byte {exc.start}).", hint
        ) from exc
    except json.JSONDecodeError as exc:
        raise DatasetImportError(f"{path.name} is not valid JSON ({exc}).", hint) from exc
    except RecursionError as exc:  # the depth count above makes this a last resort
        raise DatasetImportError(f"{path.name} nests too deeply to be read.", hint) from exc
    except ValueError as exc:  # Python refuses integers of more than 4300 digits
        raise DatasetImportError(
            f"{path.name} is not valid JSON for segtui (a number with thousands of digits).", hint
        ) from exc
