"""The package's shape (docs/ARCHITECTURE.md): no import cycle among pipeline's modules, lazy imports counted."""

from __future__ import annotations

import ast

from conftest import ROOT


def _imports() -> dict[str, set[str]]:
    """Each module of `pipeline` -> the modules of `pipeline` it imports, at top level or inside a function."""
    modules = {p.stem: p for p in (ROOT / "pipeline").glob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                target = (node.module or "").split(".")[0]
                found |= {target} if target in modules else {a.name for a in node.names if a.name in modules}
        graph[name] = found - {name, "__init__"}
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
