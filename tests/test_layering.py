"""The package's imports point one way (docs/architecture.md): every import of every module, at
module level, inside functions and under TYPE_CHECKING, is read from the source and checked
against the declared order of the layers; no import cycle, however hidden; no private name
imported from another module."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "elubench"

# The layers, lowest first: a module may import its own layer and the layers before it, never
# one after it. elubench/__init__.py, __main__.py and the public modules the Python API
# promises (PUBLIC: `from elubench.errors import SpecError`) sit above every layer.
LAYERS = (
    "core",
    "activations",
    "spec",
    "net",
    "data",
    "store",
    "stats",
    "training",
    "execution",
    "reporting",
    "export",
    "tools",
    "api",
    "cli",
)
PUBLIC = ("errors", "plots")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) for every elubench import in the file, at any depth.
    `from elubench.x import y` gives (elubench.x.y, None) when y is a module, else (elubench.x, y)."""
    known = modules()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [
                (alias.name, None, node.lineno)
                for alias in node.names
                if alias.name.startswith("elubench")
            ]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            if not base.startswith("elubench"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(
                    (sub, None, node.lineno) if sub in known else (base, alias.name, node.lineno)
                )
    return found


def layer(module: str) -> int | None:
    """The layer's place in LAYERS; None for the top (elubench, elubench.__main__)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in ("__main__", *PUBLIC):
        return None
    return LAYERS.index(parts[1])


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules().items():
        for target, _, _ in imports(path):
            if target != name:
                edges[name].add(target)
    return edges


def test_every_package_has_its_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(LAYERS)


def test_imports_follow_the_declared_order():
    wrong = []
    for name, path in modules().items():
        here = layer(name)
        for target, _, line in imports(path):
            there = layer(target)
            if target == "elubench" and here is not None:
                wrong.append(f"{name}:{line} imports the top-level package (import from its layer)")
            elif here is not None and there is not None and there > here:
                wrong.append(
                    f"{name}:{line} imports {target}: {LAYERS[here]} is below {LAYERS[there]}"
                )
    assert wrong == [], "\n".join(wrong)


def test_no_import_cycle():
    """Tarjan's strongly connected components over the module graph, every import counted."""
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(modules()):
        if node not in index:
            visit(node)
    assert cycles == [], "\n".join(" <-> ".join(c) for c in cycles)


def test_no_private_name_crosses_a_module():
    crossing = []
    for name, path in modules().items():
        for target, imported, line in imports(path):
            if (
                imported is not None
                and imported.startswith("_")
                and not imported.endswith("__")
                and target != name
            ):
                crossing.append(f"{name}:{line} imports {target}.{imported}")
    assert crossing == [], "\n".join(crossing)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import elubench.core.errors\n", [("elubench.core.errors", None)]),
        ("def f():\n    from elubench.spec import loader\n", [("elubench.spec.loader", None)]),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from elubench.store.record import RunRecord\n",
            [("elubench.store.record", "RunRecord")],
        ),
        ("from elubench.core.files import _umask\n", [("elubench.core.files", "_umask")]),
    ],
)
def test_the_reader_sees_every_kind_of_import(tmp_path, monkeypatch, source, expected):
    """The checks above can fail: imports inside functions and under TYPE_CHECKING are read."""
    path = PACKAGE / "core" / "_probe_for_test.py"
    path.write_text(source)
    try:
        assert [(m, n) for m, n, _ in imports(path)] == expected
    finally:
        path.unlink()


def test_a_layering_violation_would_be_seen():
    """A made-up low module importing a high one is reported (the check is not vacuous)."""
    assert layer("elubench.core.files") < layer("elubench.cli.app")
    assert layer("elubench.cli") == LAYERS.index("cli") and layer("elubench") is None
