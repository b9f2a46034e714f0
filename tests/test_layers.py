"""The package's layers run one way: a module imports only its own layer and those below it, and no modules import
each other in a cycle. Read from the source (every import statement, inside functions too), so a lazy import that
runs only on some path counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "streamtrain"

# Lowest first. The top-level modules outside these are the base (errors, options, faults, progress, visible)
# unless APPLICATION names them (module or package): the entry points that wire the layers together for a command.
LAYERS = ("base", "fs", "io", "vectorize", "dataset", "serve", "train", "cli")
APPLICATION = {"api", "fit", "prepare", "inspect", "verify", "evaluate", "predict", "__main__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"  # the package itself: __version__ and the lazy load()
    if parts[1] in APPLICATION:
        return "cli"
    if len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").is_file():
        return "base"
    return parts[1]


def type_only(tree: ast.Module) -> set[ast.AST]:
    """The import statements under ``if TYPE_CHECKING:``: they never run, so they make no cycle (a layer still
    counts them: a type from above is a dependency on above)."""
    guarded: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(n for stmt in node.body for n in ast.walk(stmt))
    return guarded


def imported(path: Path, module: str, *, at_run_time: bool = False) -> set[str]:
    """The streamtrain modules ``path`` imports (a ``from X import name`` counts as X.name when that is a module);
    ``at_run_time``: leave out the imports made for type checking only."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = type_only(tree) if at_run_time else set()
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {name for name in found if name.split(".")[0] == "streamtrain"}


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: imported(path, name) - {name} for name, path in MODULES.items()}
RUN_TIME = {name: imported(path, name, at_run_time=True) - {name} for name, path in MODULES.items()}
# The package's root is its public face: ``streamtrain.load`` imports ``api`` when called. Every other module may
# import the root (for ``__version__``), so the root's own imports are not a layer's.
FACADE = "streamtrain"


def test_every_module_has_a_known_layer() -> None:
    unknown = sorted(name for name in MODULES if layer(name) not in LAYERS)
    assert not unknown, f"modules outside the layers {LAYERS}: {unknown}"


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{source} ({layer(source)}) imports {target} ({layer(target)})"
        for source, targets in GRAPH.items()
        if source != FACADE
        for target in sorted(targets)
        if target in MODULES and LAYERS.index(layer(target)) > LAYERS.index(layer(source))
    ]
    assert not upward, "imports against the layer order " + " -> ".join(LAYERS) + ":\n" + "\n".join(upward)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
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
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycles_finds_a_cycle_it_is_shown() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    # A package's __init__ importing its own submodules is how a package re-exports; not a cycle of the design.
    graph = {
        name: {t for t in targets if not (MODULES[name].name == "__init__.py" and t.startswith(name + "."))}
        for name, targets in RUN_TIME.items()
        if name != FACADE
    }
    assert not cycles(graph), f"import cycles: {cycles(graph)}"
