"""The plugin ZIP holds only the plugin, and loads from a clean plugins folder."""
from __future__ import annotations

import importlib.util
import os
import tempfile
import zipfile

from support import ROOT, qgis_process


def _package_module():
    spec = importlib.util.spec_from_file_location("package", ROOT / "scripts" / "package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zip_contains_only_the_plugin_and_loads_in_qgis_process(tmp_path):
    path = _package_module().build(str(tmp_path))
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "plugins")
    assert all(n.startswith("landcoverunet/") for n in names)
    for required in ("metadata.txt", "__init__.py", "plugin.py", "gui/keras_backend_dialog.py",
                     "gui/installation_dialog.py", "gui/field_picker.py",
                     "LICENSE", "algorithms/provider.py", "backend/masks/burn.py", "models/unet.py",
                     "resources/icon.svg", "resources/icons/trainunet.svg",
                     "resources/sample/nc_landsat7_2000.tif"):
        assert f"landcoverunet/{required}" in names, required
    for excluded in ("test/", "bench/", ".venv/", "build/", ".ci/", "scripts/", "__pycache__"):
        assert not any(excluded in n for n in names), excluded

    # Only the unpacked copy is visible: the checkout's build/plugins is left off the path.
    python_path = os.pathsep.join(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                  if p and "build/plugins" not in p)
    env = {"QGIS_PLUGINPATH": str(tmp_path / "plugins"), "PYTHONPATH": python_path,
           "QGIS_CUSTOM_CONFIG_PATH": tempfile.mkdtemp(prefix="landcoverunet-zip-profile-")}
    enabled = qgis_process("plugins", "enable", "landcoverunet", env=env)
    assert "Enabled landcoverunet" in enabled.stdout, enabled.stdout + enabled.stderr
    listed = qgis_process("list", env=env)
    assert "landcoverunet:buildmasks" in listed.stdout
    sample = tmp_path / "plugins" / "landcoverunet" / "resources" / "sample"
    done = qgis_process("run", "landcoverunet:buildmasks", "--",
                        f"INPUT={sample / 'nc_landsat7_2000.tif'}",
                        f"VECTORS={sample / 'training_polygons.gpkg'}", "CLASS_FIELD=id",
                        "CLASS_NAME_FIELD=label", f"OUTPUT={tmp_path / 'mask.tif'}", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "mask.tif").exists()


def test_metadata_parses_the_way_qgis_parses_it(plugin):
    """metadata.txt read by QGIS's own plugin finder (a ConfigParser with interpolation: a bare
    '%' empties the Plugin Manager's changelog), and the facts it states are the plugin's."""
    from qgis.core import QgsApplication
    from qgis.utils import findPlugins

    from landcoverunet.backend.core.deps import SAFE_KERAS
    from landcoverunet.backend.core.version import plugin_version

    found = dict(findPlugins(str(ROOT / "build" / "plugins")))
    parser = found["landcoverunet"]
    assert parser is not None, "QGIS cannot read metadata.txt"
    values = {key: parser.get("general", key) for key in parser.options("general")}
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author",
                "email", "repository", "tracker", "homepage", "changelog", "experimental"):
        assert values.get(key.lower()), key
    assert plugin_version() == values["version"] != "unknown"
    count = len(QgsApplication.processingRegistry().providerById("landcoverunet").algorithms())
    words = {6: "six", 7: "seven", 8: "eight", 9: "nine"}
    assert f"{words[count]} Processing algorithms" in values["changelog"]
    assert f"Keras {SAFE_KERAS[0]}.{SAFE_KERAS[1]} or later" in values["about"]
    assert "TensorFlow 2.16" not in values["about"]
    assert values["experimental"] == "True"   # Windows, macOS and GPU training never run
