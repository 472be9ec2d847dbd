"""The plugin loads like QGIS loads it, registers its provider, and stays light."""
from __future__ import annotations

import os

import subprocess
import sys
import textwrap

from qgis.core import QgsApplication
from support import ROOT


def test_provider_registered_with_all_algorithms(plugin):
    provider = QgsApplication.processingRegistry().providerById("landcoverunet")
    assert provider is not None
    assert provider.name() == "Land Cover U-Net"
    assert not provider.icon().isNull()
    names = {a.id() for a in provider.algorithms()}
    assert {"landcoverunet:buildmasks", "landcoverunet:trainunet",
            "landcoverunet:classifyraster", "landcoverunet:classifybatch",
            "landcoverunet:accuracysample", "landcoverunet:assessaccuracy"} <= names


def test_every_algorithm_has_its_own_icon(plugin):
    """Seven algorithms under one icon cannot be told apart in the toolbox or the modeler."""
    from qgis.PyQt.QtCore import QBuffer, QByteArray, QIODevice

    def pixels(icon) -> bytes:
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.WriteOnly)
        icon.pixmap(32, 32).save(buffer, "PNG")
        return bytes(data)

    provider = QgsApplication.processingRegistry().providerById("landcoverunet")
    drawn = {a.id(): pixels(a.icon()) for a in provider.algorithms()}
    assert all(drawn.values())
    assert len(set(drawn.values()) | {pixels(provider.icon())}) == len(drawn) + 1


def test_every_parameter_has_help(plugin):
    provider = QgsApplication.processingRegistry().providerById("landcoverunet")
    for algorithm in provider.algorithms():
        assert algorithm.shortHelpString(), algorithm.id()
        for parameter in algorithm.parameterDefinitions():
            assert parameter.help(), f"{algorithm.id()}: {parameter.name()} has no help text"


def test_help_survives_html_names_labels_and_links_its_section(plugin):
    """QGIS shows help as HTML: '<name>' is escaped, parameter ids become the dialog's labels,
    optional parameters do not say so twice (QGIS adds "[optional]"), every algorithm has a
    Help button to its section of docs/algorithms.md, and decimals are not shown with six
    places."""
    import html
    import re

    from qgis.core import QgsProcessingParameterNumber

    from landcoverunet.backend.core.version import repository_url

    provider = QgsApplication.processingRegistry().providerById("landcoverunet")
    docs = (ROOT / "docs" / "algorithms.md").read_text()
    texts = {}
    for algorithm in provider.algorithms():
        names = {p.name() for p in algorithm.parameterDefinitions()}
        texts[algorithm.name()] = [algorithm.shortHelpString()] + \
            [p.help() for p in algorithm.parameterDefinitions()]
        for text in texts[algorithm.name()]:
            assert not re.search(r"<[a-z]", text), text   # no tag-like phrase left to vanish
            assert not set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", text)) & names, text
        for parameter in algorithm.parameterDefinitions():
            if parameter.flags() & parameter.FlagOptional:
                assert "optional" not in parameter.description().lower(), parameter.name()
            if isinstance(parameter, QgsProcessingParameterNumber) and \
                    parameter.dataType() == QgsProcessingParameterNumber.Double:
                assert parameter.metadata()["widget_wrapper"]["decimals"] < 6, parameter.name()
        assert algorithm.helpUrl() == (f"{repository_url()}/blob/HEAD/docs/algorithms.md"
                                       f"#{algorithm.name()}")
        assert f'<a id="{algorithm.name()}"></a>' in docs
    assert repository_url().startswith("https://github.com/")
    phrases = " ".join(html.unescape(t) for t in texts["trainunet"] + texts["classifybatch"])
    for phrase in ("<name>.cancelled.keras", "'Output folder'/<input name>_classes.tif"):
        assert phrase in phrases, phrase


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)


