"""A labelled path input that completes with Tab and says as you type whether the path will do."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.suggester import Suggester
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from segtui.core.datasets import IMAGE_SUFFIXES

# Counting images as the user types must stay instant, even on a huge folder or on "/".
_SCAN_LIMIT = 2_000
_LIST_LIMIT = 5_000
_CHECK_DELAY_S = 0.15


@dataclass(frozen=True)
class PathCheck:
    """What a cheap look at a path says: ok (True/False), or None for an empty optional field."""

    ok: bool | None
    message: str

    @property
    def text(self) -> str:
        mark = {True: "✓ ", False: "✗ ", None: ""}[self.ok]
        return f"{mark}{self.message}"


def _path(value: str) -> Path:
    return Path(os.path.expanduser(value.strip()))


def check_model_path(value: str) -> PathCheck:
    """A model file: an IR .xml with its .bin beside it, or an .onnx file."""
    if not value.strip():
        return PathCheck(False, "required: an OpenVINO IR .xml (with its .bin) or an .onnx file")
    path = _path(value)
    if path.is_dir():
        found = sorted(path.glob("*.xml")) + sorted(path.glob("*.onnx"))
        if len(found) != 1:
            if not found:
                return PathCheck(False, "no .xml or .onnx model file in this folder")
            return PathCheck(False, f"folder with {len(found)} model files: pick one")
        path = found[0]
    if not path.exists():
        return PathCheck(False, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".xml":
        bin_path = path.with_suffix(".bin")
        if not bin_path.is_file():
            return PathCheck(False, f"{bin_path.name} missing beside {path.name}")
        return PathCheck(True, f"OpenVINO IR ({path.name} + {bin_path.name})")
    if suffix == ".onnx":
        return PathCheck(True, f"ONNX model ({path.name})")
    if suffix == ".bin":
        return PathCheck(False, f"that is the weights file: pick {path.with_suffix('.xml').name}")
    return PathCheck(False, f"not a model file ({suffix or 'no suffix'}): pick an .xml or .onnx")


def _count_images(folder: Path) -> tuple[int, bool]:
    """Images under `folder`, looking at no more than _SCAN_LIMIT files; (count, complete)."""
    count = seen = 0
    for _dirpath, _dirs, files in os.walk(folder):
        seen += len(files)
        count += sum(1 for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES)
        if seen >= _SCAN_LIMIT:
            return count, False
    return count, True


def _images_check(folder: Path, annotated: str = "") -> PathCheck:
    count, complete = _count_images(folder)
    if count == 0:
        if complete:
            return PathCheck(False, "no images in this folder")
        return PathCheck(None, f"large folder: no images among its first {_SCAN_LIMIT:,} files")
    plural = "s" if count != 1 else ""
    amount = f"{count} image{plural}" if complete else f"{count:,}+ images"
    return PathCheck(True, f"folder with {amount}{annotated}")


def check_dataset_path(value: str) -> PathCheck:
    """A dataset: a folder of images, or a COCO instances .json file."""
    if not value.strip():
        return PathCheck(False, "required: a folder of images or a COCO .json file")
    path = _path(value)
    if not path.exists():
        return PathCheck(False, "no such file or folder")
    if path.is_dir():
        return _images_check(path, " (not annotated)")
    if path.suffix.lower() == ".json":
        return PathCheck(True, "COCO annotations (annotated)")
    return PathCheck(False, "neither a folder of images nor a COCO .json file")


def check_images_dir(value: str) -> PathCheck:
    """The optional images folder of a COCO file."""
    if not value.strip():
        return PathCheck(None, "optional, for a COCO file: found beside the .json when empty")
    path = _path(value)
    if not path.exists():
        return PathCheck(False, "no such folder")
    if not path.is_dir():
        return PathCheck(False, "not a folder")
    return _images_check(path)


def complete_path(value: str) -> str | None:
    """The longest unambiguous completion of `value` as a filesystem path, or None."""
    if not value:
        return None
    expanded = os.path.expanduser(value)
    head, tail = os.path.split(expanded)
    directory = head or "."
    matches: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for n, entry in enumerate(entries):
                if n >= _LIST_LIMIT:
                    break
                if entry.name.startswith(tail) and (tail.startswith(".") or entry.name[0] != "."):
                    matches.append(entry.name)
    except OSError:
        return None
    if not matches:
        return None
    # Completion extends the typed characters, so a character-wise prefix is what is wanted.
    common = os.path.commonprefix(matches)  # noqa: RUF071
    extra = common[len(tail) :]
    if len(matches) == 1 and extra and os.path.isdir(os.path.join(directory, common)):
        extra += "/"
    return value + extra if extra else None


class PathSuggester(Suggester):
    """Suggests the rest of a path, as a shell's Tab completion would."""

    def __init__(self) -> None:
        # The filesystem changes under us: no cache.
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return complete_path(value)


class PathInput(Input):
    """An Input for paths: Tab takes the suggested completion, or moves on when there is none."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "tab",
            "complete",
            "Complete",
            show=False,
            id="path.complete",
            tooltip="Complete the path, or go to the next field when there is nothing to complete.",
        ),
    ]

    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, suggester=PathSuggester(), id=id)

    def action_complete(self) -> None:
        suggestion = self._suggestion
        if self.cursor_at_end and len(suggestion) > len(self.value):
            self.value = suggestion
            self.cursor_position = len(suggestion)
        else:
            self.screen.focus_next()


class PathField(Vertical):
    """Label, path input and a line under it that says whether the path will do."""

    def __init__(
        self,
        label: str,
        checker: Callable[[str], PathCheck],
        *,
        placeholder: str = "",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="field")
        self._label = label
        self._checker = checker
        self._placeholder = placeholder
        self.check: PathCheck = checker("")
        self._pending: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label(self._label, classes="field-label")
        yield PathInput(placeholder=self._placeholder)
        yield Static(classes="field-message")

    @property
    def input(self) -> PathInput:
        return self.query_one(PathInput)

    @property
    def value(self) -> str:
        return self.input.value.strip()

    def on_mount(self) -> None:
        self._show(self.check)

    def on_input_changed(self, _event: Input.Changed) -> None:
        # Check once typing pauses, not on every key: a folder scan costs a few milliseconds.
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(_CHECK_DELAY_S, self.recheck)

    def recheck(self) -> PathCheck:
        """Check the current value now (the form does this on submit) and show the verdict."""
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        self._show(self._checker(self.value))
        return self.check

    def _show(self, check: PathCheck) -> None:
        self.check = check
        message = self.query_one(".field-message", Static)
        # An empty field gets its hint, not a verdict.
        message.update(Text(check.text if self.value else check.message))
        bad = check.ok is False and bool(self.value)
        message.set_class(check.ok is True, "-ok")
        message.set_class(bad, "-bad")
        self.input.set_class(check.ok is True, "-valid")
        self.input.set_class(bad, "-invalid")
