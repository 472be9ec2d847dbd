"""Which optional packages each algorithm needs, which are missing, and the one command that
installs them on this system.

Checked when the plugin loads, so it must stay cheap: ``importlib.util.find_spec`` locates a
package without importing it (TensorFlow alone takes seconds to import). The same table gives the
message of an algorithm that finds a package missing at Run, the "Check installation" page and
the About rows, so the three never disagree. No QGIS here: the Qt side shows what this returns.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass

from .keras_backend import LABELS, backend_in_use
from .version import repository_url

README_SECTION = "Dependencies"
"""The README heading that explains every optional package (its anchor is derived from it)."""

MASKS, TRAIN, SUGGEST, CLASSIFY, BATCH, SAMPLE, ASSESS, EXPORT = (
    "buildmasks", "trainunet", "suggestlabels", "classifyraster", "classifybatch",
    "accuracysample", "assessaccuracy", "exportmodel")
"""Algorithm names (ids without the provider): the Qt side shows their display names."""


@dataclass(frozen=True)
class Dependency:
    """An optional package (or two installed together).

    Attributes:
        label: its name for people ("TensorFlow").
        modules: the top-level modules that must be importable.
        pip: what pip installs (the versions this repository tests, as requirements.txt pins).
        needed_by: the algorithms that need it.
        purpose: what it does for the plugin, a sentence without its full stop.
    """

    label: str
    modules: tuple[str, ...]
    pip: tuple[str, ...]
    needed_by: tuple[str, ...]
    purpose: str


KERAS_USERS = (TRAIN, SUGGEST, CLASSIFY, BATCH, EXPORT)
KERAS = Dependency("Keras 3.14 or later", ("keras",), ("keras>=3.14",), KERAS_USERS,
                   "Keras runs the U-Net")
BACKEND_PIP = {"tensorflow": ("tensorflow-cpu==2.17.1",), "jax": ("jax[cpu]==0.4.38",),
               "torch": ("torch",)}
"""Each Keras backend's pip requirement (macOS has no tensorflow-cpu: see :func:`pip_for`)."""
SKLEARN = Dependency("scikit-learn", ("sklearn",), ("scikit-learn==1.5.2",), (TRAIN,),
                     "scikit-learn's random forest teaches the U-Net")
ONNX = Dependency("onnx and onnxruntime", ("onnx", "onnxruntime"),
                  ("onnx==1.17.0", "onnxruntime==1.20.1"), (EXPORT, CLASSIFY, BATCH),
                  "onnx exports models to ONNX, and onnxruntime classifies with .onnx models")
DASK = Dependency("dask and distributed", ("dask", "distributed"),
                  ("dask==2026.8.0", "distributed==2026.8.0"), (BATCH,),
                  "dask.distributed runs batch classification on a cluster")

ASIDE_KERAS = (SKLEARN, ONNX, DASK)
"""The optional packages other than Keras and its backend."""


def backend_dependency(backend: str) -> Dependency:
    """The Keras backend's package as a dependency (an unknown name is its own package)."""
    return Dependency(f"{LABELS.get(backend, backend)} (the Keras backend in use)", (backend,),
                      BACKEND_PIP.get(backend, (backend,)), KERAS_USERS,
                      f"{LABELS.get(backend, backend)} computes Keras's network")


def dependencies(backend: str | None = None) -> list[Dependency]:
    """Every optional package, with the Keras backend in use (or ``backend``)."""
    return [KERAS, backend_dependency(backend or backend_in_use()), *ASIDE_KERAS]


def importable(module: str) -> bool:
    """Whether a top-level module can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken package, or one removed from sys.modules
        return False


def is_installed(dependency: Dependency) -> bool:
    """Whether all of a dependency's modules can be imported."""
    return all(importable(module) for module in dependency.modules)


def missing(backend: str | None = None) -> list[Dependency]:
    """The optional packages that cannot be imported, cheaply (nothing is imported)."""
    return [d for d in dependencies(backend) if not is_installed(d)]


