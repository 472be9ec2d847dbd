"""The plugin's icon, for the provider, its algorithms and the menu (no other import needed)."""
from __future__ import annotations

import os

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.svg")
