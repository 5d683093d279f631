"""Code shape: short functions, short modules, typed public functions and stage dataclasses."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 100
MAX_MODULE_LINES = 500
#: click commands (their parameters are the options, typed by click) and numba kernels (typed by
#: their signatures) are not annotated; nor are private modules
UNTYPED_OK = ("cli", "cli.py", "_cli_errors.py", "_pcc_numba.py")


def _modules():
    for pkg in ("gpc_bench", "baselines"):
        yield from sorted((ROOT / pkg).rglob("*.py"))


def _public_functions(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            yield node.name, node
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for f in node.body:
                if isinstance(f, ast.FunctionDef) and not f.name.startswith("_"):
                    yield f"{node.name}.{f.name}", f


def test_no_function_over_100_lines_and_no_module_over_500():
    long_functions, long_modules = [], []
    for path in _modules():
        src = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        if src.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{rel} ({src.count(chr(10))} lines)")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long_functions.append(f"{rel}:{node.lineno} {node.name} ({n} lines)")
    assert not long_functions, long_functions
    assert not long_modules, long_modules


def test_public_functions_are_typed():
    missing = []
    for path in _modules():
        rel = path.relative_to(ROOT)
        if any(part in rel.parts or rel.name == part for part in UNTYPED_OK):
            continue
        if rel.name.startswith("_") and rel.name != "__init__.py":  # private modules
            continue
        for name, fn in _public_functions(ast.parse(path.read_text(encoding="utf-8"))):
            args = [
                a
                for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
                if a.arg not in ("self", "cls")
            ]
            untyped = [a.arg for a in args if a.annotation is None]
            if fn.returns is None and name.split(".")[-1] != "__init__":
                untyped.append("return")
            if untyped:
                missing.append(f"{rel}:{fn.lineno} {name}: {', '.join(untyped)}")
    assert not missing, "\n".join(missing)


def test_stage_dataclasses_have_no_fields_typed_object():
    bad = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            if not any("dataclass" in ast.unparse(d) for d in node.decorator_list):
                continue
            for f in node.body:
                if isinstance(f, ast.AnnAssign) and ast.unparse(f.annotation) in ("object", "Any"):
                    bad.append(f"{path.relative_to(ROOT)} {node.name}.{ast.unparse(f.target)}")
    assert not bad, bad
