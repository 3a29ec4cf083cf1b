"""The import picture of lwdet, read from the source with ``ast``: no import cycle, no library import of the CLI.

Every ``import`` / ``from ... import`` counts, at module level and inside functions alike (a function-level import
is a deferred one, not an absent one). ``from lwdet.x import y`` is an edge to ``lwdet.x.y`` when that is a module,
else to ``lwdet.x``; a package's ``__init__`` that an import passes through is not counted (every submodule would
otherwise form a cycle with its own package).

    python tests/test_layers.py     # the numbers: modules, lines, edges, cycles, imports up the layers
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lwdet"

# Components (lwdet.<top>) from the bottom up: an import from a component to one in a higher layer goes up the
# layers, which only entry points (the CLI, ``__main__`` modules) may do.
LAYERS = (
    ("errors", "units", "artifacts", "tilegrid", "coco", "edge"),  # torch-free (edge: runs on the Pi alone)
    ("cfg", "backbones", "necks", "heads", "modules", "reparam"),
    ("model_spec", "hyp", "models", "engine_models", "checkpoints", "pretrained"),
    ("data", "yolo", "distill", "training", "assign"),
    ("export", "quantize", "profile", "parts", "sliced_eval", "pi_numerics"),
    ("experiment",),  # what study and search stand on
    ("report",),  # reads the results table's schema from experiment
    ("study", "search"),
    ("cli", "__main__"),
)

# Cycles tolerated, each one cycle's modules: none since issue 34 broke the last three (models <-> engine_models,
# checkpoints -> yolo -> training -> distill -> checkpoints, data <-> data.benchmark).
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()  # none left (issue 34); a new cycle fails the tests below


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file for every module of the package (a package is its ``__init__``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _target(name: str, known: dict[str, Path]) -> str | None:
    """The lwdet module an imported dotted name lands in (its longest known prefix)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The lwdet modules ``module`` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "lwdet" and (hit := _target(name, known)) and hit != module:
                found.add(hit)
    return found


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(package)
    return {m: imports(m, p, known) for m, p in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    scc = set()
                    while True:
                        top = stack.pop()
                        on.discard(top)
                        scc.add(top)
                        if top == node:
                            break
                    if len(scc) > 1:
                        found.append(frozenset(scc))
    return found


def component(module: str) -> str:
    """``lwdet.study.steps`` -> ``study``; the root package and ``lwdet.__main__`` are their own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "lwdet"


def is_entry(module: str) -> bool:
    return module.endswith(".__main__") or component(module) == "cli"


def component_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The imports between components, entry points left out (they may import anything)."""
    comp: dict[str, set[str]] = {}
    for m, targets in edges.items():
        if is_entry(m):
            continue
        mine = comp.setdefault(component(m), set())
        mine.update(component(t) for t in targets if component(t) != component(m) and not is_entry(t))
    return comp


def layer(comp: str) -> int | None:
    return next((i for i, names in enumerate(LAYERS) if comp in names), None)


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports from a library module into a component of a higher layer."""
    found = []
    for m, targets in sorted(edges.items()):
        if is_entry(m) or (mine := layer(component(m))) is None:
            continue
        found.extend((m, t) for t in sorted(targets) if (theirs := layer(component(t))) is not None and theirs > mine)
    return found


def cli_imports(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return [(m, t) for m, ts in sorted(edges.items()) if not is_entry(m) for t in sorted(ts) if component(t) == "cli"]


def test_every_component_has_a_layer():
    comps = {component(m) for m in modules()} - {"lwdet"}
    assert not {c for c in comps if layer(c) is None}, "add the new component to LAYERS"


def test_no_import_cycle():
    edges = graph()
    new = [sorted(c) for c in cycles(edges) if c not in KNOWN_CYCLES]
    assert not new, f"import cycles between lwdet modules: {new}"


def test_no_import_cycle_between_components():
    known = {frozenset(component(m) for m in c) for c in KNOWN_CYCLES}
    new = [sorted(c) for c in cycles(component_graph(graph())) if c not in known]
    assert not new, f"import cycles between lwdet's packages: {new}"


def test_library_never_imports_the_cli():
    assert not cli_imports(graph()), "only lwdet.cli and __main__ modules may import lwdet.cli"


def test_study_and_search_stand_apart():
    comp = component_graph(graph())
    assert "search" not in comp.get("study", set()) and "study" not in comp.get("search", set())


def test_the_walker_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "lwdet"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from lwdet.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import a\n")
    edges = graph(pkg)
    assert edges["lwdet.a"] == {"lwdet.sub.b"} and edges["lwdet.sub.b"] == {"lwdet.a"}
    assert cycles(edges) == [frozenset({"lwdet.a", "lwdet.sub.b"})]


def summary() -> str:
    edges = graph()
    known = modules()
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in known.values())
    comp = component_graph(edges)
    out = [
        f"modules {len(known)}, lines {lines}, import edges {sum(map(len, edges.values()))}",
        f"components {len(comp)}, edges between them {sum(map(len, comp.values()))}",
        f"module cycles {len(cycles(edges))}, component cycles {len(cycles(comp))}",
        f"imports up the layers {len(upward(edges))}, library -> cli {len(cli_imports(edges))}",
    ]
    out += [f"  cycle: {sorted(c)}" for c in cycles(edges)]
    out += [f"  component cycle: {sorted(c)}" for c in cycles(comp)]
    out += [f"  up: {m} -> {t}" for m, t in upward(edges)]
    return "\n".join(out)


if __name__ == "__main__":
    print(summary())
