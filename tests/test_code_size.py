"""Issue 29's size limits, held: no module of pipeline/ over MAX_MODULE_LINES lines and no function (or method, or
nested function) over MAX_FUNCTION_LINES, from its `def` (decorators included) to its last line. A module or a
function that grows past them is split by responsibility, not let through here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pipeline"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
MODULES = sorted(PKG.rglob("*.py"))


def _rel(path: Path) -> str:
    return str(path.relative_to(PKG.parent))


def long_functions(path: Path) -> list[str]:
    """'NAME (line L): N lines' for each function of `path` over MAX_FUNCTION_LINES."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            n = node.end_lineno - first + 1
            if n > MAX_FUNCTION_LINES:
                out.append(f"{node.name} (line {node.lineno}): {n} lines")
    return out


def test_the_package_is_found():
    assert PKG / "cli.py" in MODULES and PKG / "nets" / "__init__.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_module_is_at_most_500_lines(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_MODULE_LINES, f"{_rel(path)}: {n} lines (at most {MAX_MODULE_LINES}): split it by responsibility"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_functions_are_at_most_80_lines(path):
    assert not long_functions(path), f"{_rel(path)}: over {MAX_FUNCTION_LINES} lines: {long_functions(path)}"


def test_the_function_check_counts_what_it_should(tmp_path):
    """The checker itself: a decorated function counts from its decorator, and nested functions are checked too."""
    def body(n: int, indent: str) -> str:
        return "".join(f"{indent}x{i} = {i}\n" for i in range(n))

    f = tmp_path / "m.py"
    f.write_text("@staticmethod\ndef fits():\n" + body(MAX_FUNCTION_LINES - 2, "    ") + "\n\n"  # exactly the limit
                 + "def outer():\n    def inner():\n" + body(MAX_FUNCTION_LINES, "        "))
    start = MAX_FUNCTION_LINES + 3
    assert long_functions(f) == [f"outer (line {start}): {MAX_FUNCTION_LINES + 2} lines",
                                 f"inner (line {start + 1}): {MAX_FUNCTION_LINES + 1} lines"]
