"""The add-on's layout, as Blender's glTF add-on is laid out: Blender-concept conversions
(blender/) apart from thin operator classes (operators/, panels/) and from bpy-free session code
(session/), above the engine (engine/). No import cycle among the modules of all of them, lazy
imports included; the layers import downwards only; no session module imports Blender."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("blender", "operators", "panels", "session")
LAYERED = PACKAGES + ("engine",)  # the import graph: the add-on's packages and the engine below them
BPY_FREE = "session"  # every module of this package
# what each package may import of the others (its own modules aside)
LAYERS = {"engine": set(), "session": {"engine"}, "blender": {"session", "engine"},
          "operators": {"blender", "session", "engine"}, "panels": {"blender", "session", "engine"}}
BLENDER = {"bpy", "mathutils", "bpy_extras", "bmesh", "gpu", "addon_utils"}


def _module(path):
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _files():
    return {_module(p): p for pkg in LAYERED for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(path, modules):
    """Project modules ``path`` imports anywhere in it (function bodies too): ``from .x import y``
    names ``x.y`` when that is a module of the project, else ``x``."""
    here = _module(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                name = f"{target}.{alias.name}" if target else alias.name
                found.add(name if name in modules else target)
    return {n for n in found if n and n.split(".")[0] in LAYERED}


def test_layout_packages_exist_and_operators_moved_out():
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").is_file(), package
    # conversions and session code no longer live among the operators
    for name in ("camera", "mesh", "material", "keyframes", "matrices", "scene", "photo", "frames",
                 "renderers", "stopmotion", "deps", "errors"):
        assert not (ROOT / "operators" / f"{name}.py").exists(), name


def test_no_import_cycle():
    files = _files()
    graph = {m: {t for t in _imports(p, files) if t in files and t != m} for m, p in files.items()}
    for package in LAYERED:  # a package's __init__ registering its submodules is not a use
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


def test_the_cycle_check_sees_lazy_and_package_imports():
    """The graph the cycle test walks has the edges a lazy ``from ..session import jobs`` makes."""
    files = _files()
    assert "session.jobs" in _imports(ROOT / "panels" / "sidebar.py", files)  # inside draw()
    assert "session.deps" in _imports(ROOT / "operators" / "install.py", files)  # from ..session import deps
    assert "blender.frames" in _imports(ROOT / "operators" / "render_engine.py", files)  # inside render()
    assert "engine.completion" in _imports(ROOT / "engine" / "lifted.py", files)  # inside build()
    assert "engine.geometry" in _imports(ROOT / "engine" / "perception" / "inputs.py", files)  # from ..geometry


def test_layers_import_downwards_only():
    """engine/ imports no add-on package; session/ only engine/; blender/ session/ and engine/;
    operators/ and panels/ blender/, session/ and engine/ (never each other)."""
    files = _files()
    wrong = []
    for module, path in files.items():
        package = module.split(".")[0]
        for target in _imports(path, files):
            other = target.split(".")[0]
            if other != package and other not in LAYERS[package]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_session_modules_do_not_import_blender():
    files = sorted((ROOT / BPY_FREE).rglob("*.py"))
    assert len(files) >= 10, files  # the whole package, not a hand-kept list
    for path in files:
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and not node.level and node.module}
        assert not imported & BLENDER, path.relative_to(ROOT)


def test_operator_modules_hold_thin_classes():
    """operators/ defines operator / render engine classes and their CLASSES; module-level
    functions there are registration hooks and small UI helpers only."""
    allowed = {"register", "unregister", "menu_import", "interactive", "_set_ui", "_panels", "_modules"}
    extra = []
    for path in sorted((ROOT / "operators").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name not in allowed:
                extra.append(f"{path.name}: {node.name}")
    assert extra == []
