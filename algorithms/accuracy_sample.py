"""Processing algorithm ``landcoverunet:accuracysample``: a stratified random sample of a map
for an accuracy assessment with area estimates (Olofsson et al. 2014)."""
from __future__ import annotations

import os

from qgis.core import (QgsProcessing, QgsProcessingOutputNumber, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterVectorDestination)

from ..backend.assess.design import (EXPECTED_UA_COMMON, EXPECTED_UA_RARE, MINIMUM_PER_CLASS,
                                     RARE_SHARE, TARGET_SE)
from ..backend.assess.sample_points import FIELD_CLASS, FIELD_REFERENCE, draw_sample
from ..backend.core.errors import UserError
from ..backend.core.output_checks import GPKG_EXTENSIONS
from .base import FeedbackProgress, LandCoverAlgorithm
from ..gui.styling import SavedStyleLoader, write_sample_style


class AccuracySampleAlgorithm(LandCoverAlgorithm):
    """Points to label for an accuracy assessment: stratified random, by map class."""

    INPUT = "INPUT"
    SAMPLE_SIZE = "SAMPLE_SIZE"
    TARGET_SE = "TARGET_SE"
    EXPECTED_UA_RARE = "EXPECTED_UA_RARE"
    EXPECTED_UA_COMMON = "EXPECTED_UA_COMMON"
    MIN_PER_CLASS = "MIN_PER_CLASS"
    SEED = "SEED"
    REFERENCE_RASTER = "REFERENCE_RASTER"
    OUTPUT = "OUTPUT"
    POINTS = "POINTS"
    FILLED = "FILLED"
    SEED_USED = "SEED_USED"

    NAME = "accuracysample"
    DISPLAY_NAME = "Accuracy sample"
    GROUP = "accuracy"
    ADVANCED = (TARGET_SE, EXPECTED_UA_RARE, EXPECTED_UA_COMMON)
    HELP = (
        "Draws the points an analyst labels to assess a classified map and estimate the area "
        "of its classes: a stratified random sample with the map's classes as strata, as "
        "Olofsson et al. (2014, Remote Sensing of Environment 148) recommend.\n\n"
        "The total sample size is given, or computed from a target standard error of overall "
        "accuracy and the user's accuracy expected of each class (their eq. 13; a class under "
        f"{RARE_SHARE:.0%} of the map counts as rare). It is spread over the classes in "
        "proportion to their area, but every class gets at least the minimum (fewer only where "
        "it has fewer pixels), so rare classes are assessed too. The same map, sizes and seed "
        "give the same points.\n\n"
        "The result is a GeoPackage of points at pixel centres, with the map's code and class "
        "name and an empty 'reference' field: fill it with the class you see (a name or a code "
        "of the map), then run Assess accuracy with this layer as reference and 'reference' as "
        "class field. The design (the map, its pixels and the sample size per class, the seed) "
        "is stored in the GeoPackage, so Assess accuracy finds the strata weights and adds "
        "area-adjusted accuracies and areas with 95 % confidence intervals. A reference raster "
        "(a better map) can fill the 'reference' field at once.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, "Classified raster (from Classify raster or any other tool)"))
        self.addParameter(QgsProcessingParameterNumber(
            self.SAMPLE_SIZE, "Total sample size (0: from the target standard error)",
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_PER_CLASS, "Minimum points per class", QgsProcessingParameterNumber.Integer,
            defaultValue=MINIMUM_PER_CLASS, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, "Random seed (empty: a new one, written to the log)",
            QgsProcessingParameterNumber.Integer, optional=True, minValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE_RASTER, "Reference raster to fill the 'reference' field",
            optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.TARGET_SE, "Target standard error of overall accuracy",
            QgsProcessingParameterNumber.Double, defaultValue=TARGET_SE, minValue=0.001,
            maxValue=0.5))
        self.addParameter(QgsProcessingParameterNumber(
            self.EXPECTED_UA_RARE, "Expected user's accuracy of rare classes (under "
            f"{RARE_SHARE:.0%} of the map)", QgsProcessingParameterNumber.Double,
            defaultValue=EXPECTED_UA_RARE, minValue=0.01, maxValue=0.99))
        self.addParameter(QgsProcessingParameterNumber(
            self.EXPECTED_UA_COMMON, "Expected user's accuracy of common classes",
            QgsProcessingParameterNumber.Double, defaultValue=EXPECTED_UA_COMMON,
            minValue=0.01, maxValue=0.99))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Accuracy sample (GeoPackage points)", QgsProcessing.TypeVectorPoint))
        self.addOutput(QgsProcessingOutputNumber(self.POINTS, "Points drawn"))
        self.addOutput(QgsProcessingOutputNumber(self.FILLED, "Points whose reference was "
                                                              "filled from the raster"))
        self.addOutput(QgsProcessingOutputNumber(self.SEED_USED, "Random seed used"))
        self.set_parameter_help(PARAMETER_HELP)

    def execute(self, parameters, context, feedback) -> dict:
        classified = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if classified is None:
            raise UserError("Choose the classified raster to sample.")
        reference = self.parameterAsRasterLayer(parameters, self.REFERENCE_RASTER, context)
        for layer in (classified, reference):
            if layer is not None and layer.providerType() != "gdal":
                raise UserError(f"'{layer.name()}' is not a raster file GDAL can read.")
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        output = output.split("|")[0]
        if not output.lower().endswith(".gpkg"):
            raise UserError(f"The sample is written as a GeoPackage, which also stores its "
                            f"sampling design: give '{output}' the extension .gpkg.")
        self.check_files(parameters, context, [
            self.output(self.OUTPUT, output, "a GeoPackage", GPKG_EXTENSIONS)])
        size = self.parameterAsInt(parameters, self.SAMPLE_SIZE, context)
        seed = None
        if parameters.get(self.SEED) not in (None, ""):
            seed = self.parameterAsInt(parameters, self.SEED, context)
        result = draw_sample(
            classified.source(), output, total=size or None,
            target_se=self.parameterAsDouble(parameters, self.TARGET_SE, context),
            rare=self.parameterAsDouble(parameters, self.EXPECTED_UA_RARE, context),
            common=self.parameterAsDouble(parameters, self.EXPECTED_UA_COMMON, context),
            minimum=self.parameterAsInt(parameters, self.MIN_PER_CLASS, context), seed=seed,
            reference_raster=reference.source() if reference is not None else None,
            progress=FeedbackProgress(feedback))
        if not write_sample_style(output, result.layer_name, result.classes, FIELD_CLASS,
                                  FIELD_REFERENCE):
            feedback.pushWarning("The sample's style (colours by map class, a drop-down of "
                                 "class names for 'reference') could not be saved in it.")
        base = os.path.splitext(os.path.basename(classified.source()))[0]
        SavedStyleLoader.attach(context, output, f"{base} accuracy sample")
        return {self.OUTPUT: output, self.POINTS: result.size, self.FILLED: result.filled,
                self.SEED_USED: result.design.seed}


PARAMETER_HELP = {
    AccuracySampleAlgorithm.INPUT: "The map to assess; its classes are the strata. Any class "
                                   "raster: classes from its class map, category names, "
                                   "attribute table, a .qml beside it, or its integer values.",
    AccuracySampleAlgorithm.SAMPLE_SIZE: "The number of points in all. 0: computed from the "
                                         "target standard error and the expected user's "
                                         "accuracies (Olofsson et al. 2014, eq. 13).",
    AccuracySampleAlgorithm.MIN_PER_CLASS: "Every class gets at least this many points (fewer "
                                           "only where it has fewer pixels); the rest is spread "
                                           "in proportion to the classes' areas. 50 is the usual "
                                           "advice; the total grows when the minimums need it.",
    AccuracySampleAlgorithm.SEED: "The same seed, map and sizes give the same points. Empty: a "
                                  "new seed, written to the log and the stored design.",
    AccuracySampleAlgorithm.REFERENCE_RASTER: "Optional: a reference class raster (a better map) "
                                              "whose class at each point fills the 'reference' "
                                              "field; points where it has no class stay empty.",
    AccuracySampleAlgorithm.TARGET_SE: "The standard error of overall accuracy the sample "
                                       "should reach (0.01 = ± about 2 % at 95 %).",
    AccuracySampleAlgorithm.EXPECTED_UA_RARE: "The user's accuracy you expect of classes that "
                                              f"cover under {RARE_SHARE:.0%} of the map.",
    AccuracySampleAlgorithm.EXPECTED_UA_COMMON: "The user's accuracy you expect of the other "
                                                "classes.",
    AccuracySampleAlgorithm.OUTPUT: "A GeoPackage of points at pixel centres: map_code, "
                                    "map_class and an empty 'reference' field to fill (a "
                                    "drop-down of the class names in the attribute form; the "
                                    "points are coloured by map class); the sampling design "
                                    "is stored with the layer.",
}
