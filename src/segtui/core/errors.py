"""Typed errors whose message says what was wrong and what to do about it."""

from __future__ import annotations


class SegtuiError(Exception):
    """An error meant for the user: `message` says what went wrong, `hint` what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class WorkspaceError(SegtuiError):
    """The workspace cannot be opened or is inconsistent."""


class NotFoundError(SegtuiError):
    """A model, dataset, project or job that does not exist."""


class ModelImportError(SegtuiError):
    """A model file that cannot be read or is not a usable IR/ONNX file."""


class UnsupportedModelError(ModelImportError):
    """A readable model whose outputs are not an instance-segmentation format segtui knows."""


class DatasetImportError(SegtuiError):
    """A dataset that cannot be imported (empty, unreadable, bad COCO references)."""


class InferenceError(SegtuiError):
    """Inference failed (compile or run)."""


class Cancelled(SegtuiError):
    """The user cancelled a long job."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class StorageError(WorkspaceError):
    """The disk or the workspace database failed; each subclass names how (see core.storage)."""


class DiskFullError(StorageError):
    """No space left (or a file-size limit reached) while writing the workspace."""


class ReadOnlyWorkspaceError(StorageError):
    """The workspace cannot be written: a read-only file system or no write permission."""


class WorkspaceLockedError(StorageError):
    """Another process held the workspace database (or a workspace lock) for too long."""


class CorruptWorkspaceError(StorageError):
    """The workspace database is damaged, is not a database, or lost tables."""


class StorageIOError(StorageError):
    """The disk reported an input/output error."""
