"""The check of optional packages (backend/core/dependencies.py): found without importing them,
one clear message at Run with this system's command, and the README section it points at.

Packages are hidden for real: a Python started with test/hide_modules first in PYTHONPATH
behaves as if they were not installed (find_spec gives None, import fails)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from support import ROOT

HIDE = str(ROOT / "test" / "hide_modules")


def hidden_python(code: str, hide: str, **environ: str) -> str:
    """Runs ``code`` in a fresh Python where the modules ``hide`` are not installed."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", "LANDCOVERUNET_KERAS_BACKEND_SET")}
    env.update(LANDCOVERUNET_HIDE_MODULES=hide, **environ)
    env["PYTHONPATH"] = HIDE + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_missing_packages_are_found_without_importing_them(tmp_path):
    out = hidden_python("""
        import sys
        from landcoverunet.backend.core.dependencies import missing
        print([d.label for d in missing()])
        print([d.needed_by for d in missing()])
        print(sorted(m for m in ("keras", "tensorflow", "sklearn", "dask", "onnx")
                     if m in sys.modules))
    """, "tensorflow,sklearn", KERAS_HOME=str(tmp_path), KERAS_BACKEND="tensorflow")
    labels, needed_by, imported = out.splitlines()
    assert labels == "['TensorFlow (the Keras backend in use)', 'scikit-learn']"
    assert needed_by == ("[('trainunet', 'suggestlabels', 'classifyraster', 'classifybatch', "
                         "'exportmodel'), "
                         "('trainunet',)]")
    assert imported == "[]", "the check imports nothing heavy"


def test_nothing_is_missing_in_the_venv():
    from landcoverunet.backend.core.dependencies import (dependencies, installed_version,
                                                         missing)

    assert missing("tensorflow") == []
    assert missing("no_such_backend")[0].label == "no_such_backend (the Keras backend in use)"
    assert [installed_version(d) for d in dependencies("tensorflow")][2:] == \
        ["scikit-learn 1.5.2", "onnx 1.17.0, onnxruntime 1.20.1",
         "dask 2026.8.0, distributed 2026.8.0"]


def test_run_without_tensorflow_gives_one_message_with_this_systems_command(tmp_path):
    out = hidden_python("""
        from landcoverunet.backend.core.deps import require_keras
        from landcoverunet.backend.core.errors import UserError
        try:
            require_keras()
        except UserError as error:
            print(error)
    """, "tensorflow", KERAS_HOME=str(tmp_path), KERAS_BACKEND="tensorflow")
    assert out.startswith("TensorFlow (the Keras backend in use) is not installed in the Python "
                          "that QGIS runs")
    commands = [line for line in out.splitlines() if "pip" in line]
    assert len(commands) == 1, "one command, not a wall of them"
    python = commands[0].split()[0]
    assert commands[0].split()[1:] == ["-m", "pip", "install", "tensorflow-cpu==2.17.1"]
    assert (ROOT / ".venv" / "pyvenv.cfg").exists() and \
        os.path.samefile(python, ROOT / ".venv" / "bin" / "python"), "the venv QGIS reads"
    section = re.search(r"the README's '([^']+)' section \((\S+)#([a-z-]+)\)", out)
    assert section, out
    headings = re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(), re.M)
    assert section.group(1) in headings
    assert section.group(3) == section.group(1).lower().replace(" ", "-")


def test_the_command_suits_each_system():
    from landcoverunet.backend.core.dependencies import (KERAS, SKLEARN, backend_dependency,
                                                         install_command, where_to_run)

    both = [KERAS, backend_dependency("tensorflow")]
    assert install_command(both, "win32") == \
        'python -m pip install "keras>=3.14" tensorflow-cpu==2.17.1'
    assert "OSGeo4W Shell" in where_to_run("win32")
    assert install_command(both, "darwin") == (
        "/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install --user "
        "'keras>=3.14' tensorflow==2.17.1")
    debian = install_command([SKLEARN], "linux", ["/usr/lib/python3/dist-packages"])
    assert debian.startswith("python3 -m venv --system-site-packages ~/.qgis-tf && "
                             "~/.qgis-tf/bin/pip install scikit-learn==1.5.2 'numpy<2'")
    assert debian.endswith('/landcoverunet-tensorflow.pth"')


def test_pins_agree_with_requirements():
    from landcoverunet.backend.core.dependencies import BACKEND_PIP, dependencies

    pinned = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text()
                  .splitlines() if "==" in line and not line.startswith("#"))
    wanted = [r for d in dependencies("tensorflow") for r in d.pip] + list(BACKEND_PIP["jax"])
    for requirement in wanted:
        if "==" in requirement:
            name, version = requirement.split("==")
            assert pinned[name.split("[")[0]] == version, requirement


def test_backend_dialog_never_promises_a_missing_backend(tmp_path):
    code = """
        from landcoverunet.gui.keras_backend_dialog import in_use_text, outcome_text
        print(in_use_text())
        print(outcome_text("tensorflow", None))
    """
    without_tf = hidden_python(code, "tensorflow", KERAS_HOME=str(tmp_path)).splitlines()
    assert without_tf[0].startswith("Keras is not loaded yet; it would run on TensorFlow, which "
                                    "is not installed")
    assert without_tf[1].startswith("Saved: Keras would run on TensorFlow, but TensorFlow is "
                                    "not installed.")
    assert "will run on" not in " ".join(without_tf)
    without_keras = hidden_python(code, "keras,tensorflow", KERAS_HOME=str(tmp_path))
    assert without_keras.startswith("Keras is not installed, so nothing can run yet")
    assert "but Keras and TensorFlow are not installed" in without_keras
    with_tf = hidden_python(code, "torch", KERAS_HOME=str(tmp_path)).splitlines()
    assert with_tf == ["Keras is not loaded yet; it will run on TensorFlow.",
                       "Saved: Keras will run on TensorFlow."]
