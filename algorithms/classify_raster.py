"""Processing algorithm ``landcoverunet:classifyraster``: image + trained model -> class raster."""
from __future__ import annotations

import os

from qgis.core import (QgsProcessing, QgsProcessingOutputNumber, QgsProcessingParameterEnum,
                       QgsProcessingParameterExtent, QgsProcessingParameterFile,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterVectorDestination)

from ..backend.core.choices import TTA_DIHEDRAL, TTA_FLIPS, TTA_MODES, TTA_NONE
from ..backend.classify.classify_raster import DEFAULT_BATCH_SIZE, classify_raster
from ..backend.core.output_checks import GPKG_EXTENSIONS
from ..backend.core.raster_io import GTIFF_EXTENSIONS
from .base import FeedbackProgress, LandCoverAlgorithm
from ..gui.styling import (ClassCategoriesStyler, ClassPaletteStyler, write_categories_style,
                      write_class_style)

MAX_MAPPING_UNIT = 1_000_000.0
"""Largest minimum mapping unit the dialog accepts (hectares: 10,000 km²)."""
TTA_LABELS = {TTA_NONE: "None", TTA_FLIPS: "4 flips (4x slower)",
              TTA_DIHEDRAL: "All 8 flips and rotations (8x slower)"}


class ClassifyRasterAlgorithm(LandCoverAlgorithm):
    """Applies a model from 'Train U-Net' to an image of any size, without seams."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    TTA = "TTA"
    EXTENT = "EXTENT"
    OUTPUT = "OUTPUT"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
    MIN_MAPPING_UNIT = "MIN_MAPPING_UNIT"
    OUTPUT_VECTOR = "OUTPUT_VECTOR"
    CLASS_COUNT = "CLASS_COUNT"

    NAME = "classifyraster"
    DISPLAY_NAME = "Classify raster"
    GROUP = "mapping"
    ADVANCED = (OVERLAP, BATCH_SIZE)
    HELP = (
        "Classifies an image of any size with a model trained by 'Train U-Net'. Bands, "
        "normalisation, tile size, classes, names and colours all come from the model file; the "
        "image must have the same bands as the training image (a different band count is an "
        "error, a different pixel size or CRS a warning).\n\n"
        "The image is classified in overlapping windows whose probabilities are blended with a "
        "smooth weight, so tile borders leave no seams; it is read and written strip by strip, "
        "so memory stays small on any image size.\n\n"
        "The result is a uint8 GeoTIFF (0 = nodata, where the image has no data) with the "
        "classes' colour table, names and overviews. Optionally the confidence (probability of "
        "the chosen class) and one probability band per class.\n\n"
        "A minimum mapping unit (hectares) merges smaller patches (pixels of one class joined by "
        "an edge) into their largest neighbour, with GDAL's sieve filter on the whole map. The "
        "map can also be written as polygons (GeoPackage: class_id, class_name, area_ha), "
        "loaded with the class colours.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Image to classify"))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Trained model (.keras from 'Train U-Net', or .onnx from 'Export model')",
            fileFilter="Models (*.keras *.onnx);;All files (*)"))
        self.addParameter(QgsProcessingParameterNumber(
            self.OVERLAP, "Overlap between windows (pixels; empty: 1/8 of the training tile)",
            QgsProcessingParameterNumber.Integer, optional=True, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH_SIZE, "Windows per batch", QgsProcessingParameterNumber.Integer,
            defaultValue=DEFAULT_BATCH_SIZE, minValue=1, maxValue=256))
        self.addParameter(QgsProcessingParameterEnum(
            self.TTA, "Test-time augmentation (averaged probabilities)",
            [TTA_LABELS[mode] for mode in TTA_MODES], defaultValue=0))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, "Classify only this extent (empty: the whole image)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_MAPPING_UNIT, "Minimum mapping unit (hectares; 0: off)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0,
            maxValue=MAX_MAPPING_UNIT))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT, "Classified raster"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFIDENCE, "Confidence (probability of the chosen class)",
            optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITIES, "Class probabilities (one band per class)",
            optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT_VECTOR, "Classes as polygons (GeoPackage)",
            QgsProcessing.TypeVectorPolygon, optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.CLASS_COUNT, "Number of classes"))
        self.set_parameter_help(PARAMETER_HELP)

    def execute(self, parameters, context, feedback) -> dict:
        image = self.image_file(parameters, self.INPUT, context, "Choose the image to classify.")
        model = self.model_file(parameters, self.MODEL, context)
        overlap = None
        if parameters.get(self.OVERLAP) not in (None, ""):
            overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        extent = None
        if parameters.get(self.EXTENT) not in (None, ""):
            rectangle = self.parameterAsExtent(parameters, self.EXTENT, context, image.crs())
            if not rectangle.isNull():
                extent = (rectangle.xMinimum(), rectangle.yMinimum(), rectangle.xMaximum(),
                          rectangle.yMaximum())
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE,
                                                 context) or None
        probabilities = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES,
                                                    context) or None
        vector = self.parameterAsOutputLayer(parameters, self.OUTPUT_VECTOR, context) or None
        if vector:
            vector = vector.split("|")[0]
        self.check_files(parameters, context, [
            self.output(name, path, "a GeoTIFF", GTIFF_EXTENSIONS)
            for name, path in ((self.OUTPUT, output), (self.OUTPUT_CONFIDENCE, confidence),
                               (self.OUTPUT_PROBABILITIES, probabilities))]
            + [self.output(self.OUTPUT_VECTOR, vector, "a GeoPackage", GPKG_EXTENSIONS)])
        result = classify_raster(
            image.source(), model, output, overlap=overlap,
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            tta=TTA_MODES[self.parameterAsEnum(parameters, self.TTA, context)],
            extent=extent, confidence_path=confidence, probabilities_path=probabilities,
            min_mapping_unit=self.parameterAsDouble(parameters, self.MIN_MAPPING_UNIT, context),
            vector_path=vector, progress=FeedbackProgress(feedback))
        base = os.path.splitext(os.path.basename(image.source()))[0]
        write_class_style(output, result.class_map)
        ClassPaletteStyler.attach(context, output, f"{base} classified")
        for path, suffix in ((confidence, "confidence"), (probabilities, "probabilities")):
            if path and context.willLoadLayerOnCompletion(path):
                context.layerToLoadOnCompletionDetails(path).name = f"{base} {suffix}"
        if vector:
            write_categories_style(vector, result.class_map)
            ClassCategoriesStyler.attach(context, vector, result.class_map, f"{base} polygons")
        return {self.OUTPUT: output, self.OUTPUT_CONFIDENCE: confidence,
                self.OUTPUT_PROBABILITIES: probabilities, self.OUTPUT_VECTOR: vector,
                self.CLASS_COUNT: len(result.class_map)}


PARAMETER_HELP = {
    ClassifyRasterAlgorithm.INPUT: "The image to classify: same bands, in the same order, as "
                                   "the image the model was trained on. Any size.",
    ClassifyRasterAlgorithm.MODEL: "A .keras file written by 'Train U-Net'. It carries the bands, "
                                   "normalisation, tile size, classes, names and colours. An "
                                   ".onnx file from 'Export model' works too, through ONNX "
                                   "Runtime (no TensorFlow needed), in windows of the size it was "
                                   "exported for.",
    ClassifyRasterAlgorithm.OVERLAP: "Pixels shared by neighbouring windows, where their "
                                     "predictions are blended. Empty: 1/8 of the training tile. "
                                     "More overlap is slower but smoother.",
    ClassifyRasterAlgorithm.BATCH_SIZE: "Windows predicted together (one window is up to 3 x 3 "
                                        "training tiles). More can be faster on a GPU but needs "
                                        "more memory.",
    ClassifyRasterAlgorithm.TTA: "Predict each window also flipped (and rotated) and average the "
                                 "probabilities: slightly better maps, 4 or 8 times slower.",
    ClassifyRasterAlgorithm.EXTENT: "Only classify the image's pixels inside this extent (the "
                                    "output then covers just that part).",
    ClassifyRasterAlgorithm.MIN_MAPPING_UNIT: "Smallest patch kept, in hectares (0 to "
                                              "1,000,000; 0: off). Patches of one class joined "
                                              "by an edge that cover less take the class of "
                                              "their largest neighbour (GDAL's sieve filter, on "
                                              "the whole map). Needs a projected CRS.",
    ClassifyRasterAlgorithm.OUTPUT_VECTOR: "Optional GeoPackage of polygons, one per patch (after "
                                           "the minimum mapping unit), with class_id, "
                                           "class_name and area_ha; loaded with the class "
                                           "colours.",
    ClassifyRasterAlgorithm.OUTPUT: "The class raster: uint8 GeoTIFF, 0 = nodata, with the "
                                    "classes' colours and names.",
    ClassifyRasterAlgorithm.OUTPUT_CONFIDENCE: "Optional float32 raster: the probability of the "
                                               "chosen class, 0 to 1 (-1 = nodata), "
                                               "calibrated: the label smoothing of training "
                                               "undone (and the temperature of a model file "
                                               "that carries one).",
    ClassifyRasterAlgorithm.OUTPUT_PROBABILITIES: "Optional float32 raster with one band per "
                                                  "class (named after it): its probability, "
                                                  "calibrated as the confidence is.",
}
