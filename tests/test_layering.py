"""Layering of src/genmed (issue 12, docs/design.md): data -> models -> train -> metrics ->
experiments -> cli, and no import cycles.

Static: every module under src/genmed is parsed with `ast`, and every import statement counts,
including those inside functions (the CLI and the lazy packages import inside bodies, and a
function-level import is still a dependency), as do the module names a package lists for its
lazy exports. Nothing is imported or executed.

A "unit" is a subpackage (`genmed.metrics`) or a top-level module (`genmed.fileio`).
Rules:
- a unit imports only units of a strictly lower tier, except
  - in the base tier, whose small helpers may use each other, and
  - in the entry tier (`cli`, `demo`, `__main__`), which may use anything;
- siblings in any other tier stay independent (e.g. `pipeline` does not import `apps`);
- nothing imports `genmed.cli` except `genmed.__main__`;
- no cycles between units, and no cycles between modules (function-level imports included).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "genmed"

# Lowest first. Where a unit sits is decided by what it imports, not by its name:
TIERS: list[tuple[str, frozenset[str]]] = [
    # `genmed` is the package's own __init__ (it re-exports UserError).
    ("base", frozenset({"genmed", "errors", "fileio", "config", "_lazy", "versions"})),
    # report/ (HTML pages and image grids) imports nothing but fileio, and train.tracking
    # draws its sample grids with it: it is a helper below everything that trains.
    ("report", frozenset({"report"})),
    ("data", frozenset({"data"})),
    ("models", frozenset({"models"})),
    ("train", frozenset({"train"})),
    ("metrics", frozenset({"metrics"})),
    # erroranalysis/ (category tables, error by parts, the tagging store) takes its statistics
    # (Wilson intervals) from metrics/ and is the analysis library the pipeline uses.
    ("erroranalysis", frozenset({"erroranalysis"})),
    # scorelab/ imports only the base tier too; it is a self-contained experiment that only
    # the demo uses, so it sits with the experiments and nothing below may use it.
    ("experiments", frozenset({"compare", "apps", "pipeline", "scorelab"})),
    ("entry", frozenset({"cli", "demo", "__main__"})),
]
SIBLINGS_MAY_IMPORT = {"base", "entry"}

# Known violations still to be removed: (importing module, imported module). The test fails on
# entries that no longer occur, so remove an entry when its import goes.
ALLOWED_FOR_NOW: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest existing genmed module that `name` (a module or module.attribute) names."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, imported genmed module) for every import statement in the module, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule when there is one, else an attribute.
            targets = [f"{module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Dict):
            # lazy exports (genmed/_lazy.py): {"genmed.data.phantom": (...), ".fid": (...)}
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            targets = [package + k if k.startswith(".") else k for k in keys
                       if k.startswith((".", "genmed.")) and k.replace(".", "").replace("_", "").isalnum()]
        else:
            continue
        for target in targets:
            if target.split(".")[0] != "genmed":
                continue
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != name:
                found.append((node.lineno, resolved))
    return found


def _graph() -> dict[str, list[tuple[int, str]]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "genmed"


def _tier_of() -> dict[str, int]:
    return {unit: i for i, (_, units) in enumerate(TIERS) for unit in units}


def _violations(graph: dict[str, list[tuple[int, str]]]) -> list[tuple[str, str, str]]:
    """(importer, imported, reason) for each import that breaks the layering."""
    tier = _tier_of()
    bad = []
    for module, imports in graph.items():
        for _, target in imports:
            a, b = _unit(module), _unit(target)
            if a == b:
                continue
            if b == "cli" and module != "genmed.__main__":
                bad.append((module, target, "nothing imports genmed.cli"))
            elif tier[b] > tier[a]:
                bad.append((module, target, f"upward: {TIERS[tier[a]][0]} -> {TIERS[tier[b]][0]}"))
            elif tier[b] == tier[a] and TIERS[tier[a]][0] not in SIBLINGS_MAY_IMPORT:
                bad.append((module, target, f"sibling in tier {TIERS[tier[a]][0]}"))
    return sorted(set(bad))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
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
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_unit_has_a_tier():
    tier = _tier_of()
    units = {_unit(m) for m in _modules()}
    missing = sorted(units - set(tier))
    assert not missing, f"add these to TIERS in {__file__}: {missing}"
    assert not set(tier) - units, f"TIERS names units that do not exist: {sorted(set(tier) - units)}"


def test_no_upward_or_sideways_imports():
    graph = _graph()
    found = _violations(graph)
    unexpected = [v for v in found if (v[0], v[1]) not in ALLOWED_FOR_NOW]
    lines = {(m, t): line for m, imports in graph.items() for line, t in imports}
    report = "\n".join(f"  {m}:{lines[(m, t)]} imports {t} ({why})" for m, t, why in unexpected)
    assert not unexpected, f"layering violations (docs/design.md):\n{report}"
    stale = ALLOWED_FOR_NOW - {(m, t) for m, t, _ in found}
    assert not stale, f"no longer violated, remove from ALLOWED_FOR_NOW: {sorted(stale)}"


def test_no_cycles_between_units():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imports in _graph().items():
        for _, target in imports:
            if _unit(module) != _unit(target):
                edges[_unit(module)].add(_unit(target))
    cycles = _cycles(edges)
    assert not cycles, f"import cycles between subpackages: {cycles}"


def test_no_cycles_between_modules():
    # A package's __init__ only re-exports (lazily), so edges into an __init__ are the
    # package's API and edges out of it are its re-exports; a cycle through one is not a
    # design knot. Every other module-to-module cycle is.
    modules = _modules()
    inits = {name for name, path in modules.items() if path.name == "__init__.py"}
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imports in _graph().items():
        if module in inits:
            continue
        for _, target in imports:
            if target not in inits:
                edges[module].add(target)
    cycles = _cycles(edges)
    assert not cycles, f"import cycles between modules: {cycles}"


def test_the_check_sees_function_level_imports(tmp_path):
    """The checker counts an import inside a function body, and flags an upward one."""
    graph = {"genmed.models.x": [(3, "genmed.train.engine")], "genmed.train.engine": []}
    assert _violations(graph) == [("genmed.models.x", "genmed.train.engine", "upward: models -> train")]
    code = "def f():\n    from genmed.train.engine import fit\n"
    (tmp_path / "m.py").write_text(code)
    modules = {"genmed.models.m": tmp_path / "m.py", "genmed.train.engine": tmp_path / "e.py"}
    assert _imports("genmed.models.m", tmp_path / "m.py", modules) == [(2, "genmed.train.engine")]
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    (tmp_path / "lazy.py").write_text('_EXPORTS = {"genmed.train.engine": ("fit",)}\n')
    assert _imports("genmed.models.lazy", tmp_path / "lazy.py", modules) == [(1, "genmed.train.engine")]
