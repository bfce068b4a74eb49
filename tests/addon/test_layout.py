"""The add-on's layout (issue 11): no import cycle among its modules, lazy imports included, and the
bpy-free session modules free of Blender."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("operators", "panels")
BPY_FREE = ("operators/photo.py", "operators/renderers.py", "operators/stopmotion.py", "operators/errors.py")


def _module(path):
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path):
    """Add-on modules ``path`` imports anywhere in it (function bodies too)."""
    here = _module(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target + "." + a.name for a in node.names] if not node.module else [target]
            found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found


def test_no_import_cycle():
    files = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph = {m: {t for t in _imports(p) if t in files and t != m} for m, p in files.items()}
    for package in PACKAGES:  # a package's __init__ registering its submodules is not a use
        graph[package] = set()
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_session_modules_do_not_import_blender():
    for name in BPY_FREE:
        tree = ast.parse((ROOT / name).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and not node.level and node.module}
        assert not imported & {"bpy", "mathutils", "bpy_extras"}, name
