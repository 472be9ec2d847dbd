"""Processing algorithm ``landcoverunet:assessaccuracy`` (placeholder until its issue lands)."""
from .base import LandCoverAlgorithm


class AssessAccuracyAlgorithm(LandCoverAlgorithm):
    """Placeholder."""

    NAME = "assessaccuracy"
    DISPLAY_NAME = "Assess accuracy"

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        pass
