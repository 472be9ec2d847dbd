"""Shared fixtures: the plugin loaded into real (headless) QGIS, the NC scene, qgis_process.

Run the suite with ``bash scripts/test.sh``: it sets up the environment (see scripts/env.sh) in
which the plugin is importable as ``landcoverunet`` and qgis_process finds it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from support import NC, qgis_process, qgis_process_json

pytest_plugins = ["fixtures_training", "fixtures_classify"]


def pytest_configure(config) -> None:
    if "landcoverunet" not in sys.modules:
        try:
            import landcoverunet  # noqa: F401
        except ImportError:
            raise pytest.UsageError(
                "The plugin is not importable as 'landcoverunet': run the tests with "
                "'bash scripts/test.sh' (it sets up build/plugins and PYTHONPATH).") from None


@pytest.fixture(scope="session")
def plugin(qgis_iface, qgis_processing):
    """The plugin, loaded the way QGIS loads it, with its provider registered."""
    import landcoverunet

    instance = landcoverunet.classFactory(qgis_iface)
    instance.initProcessing()
    yield instance
    instance.unload()


@pytest.fixture(scope="session")
def nc_stack(tmp_path_factory) -> Path:
    """The six NC Landsat band files stacked into one VRT (EPSG:32119 grid)."""
    from osgeo import gdal

    bands = [str(NC / f"lsat7_2000_{b}.tif") for b in (10, 20, 30, 40, 50, 70)]
    path = tmp_path_factory.mktemp("nc") / "landsat_stack.vrt"
    gdal.BuildVRT(str(path), bands, separate=True).FlushCache()
    return path


@pytest.fixture(scope="session")
def qgis_process_ready():
    """Enables the plugin for qgis_process once per session."""
    done = qgis_process("plugins", "enable", "landcoverunet")
    assert done.returncode == 0 or "already enabled" in done.stdout, done.stdout + done.stderr
    return qgis_process_json
