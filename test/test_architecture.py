"""The layout's rules, checked on the source: the backend and the models never import QGIS, and
no import circle joins the plugin's modules (docs/ARCHITECTURE.md)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("algorithms", "backend", "gui", "models")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names (inside the plugin, or third-party roots) that a module imports, at its
    top or inside a function (a deferred import is still a dependency)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                found.add(target)
                found |= {f"{target}.{alias.name}" for alias in node.names}
            else:
                found.add(node.module or "")
    return found


@pytest.mark.parametrize("package", ["backend", "models"])
def test_backend_and_models_never_import_qgis(package):
    offenders = {name: sorted(i for i in _imports(name, path)
                              if i.split(".")[0] in ("qgis", "PyQt5", "PyQt6", "processing"))
                 for name, path in _modules().items() if name.split(".")[0] == package}
    assert not {k: v for k, v in offenders.items() if v}


def test_algorithms_never_import_the_qt_side():
    """Dialog widgets (``gui/``) are named in parameter metadata and imported by Processing
    when it builds a dialog, so ``qgis_process`` and the modeler's runs never load them."""
    offenders = {name: sorted(i for i in _imports(name, path)
                              if i.split(".")[0] == "gui" or i.startswith("processing.gui"))
                 for name, path in _modules().items() if name.split(".")[0] == "algorithms"}
    assert not {k: v for k, v in offenders.items() if v}


def test_no_import_circle():
    modules = _modules()
    graph = {name: {i for i in _imports(name, path) if i in modules and i != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for following in sorted(graph[name]):
            if state.get(following) == 1:
                cycle = trail[trail.index(following):] + [following]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if not state.get(following):
                visit(following, trail + [following])
        state[name] = 2

    for name in sorted(graph):
        if not state.get(name):
            visit(name, [name])


def test_the_circle_check_finds_a_circle(tmp_path, monkeypatch):
    """The check above can fail: two modules importing each other are found."""
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "a.py").write_text("from .b import x\n")
    (tmp_path / "backend" / "b.py").write_text("from .a import y\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    with pytest.raises(pytest.fail.Exception, match="import circle"):
        test_no_import_circle()
