"""The code a stage runs: a module of pipeline/ and every module of pipeline/ it imports (at the top or inside a
function, relative or absolute), read from the source with `ast`. dvc.yaml's deps must be this set
(tests/test_dvc_deps.py), and a resumed training compares the hash of its set with the one its checkpoint recorded.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PKG = Path(__file__).resolve().parent
DISPATCH_ONLY = ("cli.py", "__main__.py")  # they dispatch to a stage's module; they compute nothing


def _module_file(parts: list[str]) -> Path | None:
    base = PKG.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def imports_of(path: Path) -> set[Path]:
    """Files of pipeline/ that `path` imports, anywhere in it."""
    here = list(path.relative_to(PKG).parent.parts)  # the package `path` lives in, below pipeline/
    out: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[list[str]] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                mod = node.module.split(".") if node.module else []
            elif node.module and node.module.split(".")[0] == PKG.name:
                base, mod = [], node.module.split(".")[1:]
            else:
                continue
            targets.append(base + mod)
            targets += [base + mod + [a.name] for a in node.names]  # `from . import x`: x may be a module
        elif isinstance(node, ast.Import):
            targets += [n.name.split(".")[1:] for n in node.names if n.name.split(".")[0] == PKG.name]
        for t in targets:
            f = _module_file(t) if t else PKG / "__init__.py"
            if f is not None:
                out.add(f)
    return out


def closure(module: str) -> set[Path]:
    """pipeline/MODULE.py and every file of pipeline/ it imports, transitively (the empty package __init__ and the
    dispatch-only CLI left out)."""
    todo, seen = [PKG / f"{module}.py"], set()
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += imports_of(f) - seen
    return {f for f in seen if f != PKG / "__init__.py" and f.name not in DISPATCH_ONLY}


def code_hash(module: str) -> str:
    """sha256 (16 hex digits) over the relative paths and contents of `closure(module)`."""
    h = hashlib.sha256()
    for f in sorted(closure(module)):
        h.update(str(f.relative_to(PKG)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]