def installed_version(dependency: Dependency) -> str:
    """The installed versions of a dependency's packages ("keras 3.15.1"), read from their
    metadata without importing them; "not installed" when one is missing."""
    if not is_installed(dependency):
        return "not installed"
    found = []
    for requirement in dependency.pip:
        name = requirement.split("=")[0].split(">")[0].split("[")[0]
        for distribution in (name, name.replace("-cpu", "")):
            try:
                found.append(f"{distribution} {importlib.metadata.version(distribution)}")
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return ", ".join(found) or "installed"


def pip_for(dependencies_: list[Dependency], platform: str = sys.platform) -> list[str]:
    """The pip requirements of some dependencies on a platform (TensorFlow's CPU build is not
    published for macOS)."""
    requirements = []
    for dependency in dependencies_:
        for requirement in dependency.pip:
            if platform == "darwin":
                requirement = requirement.replace("tensorflow-cpu", "tensorflow")
            if requirement not in requirements:
                requirements.append(requirement)
    return requirements


def venv_of(paths: list[str]) -> str | None:
    """The virtual environment whose site-packages QGIS's Python reads (the set-up scripts add
    one to the path), or None."""
    for path in paths:
        folder = os.path.abspath(path or ".")
        for _ in range(4):   # <venv>/lib/python3.X/site-packages
            if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
                return folder
            folder = os.path.dirname(folder)
    return None


def install_command(dependencies_: list[Dependency], platform: str = sys.platform,
                    paths: list[str] | None = None) -> str:
    """The one command that installs ``dependencies_`` into the Python that QGIS runs here.

    Windows: QGIS's own Python, in the OSGeo4W Shell. macOS: the python3 inside QGIS.app.
    Linux: pip of the venv QGIS already reads, else a new venv made visible to the system Python
    by a .pth file, as the README's set-up does (numpy held below 2 for Debian's GDAL).
    """
    requirements = " ".join(_quoted(r, platform) for r in pip_for(dependencies_, platform))
    if platform.startswith("win"):
        return f"python -m pip install {requirements}"
    if platform == "darwin":
        return ("/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install --user "
                + requirements)
    venv = venv_of(sys.path if paths is None else paths)
    if venv:
        return f"{os.path.join(venv, 'bin', 'python')} -m pip install {requirements}"
    python = f"python3.{sys.version_info.minor}"
    return (f"python3 -m venv --system-site-packages ~/.qgis-tf && ~/.qgis-tf/bin/pip install "
            f"{requirements} 'numpy<2' && mkdir -p \"$(python3 -m site --user-site)\" && "
            f"echo ~/.qgis-tf/lib/{python}/site-packages > "
            "\"$(python3 -m site --user-site)/landcoverunet-tensorflow.pth\"")


def where_to_run(platform: str = sys.platform) -> str:
    """Where the command of :func:`install_command` is typed."""
    if platform.startswith("win"):
        return ("the OSGeo4W Shell (Start menu; run it as administrator for an all-users "
                "install of QGIS)")
    return "a terminal"


def readme_link() -> str:
    """The README section on dependencies, as a link (its GitHub anchor)."""
    anchor = README_SECTION.lower().replace(" ", "-")
    return f"{repository_url()}#{anchor}" if repository_url() else f"README, '{README_SECTION}'"


def missing_message(absent: list[Dependency], platform: str = sys.platform) -> str:
    """The one message an algorithm gives at Run when the packages ``absent`` are missing: what
    they are for, the command for this system, and where the README says more."""
    labels = " and ".join(d.label for d in absent)
    verb = "is" if len(absent) == 1 and " and " not in absent[0].label else "are"
    purposes = "; ".join(d.purpose for d in absent)
    return (f"{labels} {verb} not installed in the Python that QGIS runs ({purposes}). "
            f"Install from {where_to_run(platform)} with:\n"
            f"  {install_command(absent, platform)}\n"
            f"then restart QGIS. More: the README's '{README_SECTION}' section "
            f"({readme_link()}).")


def _quoted(requirement: str, platform: str) -> str:
    """A requirement as a shell argument ("keras>=3.14" would redirect output unquoted)."""
    if not any(c in requirement for c in "<>[]"):
        return requirement
    return f'"{requirement}"' if platform.startswith("win") else f"'{requirement}'"
