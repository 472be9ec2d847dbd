"""Processing algorithm ``landcoverunet:suggestlabels``: image + model -> the places to digitise
next, as points to label."""
from __future__ import annotations

import os

from qgis.core import (QgsProcessing, QgsProcessingOutputNumber, QgsProcessingParameterFile,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString,
                       QgsProcessingParameterVectorDestination, QgsRasterLayer, QgsVectorLayer)

from ..backend.core.errors import UserError
from ..backend.core.output_checks import GPKG_EXTENSIONS
from ..backend.suggest.ranking import KIND_DISCOUNT
from ..backend.suggest.suggest_labels import (AREA_PER_SITE, DEFAULT_CLASS_FIELD, DEFAULT_COUNT,
                                   SPACING_TILES, suggest_labels)
from .base import FeedbackProgress, LandCoverAlgorithm, pick_field_of, vector_input
from ..gui.styling import SavedStyleLoader, write_suggestion_style

MAX_SITES = 1000
"""Most sites one run suggests (each is labelled by hand)."""


class SuggestLabelsAlgorithm(LandCoverAlgorithm):
    """Points where a new label is expected to help the model most."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    LABELS = "LABELS"
    COUNT = "COUNT"
    SPACING = "SPACING"
    CLASS_FIELD = "CLASS_FIELD"
    OUTPUT = "OUTPUT"
    SITES = "SITES"
    SPACING_USED = "SPACING_USED"

    NAME = "suggestlabels"
    DISPLAY_NAME = "Where to digitise next"
    GROUP = "training"
    ADVANCED = (SPACING,)
    HELP = (
        "Suggests the places where a new label would help the model most, so the next hour of "
        "digitising goes where the map is unsure, not where it is already right.\n\n"
        "The image is classified with the model (its probabilities calibrated as Classify "
        "raster writes them); every pixel gets an uncertainty: 1 minus the margin between "
        "its two likeliest classes (1: the model splits evenly between two "
        "classes; near 0: it is sure). The most uncertain places are taken first, each at "
        "least the spacing away from the others, and each one taken multiplies by "
        f"{KIND_DISCOUNT:g} the score of the others confused between the same two classes, so "
        "the places spread over the scene and over the kinds of confusion rather than all "
        "landing in one field. Places covered by the existing labels are skipped.\n\n"
        "The result is a GeoPackage of points: rank, score (the uncertainty), predicted and "
        "second (the two classes the model hesitates between) and an empty class field with a "
        "drop-down of the model's classes; darker points are more uncertain. Look at each "
        "point, pick its class (leave it empty where you cannot tell), then run Build training "
        "masks with your label layers and this one, the same class field and the previous "
        "mask's class map, and train again.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, "Image (the one you digitise on)"))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Trained model (.keras from 'Train U-Net', or .onnx)",
            fileFilter="Models (*.keras *.onnx);;All files (*)"))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.LABELS, "Existing labels to skip (label layers or training masks)",
            QgsProcessing.TypeMapLayer, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.COUNT, "Number of places", QgsProcessingParameterNumber.Integer,
            defaultValue=DEFAULT_COUNT, minValue=1, maxValue=MAX_SITES))
        self.addParameter(pick_field_of(QgsProcessingParameterString(
            self.CLASS_FIELD, "Class field to fill (the class field of your label layers)",
            defaultValue=DEFAULT_CLASS_FIELD), self.LABELS))
        self.addParameter(QgsProcessingParameterNumber(
            self.SPACING, "Least distance between places (pixels; empty: automatic)",
            QgsProcessingParameterNumber.Double, optional=True, minValue=0.0))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Places to label (GeoPackage points)", QgsProcessing.TypeVectorPoint))
        self.addOutput(QgsProcessingOutputNumber(self.SITES, "Places suggested"))
        self.addOutput(QgsProcessingOutputNumber(self.SPACING_USED, "Spacing used (pixels)"))
        self.set_parameter_help(PARAMETER_HELP)

    def execute(self, parameters, context, feedback) -> dict:
        image = self.image_file(parameters, self.INPUT, context,
                                "Choose the image to suggest places on.")
        model = self.model_file(parameters, self.MODEL, context)
        masks, vectors = [], []
        for layer in self.parameterAsLayerList(parameters, self.LABELS, context):
            if isinstance(layer, QgsVectorLayer):
                vectors.append(vector_input(layer, context, feedback))
            elif isinstance(layer, QgsRasterLayer) and layer.providerType() == "gdal":
                masks.append(layer.source())
            else:
                raise UserError(f"'{layer.name()}' is neither a label layer nor a mask file.")
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context).split("|")[0]
        if not output.lower().endswith(".gpkg"):
            raise UserError(f"The places are written as a GeoPackage, which also keeps their "
                            f"style and drop-down: give '{output}' the extension .gpkg.")
        self.check_files(parameters, context, [
            self.output(self.OUTPUT, output, "a GeoPackage", GPKG_EXTENSIONS)])
        spacing = None
        if parameters.get(self.SPACING) not in (None, ""):
            spacing = self.parameterAsDouble(parameters, self.SPACING, context)
        result = suggest_labels(
            image.source(), model, output,
            count=self.parameterAsInt(parameters, self.COUNT, context), spacing=spacing,
            label_masks=masks, label_vectors=vectors,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context)
            or DEFAULT_CLASS_FIELD, progress=FeedbackProgress(feedback))
        if not write_suggestion_style(output, result.layer_name, result.class_field,
                                      result.codes):
            feedback.pushWarning("The places' style (darker where more uncertain, a drop-down "
                                 "of class names) could not be saved in them.")
        base = os.path.splitext(os.path.basename(image.source()))[0]
        SavedStyleLoader.attach(context, output, f"{base} places to label")
        return {self.OUTPUT: output, self.SITES: result.sites,
                self.SPACING_USED: result.spacing}


PARAMETER_HELP = {
    SuggestLabelsAlgorithm.INPUT: "The image the model classifies and you digitise on: the same "
                                  "bands as the training image.",
    SuggestLabelsAlgorithm.MODEL: "The model to improve: a .keras file from 'Train U-Net' (or "
                                  "an .onnx export of one). Its classes fill the drop-down.",
    SuggestLabelsAlgorithm.LABELS: "Optional: the label layers the model was trained on, or its "
                                   "training masks (on this image's grid). The squares of half "
                                   "the spacing that hold a labelled pixel are not suggested.",
    SuggestLabelsAlgorithm.COUNT: "How many places to suggest, best first.",
    SuggestLabelsAlgorithm.CLASS_FIELD: "The name of the empty field you fill with each place's "
                                        "class. Give the class field of your label layers, so "
                                        "Build training masks reads both layers with one field "
                                        "name; it stores the class codes of those layers.",
    SuggestLabelsAlgorithm.SPACING: "The least distance between two places, in pixels. Empty: "
                                    f"{SPACING_TILES} training tiles, less on a scene too small "
                                    f"to give each place {AREA_PER_SITE} times that square.",
    SuggestLabelsAlgorithm.OUTPUT: "A GeoPackage of points at pixel centres: rank, score, "
                                   "predicted, second and the class field to fill (a drop-down "
                                   "of the model's classes); styled by score and loaded.",
}
