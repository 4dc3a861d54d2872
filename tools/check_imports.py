"""The dependency rule of docs/architecture.md, checked over the import graph.

    python tools/check_imports.py            # exit 1 on a cycle, a forbidden import, SQL in a router
    python tools/check_imports.py --stats    # also: functions over 60 lines

Every ``import``/``from ... import`` of our packages counts, at module level or
inside a function (a lazy import is still a dependency); only imports under
``if TYPE_CHECKING:`` are left out, since they never run. Rules:

- ``monitors`` and ``storage`` import nothing of ours but themselves;
- ``exceptions_queue`` imports only itself, ``storage`` and ``monitors``;
- ``demo`` may import anything; only ``app.cli`` may import ``demo``;
- no import cycle between modules, anywhere;
- no SQL in a router or a UI page (a module under ``app/`` that builds an
  ``APIRouter``, and every module of ``app/ui/``): they import nothing of
  SQLAlchemy but ``sqlalchemy.orm.Session`` and ``sqlalchemy.exc``, and call no
  ``.execute``, ``.scalar``, ``.scalars`` or ``session.get``; the SQL lives in the
  domain's ``repository.py`` (or a service).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("app", "storage", "exceptions_queue", "monitors", "demo")
# package -> the packages of ours it may import (itself always)
ALLOWED: dict[str, frozenset[str]] = {
    "monitors": frozenset(),
    "storage": frozenset(),
    "exceptions_queue": frozenset({"storage", "monitors"}),
    "app": frozenset({"storage", "exceptions_queue", "monitors"}),
    "demo": frozenset({"app", "storage", "exceptions_queue", "monitors"}),
}
# single modules allowed an import the package rule forbids: (importer, imported package)
EXCEPTIONS = frozenset({("app.cli", "demo")})
LONG_FUNCTION = 60
# what a router or UI page may import of SQLAlchemy: the session type and the errors
SQL_IMPORTS_ALLOWED = {"sqlalchemy.orm": frozenset({"Session"}), "sqlalchemy.exc": None}
SQL_CALLS = frozenset({"execute", "executemany", "scalar", "scalars", "query"})


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in _walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the module pkg.sub when there is one
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != module:
                found.append(Import(module, resolved, node.lineno))
    return found


def graph(root: Path) -> tuple[dict[str, Path], list[Import]]:
    modules = source_files(root)
    edges = [i for m, p in modules.items() for i in imports_of(m, p, modules)]
    return modules, list(dict.fromkeys(edges))  # one per import line and target


def forbidden(edges: Iterable[Import]) -> list[Import]:
    bad = []
    for edge in edges:
        src, dst = edge.importer.split(".")[0], edge.imported.split(".")[0]
        if src == dst or dst in ALLOWED[src] or (edge.importer, dst) in EXCEPTIONS:
            continue
        bad.append(edge)
    return bad


def cycles(modules: Iterable[str], edges: Iterable[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    succ: dict[str, list[str]] = {m: [] for m in modules}
    for e in edges:
        succ[e.importer].append(e.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in succ:
        if start in index:
            continue
        work = [(start, iter(succ[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def is_router_or_page(module: str, tree: ast.AST) -> bool:
    """A module of app/ui/, or one of app/ that builds an ``APIRouter``."""
    if module.startswith("app.ui.") or module == "app.ui":
        return True
    if not module.startswith("app."):
        return False
    return any(
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "APIRouter")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "APIRouter")
        )
        for node in ast.walk(tree)
    )


def _is_sqlalchemy(name: str) -> bool:
    return name == "sqlalchemy" or name.startswith("sqlalchemy.")


def _sql_import(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if _is_sqlalchemy(alias.name) and alias.name not in SQL_IMPORTS_ALLOWED:
                return f"import {alias.name}"
        return None
    if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
        return None
    if not _is_sqlalchemy(node.module):
        return None
    allowed = SQL_IMPORTS_ALLOWED.get(node.module, frozenset())
    names = [a.name for a in node.names if allowed is not None and a.name not in allowed]
    return f"from {node.module} import {', '.join(names)}" if names else None


def _sql_call(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    name = node.func.attr
    if name in SQL_CALLS:
        return f".{name}(...)"
    target = node.func.value
    if name == "get" and isinstance(target, ast.Name) and target.id.endswith("session"):
        return f"{target.id}.get(...)"
    return None


def sql_in_routers(modules: dict[str, Path]) -> list[str]:
    """Where a router or a UI page builds or runs SQL itself (see the module docstring)."""
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        if not is_router_or_page(name, tree):
            continue
        for node in _walk(tree):
            what = _sql_import(node) or _sql_call(node)
            if what is not None:
                found.append(
                    f"SQL in a router or UI page: {name} (line {getattr(node, 'lineno', 0)}) "
                    f"{what}; move it to the domain's repository.py or a service"
                )
    return found


def long_functions(modules: dict[str, Path], limit: int = LONG_FUNCTION) -> list[str]:
    out = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    out.append(f"{name}.{node.name} ({length} lines)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--stats", action="store_true", help="also count long functions")
    args = parser.parse_args(argv)
    modules, edges = graph(args.root)
    bad = forbidden(edges)
    loops = cycles(modules, edges)
    sql = sql_in_routers(modules)
    for edge in bad:
        print(
            f"forbidden import: {edge.importer} (line {edge.line}) imports {edge.imported}; "
            f"{edge.importer.split('.')[0]} may import only "
            f"{sorted(ALLOWED[edge.importer.split('.')[0]]) or 'nothing of ours'}"
        )
    for loop in loops:
        print(f"import cycle: {' <-> '.join(loop)}")
    for line in sql:
        print(line)
    if args.stats:
        upward = [e for e in edges if e.importer.split(".")[0] in ("exceptions_queue", "monitors")]
        upward = [e for e in upward if e.imported.split(".")[0] == "app"]
        longs = long_functions(modules)
        print(f"modules: {len(modules)}, imports: {len(edges)}")
        print(f"import cycles: {len(loops)}")
        print(f"SQL sites in routers and UI pages: {len(sql)}")
        print(f"imports from exceptions_queue/monitors into app: {len(upward)}")
        print(f"functions over {LONG_FUNCTION} lines: {len(longs)}")
        for line in longs:
            print(f"  {line}")
    if bad or loops or sql:
        print(
            f"{len(bad)} forbidden import(s), {len(loops)} cycle(s), {len(sql)} SQL site(s) "
            "in routers or UI pages: see the dependency rule in docs/architecture.md",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
