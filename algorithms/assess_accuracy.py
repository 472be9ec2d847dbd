"""Processing algorithm ``landcoverunet:assessaccuracy``: classified raster vs reference labels."""
from __future__ import annotations

import math

from qgis.core import (QgsMapLayerType, QgsProcessing, QgsProcessingOutputNumber,
                       QgsProcessingParameterBoolean, QgsProcessingParameterEnum,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterMapLayer,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString)

from ..backend.assess.accuracy import assess_accuracy
from ..backend.assess.adjusted import DESIGN_MODES
from ..backend.assess.matching import MATCH_MODES
from ..backend.assess.report import write_report
from ..backend.core.errors import UserError
from ..backend.core.output_checks import CSV_EXTENSIONS, HTML_EXTENSIONS
from .base import FeedbackProgress, LandCoverAlgorithm, pick_field_of, vector_input


class AssessAccuracyAlgorithm(LandCoverAlgorithm):
    """Confusion matrix, overall accuracy, kappa, per-class figures and mapped areas."""

    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    CLASS_FIELD = "CLASS_FIELD"
    CLASS_NAME_FIELD = "CLASS_NAME_FIELD"
    ALL_TOUCHED = "ALL_TOUCHED"
    MATCH = "MATCH"
    SAMPLE_DESIGN = "SAMPLE_DESIGN"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    OUTPUT_TABLE = "OUTPUT_TABLE"
    OUTPUT_AREA_TABLE = "OUTPUT_AREA_TABLE"
    AREA_ADJUSTED_OA = "AREA_ADJUSTED_OA"
    AREA_ADJUSTED_OA_CI95 = "AREA_ADJUSTED_OA_CI95"
    OVERALL_ACCURACY = "OVERALL_ACCURACY"
    KAPPA = "KAPPA"
    MIOU = "MIOU"
    MEAN_F1 = "MEAN_F1"
    COMPARED = "COMPARED"

    NAME = "assessaccuracy"
    DISPLAY_NAME = "Assess accuracy"
    GROUP = "accuracy"
    ADVANCED = (ALL_TOUCHED,)
    MATCH_LABELS = ["auto: by name, by code where a side has no names",
                    "names: by class name only", "codes: by integer code only"]
    DESIGN_LABELS = ["auto: points that carry a sampling design (from Accuracy sample)",
                     "stratified random sample by map class",
                     "not a probability sample (no area-adjusted figures)"]
    HELP = (
        "Compares a classified raster with reference labels and writes an HTML report: the "
        "confusion matrix as a picture and a table, per class producer's accuracy (recall), "
        "user's accuracy (precision), F1 and IoU, overall accuracy, Cohen's kappa, mIoU, mean F1 "
        "and the mapped area of each class in hectares.\n\n"
        "The classified raster may come from any tool. Its classes are read from the class map "
        "of Classify raster, else the GDAL category names (or raster attribute table) of band 1, "
        "else a QGIS style file with the same name (.qml: paletted or unique-values labels), "
        "else its integer values are the classes.\n\n"
        "When the reference is a stratified random sample by map class (the points of Accuracy "
        "sample, filled in), the report adds the estimators of Olofsson et al. (2014): overall, "
        "user's and producer's accuracy and the area of each class in hectares, each with a "
        "95 % confidence interval, weighted by the map's class areas. For other references "
        "(digitised polygons, a reference raster) it says why there are none.\n\n"
        "The reference is a vector layer with a class field, or a class raster (a mask from "
        "Build training masks). Polygons are burnt on the classified raster's grid with the rules "
        "of Build training masks (reprojected when their CRS differs); each point counts the "
        "pixel it falls in; a reference raster on another grid is resampled (nearest).\n\n"
        "Classes are matched by name; integer codes without a name (on either side) by code, "
        "or as MATCH says. Reference classes the map does not know are shown as classes it "
        "never predicts; map classes absent from the reference are shown too. When nothing "
        "matches, the error lists both sides' classes.\n\n"
        "Only pixels where the reference has a label and the map has data are compared. Rows of "
        "the matrix are the reference, columns the prediction. mIoU and mean F1 are averaged "
        "over the classes present in the reference (a class never predicted counts as 0). The "
        "returned overall accuracy, mIoU and mean F1 are fractions between 0 and 1.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, "Classified raster (from Classify raster or any other tool)"))
        self.addParameter(QgsProcessingParameterMapLayer(
            self.REFERENCE, "Reference (vector layer with classes, or a mask raster)",
            types=[QgsProcessing.TypeVectorAnyGeometry, QgsProcessing.TypeRaster]))
        # Not QgsProcessingParameterField: QGIS 3.22 crashes building the dialog when its parent
        # holds a raster (QgsProcessingFieldWidgetWrapper::setParentLayerWrapperValue
        # dereferences a null vector layer). A string with a drop-down of the reference's fields
        # instead (none for a raster; an unknown name is refused with the layer's fields).
        self.addParameter(pick_field_of(QgsProcessingParameterString(
            self.CLASS_FIELD, "Class field of the reference vector layer (empty: the layer is "
            "one class named after it)", optional=True), self.REFERENCE))
        self.addParameter(pick_field_of(QgsProcessingParameterString(
            self.CLASS_NAME_FIELD, "Class name field of the reference vector layer (names for "
            "integer class codes)", optional=True), self.REFERENCE))
        self.addParameter(QgsProcessingParameterBoolean(
            self.ALL_TOUCHED, "Count every pixel a reference polygon touches (not only pixel "
            "centres)", defaultValue=False))
        self.addParameter(QgsProcessingParameterEnum(
            self.MATCH, "Match classes", options=self.MATCH_LABELS, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            self.SAMPLE_DESIGN, "Reference points are", options=self.DESIGN_LABELS,
            defaultValue=0))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, "Accuracy report", "HTML files (*.html)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_TABLE, "Confusion matrix and per-class figures (CSV)",
            "CSV files (*.csv)", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_AREA_TABLE, "Area-adjusted areas and accuracies (CSV)",
            "CSV files (*.csv)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.OVERALL_ACCURACY,
                                                 "Overall accuracy (0-1)"))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, "Cohen's kappa"))
        self.addOutput(QgsProcessingOutputNumber(self.MIOU, "Mean IoU (0-1)"))
        self.addOutput(QgsProcessingOutputNumber(self.MEAN_F1, "Mean F1 (0-1)"))
        self.addOutput(QgsProcessingOutputNumber(self.COMPARED,
                                                 "Reference pixels (or points) compared"))
        self.addOutput(QgsProcessingOutputNumber(
            self.AREA_ADJUSTED_OA, "Area-adjusted overall accuracy (0-1; none without a sample)"))
        self.addOutput(QgsProcessingOutputNumber(
            self.AREA_ADJUSTED_OA_CI95, "Its 95 % confidence interval half-width (0-1)"))
        self.set_parameter_help(PARAMETER_HELP)

    def execute(self, parameters, context, feedback) -> dict:
        classified = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if classified is None:
            raise UserError("Choose the classified raster to assess.")
        reference = self.parameterAsLayer(parameters, self.REFERENCE, context)
        if reference is None:
            raise UserError("Choose the reference: a vector layer of labels or a mask raster.")
        if classified.providerType() != "gdal":
            raise UserError("The classified raster must be a file GDAL can read.")
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
        table = self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context) or None
        area_table = self.parameterAsFileOutput(parameters, self.OUTPUT_AREA_TABLE,
                                                context) or None
        self.check_files(parameters, context, [
            self.output(self.OUTPUT_REPORT, report, "an HTML page", HTML_EXTENSIONS),
            self.output(self.OUTPUT_TABLE, table, "a CSV table", CSV_EXTENSIONS),
            self.output(self.OUTPUT_AREA_TABLE, area_table, "a CSV table", CSV_EXTENSIONS)])
        class_field = self.parameterAsString(parameters, self.CLASS_FIELD, context) or None
        name_field = self.parameterAsString(parameters, self.CLASS_NAME_FIELD, context) or None
        vector = raster = None
        if reference.type() == QgsMapLayerType.VectorLayer:
            vector = vector_input(reference, context, feedback)
            if class_field is None:
                feedback.pushWarning(f"No class field: the whole reference layer "
                                     f"'{reference.name()}' is one class. Choose its class "
                                     "field to compare every class.")
        elif reference.type() == QgsMapLayerType.RasterLayer:
            if reference.providerType() != "gdal":
                raise UserError("The reference raster must be a file GDAL can read.")
            raster = reference.source()
            if class_field or name_field:
                feedback.pushWarning("The reference is a raster: the class fields are ignored; "
                                     "its own class map (or its values as codes) is used.")
                class_field = name_field = None
        else:
            raise UserError("The reference must be a vector layer or a raster layer.")
        result = assess_accuracy(
            classified.source(), reference_vector=vector, reference_raster=raster,
            class_field=class_field, class_name_field=name_field,
            all_touched=self.parameterAsBool(parameters, self.ALL_TOUCHED, context),
            match=MATCH_MODES[self.parameterAsEnum(parameters, self.MATCH, context)],
            sample_design=DESIGN_MODES[self.parameterAsEnum(parameters, self.SAMPLE_DESIGN,
                                                            context)],
            progress=FeedbackProgress(feedback))
        if result.adjusted is None and area_table:
            feedback.pushWarning("No area-adjusted figures (" + result.adjusted_note + "): the "
                                 "area table holds the mapped areas only.")
        write_report(result, report, table, area_table_path=area_table)
        metrics = result.metrics
        adjusted = result.adjusted.estimates if result.adjusted is not None else None
        return {self.OUTPUT_REPORT: report, self.OUTPUT_TABLE: table,
                self.OUTPUT_AREA_TABLE: area_table,
                self.OVERALL_ACCURACY: metrics.overall_accuracy, self.KAPPA: metrics.kappa,
                self.MIOU: metrics.miou, self.MEAN_F1: metrics.mean_f1,
                self.COMPARED: result.counted,
                self.AREA_ADJUSTED_OA: adjusted.overall_accuracy if adjusted else None,
                self.AREA_ADJUSTED_OA_CI95: _number(adjusted.overall_accuracy_ci95)
                if adjusted else None}


