"""Where the .tcss files are: absolute paths, so screens load them from any working directory."""

from __future__ import annotations

from segtui.core.resources import styles_dir


def css_path(name: str) -> str:
    """The absolute path of the stylesheet `name` in the styles folder."""
    return str(styles_dir() / name)
