"""Architecture and set-up rules: core never imports Textual; README and CI run the same tests."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import segtui.core

ROOT = Path(__file__).resolve().parent.parent


#: What the engine must never pull in, even indirectly (rich is allowed: NNCF uses it).
FRONT_ENDS = (
    "textual",
    "textual_plotext",
    "textual_image",
    "rich_pixels",
    "segtui.ui",
    "segtui.cli",
)


def core_modules() -> list[str]:
    return sorted(
        name for _, name, _ in pkgutil.walk_packages(segtui.core.__path__, prefix="segtui.core.")
    )


def test_no_core_module_pulls_in_a_front_end() -> None:
    """Each core module imported in a fresh interpreter, in turn; the first one to load a front end is named."""
    modules = core_modules()
    assert "segtui.core.workspace" in modules and "segtui.core.settings" in modules
    assert len(modules) > 20
    code = (
        "import importlib, sys\n"
        f"front = {FRONT_ENDS!r}\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    bad = sorted(m for m in sys.modules if m.split('.')[0] in front or m.startswith(front))\n"
        "    if bad:\n"
        "        print(name, bad[:5])\n"
        "        break\n"
        "else:\n"
        "    print('clean', len(sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=180
    )
    assert out.stdout.startswith("clean"), out.stdout


def test_import_contracts_are_declared() -> None:
    """lint-imports (run by CI) checks these; at least the three layer contracts must exist."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = config["contracts"]
    assert len(contracts) >= 3
    sources = {tuple(c["source_modules"]) for c in contracts}
    assert ("segtui.core",) in sources and ("segtui.ui",) in sources
    assert ("segtui.cli",) in sources


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(python3\.11 -m venv \.venv && .+)\n```", readme)
    assert len(commands) == 2, commands
    run_app, run_tests = commands
    assert run_app.endswith(".venv/bin/segtui")
    pytest_cmd = run_tests.split("&& ")[-1]
    assert pytest_cmd == ".venv/bin/python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text()
    # CI installs the dev extra (the test extra and the linters) and runs the checks first.
    assert pytest_cmd in ci and "pip install --quiet -e '.[dev]'" in ci
    for check in ("ruff check", "ruff format --check", "mypy", "lint-imports"):
        assert check in ci, check
    dev_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["dev"]
    assert "segtui[test]" in dev_extra
