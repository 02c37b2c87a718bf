"""The largest modules and functions of a source tree, to keep units small enough to read.

    python tools/code_size.py [src] [--top 10] [--max-module 600] [--max-function 80]

Prints the largest modules (lines) and functions (lines from `def` to the last line of the
body, decorators excluded), and exits 1 when one is over its limit.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def functions(tree: ast.AST, path: Path) -> list[tuple[int, str]]:
    """(lines, 'path:line qualified.name') for every function and method."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                size = (child.end_lineno or child.lineno) - child.lineno + 1
                found.append((size, f"{path}:{child.lineno} {name}"))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="src")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--max-module", type=int, default=600)
    parser.add_argument("--max-function", type=int, default=80)
    args = parser.parse_args(argv)
    modules: list[tuple[int, str]] = []
    funcs: list[tuple[int, str]] = []
    for path in sorted(Path(args.root).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        modules.append((len(text.splitlines()), str(path)))
        funcs += functions(ast.parse(text, filename=str(path)), path)
    modules.sort(reverse=True)
    funcs.sort(reverse=True)
    print(f"largest modules (limit {args.max_module} lines):")
    for size, name in modules[: args.top]:
        print(f"  {size:5d}  {name}")
    print(f"largest functions (limit {args.max_function} lines):")
    for size, name in funcs[: args.top]:
        print(f"  {size:5d}  {name}")
    over = [m for m in modules if m[0] > args.max_module] + [
        f for f in funcs if f[0] > args.max_function
    ]
    if over:
        print(f"{len(over)} over the limits")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
