"""The "Land Cover U-Net" Processing provider (id ``landcoverunet``)."""
from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .accuracy_sample import AccuracySampleAlgorithm
from .assess_accuracy import AssessAccuracyAlgorithm
from ..gui.keras_backend_setting import apply_saved_setting
from .build_masks import BuildMasksAlgorithm
from .classify_batch import ClassifyBatchAlgorithm
from .classify_raster import ClassifyRasterAlgorithm
from .export_model import ExportModelAlgorithm
from ..gui.icon import ICON
from .suggest_labels import SuggestLabelsAlgorithm
from .train_unet import TrainUNetAlgorithm


class LandCoverUNetProvider(QgsProcessingProvider):
    """Holds the plugin's algorithms in the Processing toolbox."""

    def id(self) -> str:
        return "landcoverunet"

    def name(self) -> str:
        return "Land Cover U-Net"   # as metadata.txt and the menu spell it

    def longName(self) -> str:  # noqa: N802
        return "Land Cover U-Net: train and apply U-Nets from digitised polygons"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def svgIconPath(self) -> str:  # noqa: N802
        return ICON

    def load(self) -> bool:
        """Applies the Keras backend setting before any algorithm can import Keras."""
        apply_saved_setting()
        return super().load()

    def loadAlgorithms(self) -> None:  # noqa: N802
        for algorithm in (BuildMasksAlgorithm(), TrainUNetAlgorithm(), SuggestLabelsAlgorithm(),
                          ClassifyRasterAlgorithm(), ClassifyBatchAlgorithm(),
                          AccuracySampleAlgorithm(), AssessAccuracyAlgorithm(),
                          ExportModelAlgorithm()):
            self.addAlgorithm(algorithm)

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:  # noqa: N802
        """GeoPackage, which can carry an accuracy sample's design with its points."""
        return "gpkg"
