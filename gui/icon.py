"""The plugin's icons: one for the provider and the menu, one per algorithm (no other import
needed)."""
from __future__ import annotations

import os

RESOURCES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources")
ICON = os.path.join(RESOURCES, "icon.svg")


def algorithm_icon(name: str) -> str:
    """The icon of the algorithm named ``name`` (``resources/icons/<name>.svg``), so that the
    eight are told apart in the toolbox and the modeler; the plugin's icon when it has none."""
    path = os.path.join(RESOURCES, "icons", f"{name}.svg")
    return path if os.path.exists(path) else ICON
