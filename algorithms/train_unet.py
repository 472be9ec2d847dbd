"""Processing algorithm ``landcoverunet:trainunet`` (placeholder until its issue lands)."""
from .base import LandCoverAlgorithm


class TrainUNetAlgorithm(LandCoverAlgorithm):
    """Placeholder."""

    NAME = "trainunet"
    DISPLAY_NAME = "Train U-Net"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        pass
