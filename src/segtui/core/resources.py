"""Files shipped with segtui: styles and the sample project.

In a wheel they live inside the package (segtui/styles, segtui/sample_projects);
in an editable install or a source checkout they are at the repository's top level.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_REPO_DIR = _PACKAGE_DIR.parent.parent


def _find(name: str) -> Path:
    for candidate in (_PACKAGE_DIR / name, _REPO_DIR / name):
        if candidate.is_dir():
            return candidate
    return _PACKAGE_DIR / name


def styles_dir() -> Path:
    return _find("styles")


def sample_projects_dir() -> Path:
    return _find("sample_projects")
