"""The house rules of docs/architecture.md, checked on the source: no import circle among masqctl
modules (function-local imports count), and no package imports one above it."""

from __future__ import annotations

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "masqctl")

# docs/architecture.md "Layers": a module may import its own layer and the ones below
LAYER = {"errors": 0, "goflags": 0, "configfolder": 0, "textinput": 0, "__init__": 0, "__main__": 0,
         "netfilter": 1, "engine": 2, "agent": 2, "cluster": 3, "analysis": 4, "ops": 5, "cli": 6}
# the one sideways import: the node-agent's flag definitions, read by inspect (stdlib only)
SIDEWAYS = {"masqctl.agent.flags"}


def modules() -> dict[str, str]:
    out = {}
    for base, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(base, f)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


def imports_of(name: str, path: str, known: set[str]) -> set[str]:
    """Every masqctl module ``name`` imports, at the top or inside a function."""
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)   # `from pkg import submodule`
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYER[parts[1]] if len(parts) > 1 else 0


def test_no_import_circle_counting_function_local_imports():
    assert circles(graph()) == []


def test_no_module_imports_a_layer_above_it():
    wrong = []
    for mod, deps in graph().items():
        for dep in deps:
            if dep in SIDEWAYS or dep == "masqctl":
                continue
            if layer(dep) > layer(mod):
                wrong.append(f"{mod} -> {dep}")
            # the daemon is its own entry point: others read only its flag definitions
            if (dep.startswith("masqctl.agent") and dep not in SIDEWAYS
                    and not mod.startswith(("masqctl.agent", "masqctl.cli"))):
                wrong.append(f"{mod} -> {dep}")
            # side by side in layer 2: the node-agent runs the engine, never the other way round
            if mod.startswith("masqctl.engine") and dep.startswith("masqctl.agent"):
                wrong.append(f"{mod} -> {dep}")
    assert wrong == []


def test_pure_analysis_never_reaches_the_code_that_opens_sockets():
    wrong = [f"{m} -> {d}" for m, deps in graph().items() if m.startswith(("masqctl.analysis", "masqctl.netfilter",
                                                                         "masqctl.engine"))
             for d in deps if d.startswith(("masqctl.cluster.live", "masqctl.cluster.gather", "masqctl.ops",
                                            "masqctl.cli"))]
    assert wrong == []


def test_the_checker_sees_circles_and_upward_imports():
    # the checks above cannot pass vacuously: a made-up graph with both faults is caught
    g = {"masqctl.netfilter.a": {"masqctl.analysis.b"}, "masqctl.analysis.b": {"masqctl.netfilter.a"}}
    assert circles(g) == [["masqctl.analysis.b", "masqctl.netfilter.a"]]
    assert layer("masqctl.analysis.b") > layer("masqctl.netfilter.a")
    assert len(graph()) > 50 and "masqctl.netfilter.dump" in graph()["masqctl.analysis.explain"]
