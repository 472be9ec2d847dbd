"""The plugin's version, read from metadata.txt (its one source), so every model file records
which plugin trained it."""
from __future__ import annotations

import configparser
import os

PLUGIN_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
"""The plugin folder (holds metadata.txt): backend/core/version.py is two folders below it."""

METADATA = os.path.join(PLUGIN_ROOT, "metadata.txt")


def read_metadata(path: str = METADATA) -> configparser.ConfigParser:
    """metadata.txt parsed the way QGIS and its Plugin Manager parse it (a ``ConfigParser`` with
    its default interpolation, read as UTF-8), so a file that QGIS cannot read fails here too."""
    parser = configparser.ConfigParser()
    with open(path, encoding="utf-8") as handle:
        parser.read_file(handle)
    return parser


def plugin_version() -> str:
    """The ``version`` in the plugin's metadata.txt ("unknown" only when it cannot be read)."""
    try:
        return read_metadata().get("general", "version")
    except (OSError, configparser.Error):
        return "unknown"


def repository_url() -> str:
    """The plugin's public repository (``repository`` in metadata.txt), where its documentation
    lives."""
    try:
        return read_metadata().get("general", "repository").rstrip("/")
    except (OSError, configparser.Error):
        return ""
