"""Architecture and set-up rules: core never imports Textual; README and CI run the same tests."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import segtui.core

ROOT = Path(__file__).resolve().parent.parent


def test_no_core_module_imports_textual() -> None:
    modules = [f"segtui.core.{m.name}" for m in pkgutil.iter_modules(segtui.core.__path__)]
    assert "segtui.core.workspace" in modules and len(modules) > 10
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(len(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "0"


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(python3\.11 -m venv \.venv && .+)\n```", readme)
    assert len(commands) == 2, commands
    run_app, run_tests = commands
    assert run_app.endswith(".venv/bin/segtui")
    pytest_cmd = run_tests.split("&& ")[-1]
    assert pytest_cmd == ".venv/bin/python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text()
    assert pytest_cmd in ci and "pip install --quiet -e '.[test]'" in ci
