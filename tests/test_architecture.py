"""The package's shape (docs/ARCHITECTURE.md): no import cycle among pipeline's modules, lazy imports counted."""

from __future__ import annotations

import ast

from conftest import ROOT


def _imports() -> dict[str, set[str]]:
    """Each module of `pipeline` (sub-packages included, `pkg` for a package's __init__) -> the modules of
    `pipeline` it imports, at top level or inside a function (relative imports resolved)."""
    base = ROOT / "pipeline"
    paths = {}
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(base).with_suffix("").parts
        paths[".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)] = path
    graph = {}
    for name, path in paths.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = [p for p in package if p]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            anchor = package[:len(package) - (node.level - 1)] if node.level > 1 else package
            target = ".".join([*anchor, *(node.module.split(".") if node.module else [])])
            for alias in node.names:  # `from . import x` and `from .pkg import module` name modules too
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(candidate if candidate in paths else target)
        graph[name] = {t for t in found if t in paths} - {name, ""}
    return graph


def test_no_import_cycle():
    graph = _imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(name):] + [name])}")
        if name in done:
            return
        for nxt in sorted(graph[name]):
            visit(nxt, path + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_stages_are_declared_in_one_place():
    """Only stages.chains() builds the chains: no other module names both extract stages."""
    for path in sorted((ROOT / "pipeline").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.stem != "stages":
            assert not ("ExtractText(" in text and "ExtractHtml(" in text), path.name


def test_the_dedup_engine_imports_neither_the_stages_nor_the_run():
    """pipeline/dedup/ (its docstring): the engine may use the state, stores and writers, never the page
    stages or the run that drives it."""
    graph = _imports()
    outside = {"batch", "cli", "runner", "stages", "html", "header", "textclean", "modelclean", "sources"}
    for name, deps in graph.items():
        if name == "dedup" or name.startswith("dedup."):
            assert not deps & outside, (name, sorted(deps & outside))
