"""Paths and helpers the tests share (imported by conftest.py and the test modules)."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LANDCOVERUNET_SHARED_DATA", ROOT.parent / "shared" / "data"))
NC = SHARED_DATA / "nc_landsat7_landcover"
SOLARIS = SHARED_DATA / "solaris_buildings"


# qgis_process gets its own QGIS profile, so the tests never touch (or depend on) the user's.
QGIS_PROFILE = tempfile.mkdtemp(prefix="landcoverunet-qgis-profile-")


def qgis_process(*args: str, timeout: int = 900,
                 env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs qgis_process.bin (not Debian's broken wrapper) in the test environment.

    Args:
        args: qgis_process's arguments.
        timeout: seconds before the run is killed.
        env: variables to set on top of the test environment.
    """
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_OPTS": "",
           "QGIS_CUSTOM_CONFIG_PATH": QGIS_PROFILE, **(env or {})}
    return subprocess.run(["qgis_process.bin", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def qgis_process_json(algorithm: str, parameters: dict, timeout: int = 900) -> dict:
    """Runs one algorithm through ``qgis_process.bin --json run`` and returns its JSON answer.

    Raises:
        AssertionError: with qgis_process's output when it fails.
    """
    args = ["--json", "run", algorithm, "--"]
    args += [f"{key}={value}" for key, value in parameters.items()]
    done = qgis_process(*args, timeout=timeout)
    assert done.returncode == 0, f"qgis_process failed:\n{done.stdout}\n{done.stderr}"
    start = done.stdout.find("{")
    return json.loads(done.stdout[start:])

