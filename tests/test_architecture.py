"""The layers hold: arrows point one way and no module imports itself in a circle.

serve_app -> services -> cluster -> compute, and tuning -> services (docs/spec/design.md "Shape",
docs/layout.md). Every import counts, also one inside a function: a lazy import is fine for
start-up speed, but it must not hide a circle. compute imports neither Ray, nor FastAPI or
Starlette, nor SQLAlchemy.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("compute", "cluster", "services", "tuning", "serve_app", "sigma_client")
#: What each layer may import (besides itself and third-party libraries).
ALLOWED = {
    "compute": set(),
    "cluster": {"compute"},
    "services": {"cluster", "compute"},
    "tuning": {"services", "cluster", "compute"},
    "serve_app": {"services", "cluster", "compute"},
    "sigma_client": set(),
}
COMPUTE_FORBIDDEN = ("ray", "fastapi", "starlette", "sqlalchemy", "alembic", "psycopg")


def _modules(root: Path) -> dict[str, Path]:
    mods = {}
    for top in PACKAGES:
        for path in (root / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> tuple[set[str], set[str]]:
    """(project modules imported, top-level external packages imported)."""
    internal, external = set(), set()
    is_pkg = path.name == "__init__.py"

    def resolve(dotted: str):
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in mods:
                return ".".join(parts[:i])
        return None

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in mods]
            targets = subs if len(subs) == len(node.names) else subs + [module]
        else:
            continue
        for target in targets:
            found = resolve(target)
            if found is None:
                external.add(target.split(".")[0])
            elif found != name:
                internal.add(found)
    return internal, external


def _graph(root: Path = ROOT):
    mods = _modules(root)
    edges, externals = {}, {}
    for name, path in mods.items():
        edges[name], externals[name] = _imports(name, path, mods)
    return mods, edges, externals


def test_arrows_point_down():
    _, edges, _ = _graph()
    wrong = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                   if b.split(".")[0] != a.split(".")[0]
                   and b.split(".")[0] not in ALLOWED[a.split(".")[0]])
    assert wrong == [], "imports against the layers:\n" + "\n".join(wrong)


def test_compute_is_free_of_ray_http_and_sql():
    _, _, externals = _graph()
    wrong = sorted(f"{m} imports {e}" for m, ext in externals.items() if m.split(".")[0] == "compute"
                   for e in ext if e in COMPUTE_FORBIDDEN)
    assert wrong == [], "\n".join(wrong)


def test_no_import_circles():
    mods, edges, _ = _graph()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):                      # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    assert circles == [], f"import circles: {circles}"


def test_the_check_sees_a_circle_and_an_upward_arrow(tmp_path):
    """The graph catches what it is for (a function-level import that closes a circle)."""
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "compute" / "a.py").write_text("from compute import b\n")
    (tmp_path / "compute" / "b.py").write_text("def f():\n    from compute.a import x\n")
    (tmp_path / "compute" / "c.py").write_text("import ray\nfrom services import d\n")
    (tmp_path / "services" / "d.py").write_text("")
    _, edges, externals = _graph(tmp_path)
    assert "compute.a" in edges["compute.b"] and "compute.b" in edges["compute.a"]
    assert "services.d" in edges["compute.c"] and "ray" in externals["compute.c"]
