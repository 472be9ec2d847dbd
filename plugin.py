"""The plugin object: registers the Processing provider (and, on the desktop, a menu)."""
from __future__ import annotations

from qgis.core import QgsApplication


class LandCoverUNetPlugin:
    """Adds the Land cover U-Net provider to Processing; removes it on unload."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None

    def initProcessing(self) -> None:  # noqa: N802 (QGIS's name)
        from .algorithms.provider import LandCoverUNetProvider

        self.provider = LandCoverUNetProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