def _number(value: float) -> float | None:
    """None for an undefined figure, so qgis_process's JSON stays valid (no NaN)."""
    return None if math.isnan(value) else value


PARAMETER_HELP = {
    AssessAccuracyAlgorithm.INPUT: "The classified raster to assess: from Classify raster, or "
                                   "from any other tool (classes from its category names, "
                                   "attribute table, a .qml beside it, or its integer values).",
    AssessAccuracyAlgorithm.REFERENCE: "The reference labels: polygons or points with a class "
                                       "field (any CRS; reprojected; e.g. the points of "
                                       "Accuracy sample with their 'reference' field filled), "
                                       "or a class raster (a mask from Build training masks).",
    AssessAccuracyAlgorithm.CLASS_FIELD: "For a vector reference: the field with each feature's "
                                         "class (text names, or integer codes), picked from "
                                         "its fields (or typed). Empty: the "
                                         "whole layer is one class named after the layer.",
    AssessAccuracyAlgorithm.CLASS_NAME_FIELD: "For a vector reference: a field with a readable "
                                              "name per class code (e.g. 'label' beside 'id'), "
                                              "so classes are matched to the map by name.",
    AssessAccuracyAlgorithm.ALL_TOUCHED: "Off: a pixel is counted when its centre is inside a "
                                         "reference polygon. On: every pixel a polygon touches.",
    AssessAccuracyAlgorithm.OUTPUT_REPORT: "The report (a single HTML file with the picture "
                                           "embedded): confusion matrix, per-class and overall "
                                           "figures, mapped areas.",
    AssessAccuracyAlgorithm.OUTPUT_TABLE: "Optionally, a CSV table: the confusion matrix (rows "
                                          "= reference, columns = prediction) and each class's "
                                          "figures and mapped area.",
    AssessAccuracyAlgorithm.MATCH: "How reference classes find the map's. auto: by name, and by "
                                   "integer code where the reference code or the map has no "
                                   "name. names: by name only. codes: a numeric reference "
                                   "field's values (or a reference raster's values) against "
                                   "the map's codes (its pixel values) directly.",
    AssessAccuracyAlgorithm.SAMPLE_DESIGN: "Whether reference points are a stratified random "
                                           "sample by map class, which the area-adjusted "
                                           "figures need. auto: yes for points from Accuracy "
                                           "sample (they carry their design), no otherwise. "
                                           "Polygons and rasters are never a sample.",
    AssessAccuracyAlgorithm.OUTPUT_AREA_TABLE: "Optionally, a CSV table per class: mapped area, "
                                               "area-adjusted area and its 95 % CI (ha), user's "
                                               "and producer's accuracy with their 95 % CIs.",
}