def test_loading_plugin_imports_no_tensorflow():
    done = _fresh("""
        import sys
        from qgis.core import QgsApplication
        app = QgsApplication([], False); app.initQgis()
        import landcoverunet
        class Iface: pass
        plugin = landcoverunet.classFactory(Iface())
        plugin.initProcessing()
        provider = QgsApplication.processingRegistry().providerById('landcoverunet')
        assert provider is not None and len(provider.algorithms()) >= 4
        for algorithm in provider.algorithms():
            algorithm.createInstance().initAlgorithm()
        heavy = [m for m in ('tensorflow', 'keras', 'torch', 'jax') if m in sys.modules]
        print('HEAVY', heavy)
        plugin.unload()
    """)
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr


def test_backend_and_models_import_no_qgis():
    done = _fresh("""
        import importlib, pkgutil, sys
        import landcoverunet.backend, landcoverunet.models
        for package in (landcoverunet.backend, landcoverunet.models):
            for info in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f'{package.__name__}.{info.name}')
        print('QGIS', [m for m in sys.modules if m == 'qgis' or m.startswith('qgis.')])
    """)
    assert "QGIS []" in done.stdout, done.stdout + done.stderr


def test_menu_entries_and_installation_check(qgis_iface, qgis_processing):
    import landcoverunet
    from landcoverunet.backend.core.installation import installation_report

    instance = landcoverunet.classFactory(qgis_iface)
    instance.initGui()
    try:
        names = [a.objectName() for a in instance.actions]
        assert names == ["landcoverunet_buildmasks", "landcoverunet_trainunet",
                         "landcoverunet_suggestlabels",
                         "landcoverunet_classifyraster", "landcoverunet_classifybatch",
                         "landcoverunet_exportmodel", "landcoverunet_accuracysample",
                         "landcoverunet_assessaccuracy",
                         "landcoverunet_keras_backend", "landcoverunet_about"]
        assert QgsApplication.processingRegistry().providerById("landcoverunet") is not None
    finally:
        instance.unload()
    assert instance.actions == [] and instance.provider is None
    report = dict(installation_report("3.22"))
    assert report["GDAL"].startswith("3.") and report["TensorFlow"].startswith("2.17")
    # the suite runs under TensorFlow, and its backend tests under JAX too (scripts/test.sh)
    in_use = os.environ.get("KERAS_BACKEND", "tensorflow")
    label, other = {"tensorflow": ("TensorFlow", "JAX"), "jax": ("JAX", "TensorFlow")}[in_use]
    assert report[label].endswith(", in use; GPUs: none")   # no GPU on the test machines
    assert report["Keras backend"].startswith(f"{in_use} (from ")
    assert report["Keras backend"].endswith("; plugin setting: auto")
    assert report["JAX"].startswith("0.4.") and "in use" not in report[other]
    assert report["PyTorch"] == "not installed" or "GPUs: " in report["PyTorch"]
    assert report["GPU"]
    assert report["Keras"].startswith("3.") and "older than" not in report["Keras"]
    from landcoverunet.backend.core.deps import keras_is_safe
    assert keras_is_safe("3.14.0") and keras_is_safe("3.15.1") and keras_is_safe("4.0")
    assert not keras_is_safe("3.8.0") and not keras_is_safe("3.13.2rc1")


def test_installation_check_under_jax_names_it_in_use(tmp_path):
    done = _fresh(f"""
        import os
        os.environ['KERAS_HOME'] = {str(tmp_path)!r}
        os.environ['KERAS_BACKEND'] = 'jax'
        from landcoverunet.backend.core.installation import installation_report
        for item, finding in installation_report(setting='torch'):
            print(item + ': ' + finding)
    """)
    report = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert report["Keras backend"] == ("jax (from the KERAS_BACKEND environment variable); "
                                       "plugin setting: torch"), done.stdout + done.stderr
    assert report["Keras"].startswith("3.") and report["Keras"].endswith("(backend: jax)")
    assert report["JAX"].startswith("0.4.") and report["JAX"].endswith(", in use; GPUs: none")
    assert report["TensorFlow"].startswith("2.17") and "in use" not in report["TensorFlow"]
    assert report["GPU"].startswith("none usable")


def test_algorithm_reference_page_is_up_to_date(plugin):
    import importlib.util

    from support import ROOT

    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "scripts" / "make_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "algorithms.md").read_text() == module.render(), \
        "docs/algorithms.md is stale: run scripts/make_docs.py"
