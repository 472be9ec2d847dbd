"""Processing algorithm ``landcoverunet:buildmasks``: labelled vector layers -> mask raster."""
from __future__ import annotations

import os

from qgis.core import (QgsProcessing, QgsProcessingOutputNumber, QgsProcessingParameterBoolean,
                       QgsProcessingParameterEnum, QgsProcessingParameterFile,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString,
                       QgsVectorLayer)

from ..backend.core.class_map import ClassMap
from ..backend.core.errors import UserError
from ..backend.core.feature_ids import SUFFIX as FEATURE_IDS_SUFFIX
from ..backend.core.feature_ids import sidecar_path
from ..backend.core.output_checks import JSON_EXTENSIONS
from ..backend.core.raster_io import GTIFF_EXTENSIONS
from ..backend.masks.burn import OVERLAP_RULES, build_mask
from .base import FeedbackProgress, LandCoverAlgorithm, pick_field_of, vector_input
from ..gui.styling import ClassPaletteStyler, write_class_style

OVERLAP_LABELS = ["Smaller feature wins (a pond inside a forest stays a pond)",
                  "Last drawn feature wins", "Leave overlapping pixels unlabelled"]


class BuildMasksAlgorithm(LandCoverAlgorithm):
    """Burns labelled polygons, lines and points into a mask on an image's exact pixel grid."""

    INPUT = "INPUT"
    VECTORS = "VECTORS"
    CLASS_FIELD = "CLASS_FIELD"
    CLASS_NAME_FIELD = "CLASS_NAME_FIELD"
    LINE_WIDTH = "LINE_WIDTH"
    ALL_TOUCHED = "ALL_TOUCHED"
    OVERLAP = "OVERLAP"
    CLASS_MAP = "CLASS_MAP"
    OUTPUT = "OUTPUT"
    OUTPUT_CLASS_MAP = "OUTPUT_CLASS_MAP"
    CLASS_COUNT = "CLASS_COUNT"
    LABELLED_PIXELS = "LABELLED_PIXELS"

    NAME = "buildmasks"
    DISPLAY_NAME = "Build training masks"
    GROUP = "training"
    ADVANCED = (ALL_TOUCHED, OVERLAP, LINE_WIDTH)
    HELP = (
        "Turns digitised label layers into a training mask on the image's exact pixel grid "
        "(same CRS, geotransform, width and height); layers in another CRS are reprojected.\n\n"
        "The mask is a uint8 GeoTIFF: 0 means 'no label' (nodata) and classes are 1..N. Pixels "
        "where the image has no data stay 0. The class map (id, name, colour, original code) is "
        "written into the mask itself, so training, classification and styling read it from "
        "there.\n\n"
        "Class ids: integer codes between 1 and 254 are kept; other codes and text classes get "
        "1..N in sorted order. Give an existing class map to keep ids and colours the same across "
        "images.\n\n"
        "Lines and points are widened on the ground to LINE_WIDTH (with 0, a point labels "
        "the pixel it falls in and a line the pixels it crosses). Invalid geometries "
        "are repaired; skipped features are counted in the log.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, "Image (its pixel grid is the mask's grid)"))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.VECTORS, "Label layers (polygons, lines or points)",
            QgsProcessing.TypeVectorAnyGeometry))
        # QGIS 3.22's field picker lists nothing under several layers: a string parameter with
        # a drop-down of the label layers' fields (an unknown name is refused with the fields)
        self.addParameter(pick_field_of(QgsProcessingParameterString(
            self.CLASS_FIELD, "Class field (empty: each layer is one class named after the layer)",
            optional=True), self.VECTORS))
        self.addParameter(pick_field_of(QgsProcessingParameterString(
            self.CLASS_NAME_FIELD, "Class name field (names for integer class codes)",
            optional=True), self.VECTORS))
        self.addParameter(QgsProcessingParameterNumber(
            self.LINE_WIDTH, "Width of lines and points on the ground (metres)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.ALL_TOUCHED, "Label every pixel a feature touches (not only pixel centres)",
            defaultValue=False))
        self.addParameter(QgsProcessingParameterEnum(
            self.OVERLAP, "Where features of different classes overlap", OVERLAP_LABELS,
            defaultValue=0))
        self.addParameter(QgsProcessingParameterFile(
            self.CLASS_MAP, "Existing class map to keep ids and colours (JSON, or a mask raster)",
            optional=True, fileFilter="Class maps (*.json *.tif *.tiff);;All files (*)"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Training mask"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_CLASS_MAP, "Class map (JSON)", "JSON files (*.json)", optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.CLASS_COUNT, "Number of classes"))
        self.addOutput(QgsProcessingOutputNumber(self.LABELLED_PIXELS, "Labelled pixels"))
        self.set_parameter_help(PARAMETER_HELP)

    def execute(self, parameters, context, feedback) -> dict:
        image = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if image is None:
            raise UserError("Choose an image: its pixel grid is the mask's grid.")
        layers = self.parameterAsLayerList(parameters, self.VECTORS, context)
        if not layers:
            raise UserError("Choose at least one label layer.")
        for layer in layers:
            if not isinstance(layer, QgsVectorLayer):
                raise UserError(f"The label layer '{layer.name()}' ({layer.source()}) is not a "
                                "vector layer: labels are polygons, lines or points. A raster "
                                "of classes becomes polygons with Raster > Conversion > "
                                "Polygonize, or serves as a mask as it is.")
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        json_path = self.parameterAsFileOutput(parameters, self.OUTPUT_CLASS_MAP, context) or None
        self.check_files(parameters, context, [
            self.output(self.OUTPUT, output, "a GeoTIFF", GTIFF_EXTENSIONS,
                        (sidecar_path(output),) if output else ()),
            self.output(self.OUTPUT_CLASS_MAP, json_path, "JSON", JSON_EXTENSIONS)])
        vectors = [vector_input(layer, context, feedback) for layer in layers]
        class_field = self.parameterAsString(parameters, self.CLASS_FIELD, context) or None
        if class_field is None and len(layers) == 1:
            feedback.pushWarning(
                f"No class field: the whole layer '{layers[0].name()}' is one class, so the mask "
                "has a single class and a U-Net cannot learn from it alone. Choose the class "
                "field, or give one label layer per class.")
        class_map_path = self.parameterAsFile(parameters, self.CLASS_MAP, context)
        existing = None
        if class_map_path:
            existing = (ClassMap.read_json(class_map_path) if class_map_path.lower().endswith(
                ".json") else ClassMap.read_from_raster(class_map_path))
            if existing is None:
                raise UserError(f"'{class_map_path}' carries no class map.")
        result = build_mask(
            image.source(), vectors, output,
            class_field=class_field,
            class_name_field=self.parameterAsString(parameters, self.CLASS_NAME_FIELD,
                                                    context) or None,
            line_width=self.parameterAsDouble(parameters, self.LINE_WIDTH, context),
            all_touched=self.parameterAsBool(parameters, self.ALL_TOUCHED, context),
            overlap=OVERLAP_RULES[self.parameterAsEnum(parameters, self.OVERLAP, context)],
            class_map=existing, class_map_json=json_path, progress=FeedbackProgress(feedback))
        write_class_style(output, result.class_map)
        ClassPaletteStyler.attach(context, output,
                                  f"{os.path.splitext(os.path.basename(image.source()))[0]} mask")
        return {self.OUTPUT: output, self.OUTPUT_CLASS_MAP: json_path,
                self.CLASS_COUNT: len(result.class_map),
                self.LABELLED_PIXELS: result.labelled_pixels}


PARAMETER_HELP = {
    BuildMasksAlgorithm.INPUT: "The image to train on. The mask gets exactly its CRS, "
                               "geotransform, width and height.",
    BuildMasksAlgorithm.VECTORS: "One or more layers of digitised labels. Polygons are burnt as "
                                 "they are; lines and points with LINE_WIDTH.",
    BuildMasksAlgorithm.CLASS_FIELD: "Field with the class of each feature (integer code or "
                                     "text), picked from the label layers' fields (or typed). "
                                     "Leave empty to make each layer one class.",
    BuildMasksAlgorithm.CLASS_NAME_FIELD: "Field with a readable name for each class code, "
                                          "e.g. 'label' beside an integer 'id'.",
    BuildMasksAlgorithm.LINE_WIDTH: "Total width in metres on the ground given to lines (roads, "
                                    "rivers) and the diameter given to points. 0: a point labels "
                                    "the pixel it falls in, a line the pixels it crosses.",
    BuildMasksAlgorithm.ALL_TOUCHED: "Off: a pixel is labelled when its centre is inside a "
                                     "feature. On: every pixel a feature touches is labelled.",
    BuildMasksAlgorithm.OVERLAP: "Which class a pixel gets where features of different classes "
                                 "overlap.",
    BuildMasksAlgorithm.CLASS_MAP: "A class map from an earlier run (JSON, or a mask made by "
                                   "this tool) so ids and colours stay the same.",
    BuildMasksAlgorithm.OUTPUT: "The mask GeoTIFF (uint8, 0 = no label). Beside it goes "
                                f"<mask name>{FEATURE_IDS_SUFFIX}, the digitised feature of "
                                "each labelled pixel (training validates on whole features); "
                                "a file of that name that is not such a file is never "
                                "replaced: the run is refused.",
    BuildMasksAlgorithm.OUTPUT_CLASS_MAP: "Optionally, the class map also as a JSON file.",
}
