"""The package's shape (docs/ARCHITECTURE.md): no import cycle among pipeline's modules (lazy imports counted),
no module over ~400 lines, what each sub-package may import, SQLite only in the state, no module-level mutable
state but the executors' documented per-process slots."""

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
    """Only stages/chain.py builds the chains: no other module names both extract stages."""
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.relative_to(ROOT / "pipeline").as_posix() != "stages/chain.py":
            assert not ("ExtractText(" in text and "ExtractHtml(" in text), path


def _reaches(graph: dict[str, set[str]], name: str) -> set[str]:
    """Every module `name` imports, directly or through others."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def _under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_dedup_engine_imports_neither_the_stages_nor_the_run():
    """pipeline/dedup/ (its docstring): the engine may use the state, stores and writers, never the page
    stages, the cleaners or the run that drives it."""
    graph = _imports()
    for name in graph:
        if _under(name, "dedup"):
            assert not {d for d in _reaches(graph, name) if _under(d, "stages", "clean", "run", "cli")}, name


def test_io_never_imports_the_state_the_stages_or_the_run():
    graph = _imports()
    for name in graph:
        if _under(name, "io"):
            bad = {d for d in _reaches(graph, name) if _under(d, "state", "stages", "dedup", "run", "cli")}
            assert not bad, (name, sorted(bad))


def test_the_state_is_the_only_sqlite_user():
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        if "sqlite3" in names:
            assert path.parent.name == "state", path


def test_no_module_is_over_400_lines():
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)}: {lines} lines"


# the executors' per-process slots: a worker process reaches its run's worker object only through its module
_PER_PROCESS = {"executor/pool.py": {"_IN_PROCESS"}, "executor/ray.py": {"_IN_PROCESS"}}
_MUTABLE = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)


def test_no_module_level_mutable_state():
    """Same input, same output: no `global`, and no module-level list, dict or set (constants are tuples,
    frozensets or read-only mappings) but the documented per-process slots."""
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        where = path.relative_to(ROOT / "pipeline").as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not any(isinstance(node, (ast.Global, ast.Nonlocal)) for node in ast.walk(tree)), where
        for node in tree.body:
            if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
                continue
            value = node.value
            mutable = isinstance(value, _MUTABLE) or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id in ("list", "dict", "set", "Counter", "defaultdict"))
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id != "__all__" and mutable:
                    assert target.id in _PER_PROCESS.get(where, ()), f"{where}: {target.id}"
