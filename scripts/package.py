"""Builds the plugin ZIP that QGIS's "Install from ZIP" accepts: only the plugin's own files.

    .venv/bin/python scripts/package.py     ->  build/landcoverunet-<version>.zip
"""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = "landcoverunet"
INCLUDED = ("metadata.txt", "__init__.py", "plugin.py", "LICENSE", "README.md", "algorithms/",
            "backend/", "gui/", "models/", "resources/", "docs/images/")


def plugin_files() -> list[str]:
    """Tracked files (and new, not ignored ones) that belong in the plugin."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return sorted(path for path in listed if path.startswith(INCLUDED)
                  and os.path.isfile(os.path.join(ROOT, path))
                  and "__pycache__" not in path and not path.endswith(".pyc"))


def build(target_folder: str | None = None) -> str:
    """Writes the ZIP and returns its path."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "metadata.txt"))
    version = parser.get("general", "version")
    target_folder = target_folder or os.path.join(ROOT, "build")
    os.makedirs(target_folder, exist_ok=True)
    path = os.path.join(target_folder, f"{FOLDER}-{version}.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in plugin_files():
            archive.write(os.path.join(ROOT, name), f"{FOLDER}/{name}")
    return path


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else None))
