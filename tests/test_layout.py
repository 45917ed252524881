"""The package's layers: imports point down only, and no import cycle exists.

Every `import` of a `gan_jax` module is read from the source, module level and inside functions
alike (a function-level import still ties the modules together; it only hides the cycle from
Python's import order). The layers, lowest first (README, "Architecture"):

  0 plumbing   errors, config, registry, io, ops, cpu_memory, distributed, metric_writer,
               early_signals
  1 parts      data, models, losses, objectives, optim, metrics, augment
  2 step       state, parallel, checkpoint, train_step, standing_stats
  3 build      build
  4 run dir    workdir
  5 sampling   sampling, report, predicting
  6 evaluate   evaluate
  7 loops      train, multiseed
  8 command    main, __main__
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "gan_jax"

LAYERS = [
    (
        "errors",
        "config",
        "registry",
        "io",
        "ops",
        "cpu_memory",
        "distributed",
        "metric_writer",
        "early_signals",
    ),
    ("data", "models", "losses", "objectives", "optim", "metrics", "augment"),
    ("state", "parallel", "checkpoint", "train_step", "standing_stats"),
    ("build",),
    ("workdir",),
    ("sampling", "report", "predicting"),
    ("evaluate",),
    ("train", "multiseed"),
    ("main", "__main__"),
]
RANK = {top: rank for rank, tops in enumerate(LAYERS) for top in tops}


def _module_name(path: pathlib.Path) -> str:
    parts = ["gan_jax", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The longest known module that `name` ("gan_jax.data.pipeline.make_dataset") is or is in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The gan_jax modules `module` imports (anywhere in its source)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for name in names:
            if name.startswith("gan_jax"):
                target = _resolve(name)
                if target is not None and target != module:
                    found.add(target)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # gan_jax/__init__.py: imports nothing, belongs to no layer
        return -1
    return RANK[parts[1]]


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if m != "gan_jax" and m.split(".")[1] not in RANK)
    assert not unplaced, f"add these modules to a layer in this test and the README: {unplaced}"


def test_no_module_imports_a_higher_layer():
    upward = sorted(
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer(target) > layer(module)
    )
    assert not upward, "\n".join(upward)


def test_config_imports_nothing_of_the_project():
    assert GRAPH["gan_jax.config"] == set()
    assert GRAPH["gan_jax.errors"] == {"gan_jax.config"}  # for ConfigError only
    assert GRAPH["gan_jax.registry"] == set()


def _cycles() -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycles():
    assert _cycles() == []


@pytest.mark.parametrize(
    "module, target",
    [("gan_jax.config", "gan_jax.evaluate"), ("gan_jax.losses.base", "gan_jax.build")],
)
def test_the_checks_catch_what_they_guard(module, target, monkeypatch):
    """An upward import and a cycle, added on purpose, are caught."""
    monkeypatch.setitem(GRAPH, module, GRAPH[module] | {target})
    with pytest.raises(AssertionError):
        test_no_module_imports_a_higher_layer()
    monkeypatch.setitem(GRAPH, target, GRAPH[target] | {module})
    monkeypatch.setitem(GRAPH, module, GRAPH[module] | {target})
    assert any(module in c and target in c for c in _cycles())
