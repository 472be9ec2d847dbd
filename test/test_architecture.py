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


WIDGETS = ("qgis.gui", "qgis.PyQt.QtWidgets", "PyQt5.QtWidgets", "processing.gui")
"""Dialog and widget modules: only a dialog may load them."""


def test_algorithms_never_load_a_widget():
    """Dialog widgets (``gui/field_picker.py``, the dialogs) are named in parameter metadata and
    imported by Processing when it builds a dialog, so ``qgis_process`` and the modeler's runs
    never load them: nothing an algorithm imports, directly or through the plugin's modules
    (``gui/styling.py``, ``gui/icon.py``, ``gui/keras_backend_setting.py``), is a widget."""
    modules = _modules()
    offenders = {}
    for name in (n for n in modules if n.split(".")[0] == "algorithms"):
        seen, todo = set(), [name]
        while todo:
            current = todo.pop()
            seen.add(current)
            for target in _imports(current, modules[current]):
                if target.startswith(WIDGETS):
                    offenders.setdefault(name, set()).add(f"{current} imports {target}")
                elif target in modules and target not in seen:
                    todo.append(target)
    assert not offenders


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


STAGE_IMPORTS = {
    "core": {"models"},
    "model": {"core", "models"},
    "masks": {"core"},
    "training": {"core", "model", "models"},
    "classify": {"core", "model", "models"},
    "export": {"core", "model", "models"},
    "batch": {"core", "model", "classify"},
    "suggest": {"core", "model", "classify", "masks"},
    "assess": {"core", "masks"},
}
"""What each package under ``backend/`` may import of the plugin (docs/ARCHITECTURE.md, "The
stages"): the stages stand on ``core`` and ``model``; batch and suggest run classification,
suggest and assess read labels with the masks' feature reader; nothing else crosses."""


def _stage_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, path in _modules().items():
        parts = name.split(".")
        if parts[0] != "backend" or len(parts) < 3:
            continue
        for target in _imports(name, path):
            other = target.split(".")
            if other[0] == "backend" and len(other) > 1 and other[1] != parts[1]:
                found.setdefault(parts[1], set()).add(other[1])
            elif other[0] == "models":
                found.setdefault(parts[1], set()).add("models")
    return found


def test_every_backend_package_has_its_rule():
    packages = {p.name for p in (ROOT / "backend").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(STAGE_IMPORTS)


def test_stages_import_only_what_they_may():
    """One way to open a model (``backend/model``), shared facts in ``backend/core``: a stage
    that needs another stage's code has it moved down, rather than importing across."""
    crossing = {stage: sorted(found - STAGE_IMPORTS[stage])
                for stage, found in _stage_imports().items()}
    assert not {k: v for k, v in crossing.items() if v}


def test_the_stage_check_finds_a_crossing(tmp_path, monkeypatch):
    """The check above can fail: an export module importing classification is found."""
    for package in STAGE_IMPORTS:
        (tmp_path / "backend" / package).mkdir(parents=True)
        (tmp_path / "backend" / package / "__init__.py").write_text("")
    (tmp_path / "backend" / "export" / "onnx_file.py").write_text(
        "from ..classify.classify_raster import default_window\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="export"):
        test_stages_import_only_what_they_may()


def test_test_modules_share_helpers_through_fixtures_and_support_only():
    """A test module is not a library: what several need lives in ``fixtures_*.py`` or
    ``support.py``, so a test module can be renamed or removed without breaking another."""
    offenders = {}
    for path in sorted((ROOT / "test").glob("test_*.py")):
        imported = _imports(path.stem, path)
        found = sorted(i for i in imported if i.split(".")[0].startswith("test_"))
        if found:
            offenders[path.name] = found
    assert not offenders


def test_architecture_md_names_every_module():
    """docs/ARCHITECTURE.md is the map of the house: a module it does not name is a room
    nobody can find."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    unnamed = sorted(str(path.relative_to(ROOT)) for path in _modules().values()
                     if path.name != "__init__.py" and f"`{path.name}`" not in text)
    assert not unnamed
