"""Makes Python behave as if the packages named in LANDCOVERUNET_HIDE_MODULES (comma separated,
e.g. "tensorflow") were not installed: ``importlib.util.find_spec`` returns None and ``import``
raises ModuleNotFoundError, as on a QGIS where nobody installed them.

Python imports ``sitecustomize`` at start-up from its path, so putting this folder first in
PYTHONPATH applies it to any Python, QGIS's embedded one included. Every finder on
``sys.meta_path`` is wrapped so that none finds a hidden package (a finder put first and raising
would make ``find_spec`` raise, which a missing package never does).
"""
import os
import sys

HIDDEN = {name for name in os.environ.get("LANDCOVERUNET_HIDE_MODULES", "").split(",") if name}


class HidingFinder:
    """A meta path finder that finds nothing hidden and defers everything else."""

    def __init__(self, finder) -> None:
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find is not None else None

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)


if HIDDEN:
    sys.meta_path[:] = [HidingFinder(finder) for finder in sys.meta_path]
