"""dvc.yaml's code deps of each stage are exactly the code the stage runs.

The code a stage runs is the import closure (every ``segrepro`` import,
module-level or inside a function, followed transitively through
``src/segrepro``) of what its ``segrepro <stage>`` handler in ``cli.py``
imports — and, for the report, of what the notebook imports. ``cli.py``
itself is left out: it only dispatches, and listing it would rerun every
stage for a new option of one. The deps must cover every module of the
closure, and every code path listed must be needed: a directory only when
each of its modules is in the closure (otherwise list the files).
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
STAGES = ("download", "preprocess", "train", "evaluate", "compare", "report", "audit")


def _module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(tree: ast.AST) -> set[str]:
    """Modules named by the ``segrepro`` imports of a syntax tree (``from pkg import mod`` counts mod)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "segrepro"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "segrepro":
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")}
    return names


def closure(roots: set[str]) -> set[Path]:
    """Source files of the modules in ``roots``, their packages, and everything they import."""
    files: set[Path] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            path = _module_file(".".join(parts[:i]))
            if path is not None and path not in files:
                files.add(path)
                todo += sorted(_imported(ast.parse(path.read_text())))
    return files


def _handler_imports(stage: str) -> set[str]:
    tree = ast.parse((SRC / "segrepro" / "cli.py").read_text())
    handler = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == f"_{stage}")
    return _imported(handler)


def _notebook_imports() -> set[str]:
    cells = json.loads((REPO / "notebooks" / "report.ipynb").read_text())["cells"]
    return set().union(*(_imported(ast.parse("".join(c["source"]))) for c in cells if c["cell_type"] == "code"))


def stage_code(stage: str) -> set[str]:
    roots = _handler_imports(stage) | (_notebook_imports() if stage == "report" else set())
    return {p.relative_to(REPO).as_posix() for p in closure(roots)}


def code_deps(stage: str) -> set[str]:
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage].get("deps", [])
    return {d for d in deps if d.startswith("src/")}


def test_closure_follows_function_level_and_package_imports():
    code = stage_code("evaluate")
    assert "src/segrepro/evaluation/evaluate.py" in code and "src/segrepro/metrics/registry.py" in code
    assert "src/segrepro/models/ddsm_sampling.py" in code     # through build → ddsm → ddsm_sampling
    assert "src/segrepro/metrics/__init__.py" in code and "src/segrepro/__init__.py" in code
    assert "src/segrepro/training/train.py" not in code and "src/segrepro/cli.py" not in code


@pytest.mark.parametrize("stage", STAGES)
def test_code_deps_are_the_import_closure(stage):
    code = stage_code(stage)
    deps = code_deps(stage)
    uncovered = sorted(f for f in code if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
    assert not uncovered, f"{stage} runs {uncovered} but dvc.yaml does not list them as deps"
    for dep in deps:
        path = REPO / dep
        assert path.exists(), f"{stage}: dep {dep} does not exist"
        if path.is_dir():
            modules = {p.relative_to(REPO).as_posix() for p in path.rglob("*.py")}
            unused = sorted(modules - code)
            assert not unused, f"{stage}: dep {dep} holds {unused}, which the stage never imports; list files"
        elif dep.endswith(".py"):
            assert dep in code, f"{stage}: dep {dep} is never imported by the stage"
