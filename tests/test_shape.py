"""Size gates of the package: no module over 450 lines, no function over 60 (ruff gates complexity and arguments;
it has no rule for length). A module or function that grows past them is split into named parts."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "streamtrain"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def long_functions(source: str, limit: int) -> list[tuple[str, int]]:
    """(name, lines) of each function or method in ``source`` longer than ``limit`` lines, decorators excluded."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit:
                found.append((node.name, lines))
    return found


def test_long_functions_are_found() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(5))
    assert long_functions(f"def f():\n{body}\n", 5) == [("f", 6)]
    assert long_functions(f"def f():\n{body}\n", 6) == []


def test_no_module_over_450_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in sorted(PACKAGE.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_60_lines() -> None:
    long = {
        f"{p.relative_to(PACKAGE.parent)}:{name}": n
        for p in sorted(PACKAGE.rglob("*.py"))
        for name, n in long_functions(p.read_text(encoding="utf-8"), MAX_FUNCTION_LINES)
    }
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
