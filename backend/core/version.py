"""The plugin's version, read from metadata.txt (its one source)."""
from __future__ import annotations

import configparser
import os


def plugin_version() -> str:
    """The ``version`` in the plugin's metadata.txt."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(os.path.dirname(os.path.dirname(__file__)), "metadata.txt"))
    return parser.get("general", "version", fallback="unknown")
