"""Processing algorithm ``landcoverunet:classifyraster`` (placeholder until its issue lands)."""
from .base import LandCoverAlgorithm


class ClassifyRasterAlgorithm(LandCoverAlgorithm):
    """Placeholder."""

    NAME = "classifyraster"
    DISPLAY_NAME = "Classify raster"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        pass
