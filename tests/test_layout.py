"""The package's layout: imports between its modules form no cycle, nothing in the library
imports the command line, and optional frameworks are imported only where they are used."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "pyimgdir"


def _modules():
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name, path):
    """The package's modules `name` imports (at any depth in the file)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                cand = f"{target}.{alias.name}"
                if cand in MODULES:
                    found.add(cand)
                elif target in MODULES:
                    found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
    found.discard(name)
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _is_package_init(m):
    return MODULES[m].name == "__init__.py"


def test_the_graph_is_read():
    # the check below means something only if imports are found at all
    assert "pyimgdir.options.spec" in GRAPH["pyimgdir.api"]
    assert "pyimgdir.batches.source" in GRAPH["pyimgdir.outputs.numpy_data"]
    assert len(MODULES) > 20


def test_no_import_cycle():
    # Edges into a package's __init__ that re-exports its children are not cycles worth
    # naming (pyimgdir/__init__ imports api, which imports the stages).
    graph = {m: {t for t in ts if not (_is_package_init(t) and t == "pyimgdir")} for m, ts in GRAPH.items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_library_does_not_import_the_cli():
    lib = [m for m in MODULES if not m.startswith("pyimgdir.cli") and m != "pyimgdir.__main__"]
    bad = sorted(f"{m} -> {t}" for m in lib for t in GRAPH[m] if t.startswith("pyimgdir.cli"))
    assert not bad, bad


# format="grain" hands out tensors of the active Keras backend, so its module converts to
# TensorFlow's and torch's; the sample maker encodes with whichever encoder is installed.
@pytest.mark.parametrize("framework, home", [
    ("tensorflow", {"pyimgdir.outputs.tf_data", "pyimgdir.outputs.quiet_tf", "pyimgdir.outputs.grain_data",
                    "pyimgdir.sample"}),
    ("grain", {"pyimgdir.outputs.grain_data"}),
    ("torch", {"pyimgdir.outputs.torch_data", "pyimgdir.outputs.grain_data"}),
    ("ray", {"pyimgdir.outputs.ray_data"}),
    ("opendal", {"pyimgdir.sources.native_store"}),
    ("obstore", {"pyimgdir.sources.native_store"}),
    ("arro3", {"pyimgdir.sources.native_store"}),
])
def test_optional_frameworks_are_imported_in_one_place(framework, home):
    users = set()
    for m, path in MODULES.items():
        if m.startswith("pyimgdir.cli"):
            continue  # the command line may time any framework
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(n == framework or n.startswith(framework + ".") for n in names):
                users.add(m)
    assert users <= home, f"{framework} imported outside {sorted(home)}: {sorted(users - home)}"
