"""Processing algorithm ``landcoverunet:classifybatch``: many images or huge mosaics + a model ->
class rasters, on a dask.distributed cluster (a local one by default)."""
from __future__ import annotations

import os

from qgis.core import (QgsProcessing, QgsProcessingOutputNumber, QgsProcessingParameterBoolean,
                       QgsProcessingParameterEnum, QgsProcessingParameterFile,
                       QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterString)

from ..backend.batch.classify_batch import DEFAULT_BLOCK_SIZE, BatchSettings, classify_batch
from ..backend.core.choices import TTA_MODES
from ..backend.core.errors import UserError
from .base import FeedbackProgress, LandCoverAlgorithm, check_raster_file
from .classify_raster import MAX_MAPPING_UNIT, TTA_LABELS
from ..gui.styling import write_class_style

DEFAULT_WORKERS = 2
MAX_WORKERS = 256
MIN_BLOCK_SIZE = 512
MAX_BLOCK_SIZE = 65536


class ClassifyBatchAlgorithm(LandCoverAlgorithm):
    """Classifies many images (or a few huge ones) in parallel on dask workers."""

    INPUTS = "INPUTS"
    MODEL = "MODEL"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    BLOCK_SIZE = "BLOCK_SIZE"
    SCHEDULER = "SCHEDULER"
    WORKERS = "WORKERS"
    TTA = "TTA"
    MIN_MAPPING_UNIT = "MIN_MAPPING_UNIT"
    VECTORS = "VECTORS"
    CLASSIFIED = "CLASSIFIED"
    FAILED = "FAILED"

    NAME = "classifybatch"
    DISPLAY_NAME = "Classify rasters in batch (dask)"
    GROUP = "mapping"
    ADVANCED = (BLOCK_SIZE,)
    HELP = (
        "Classifies many images, or mosaics too large for one process, with a model trained by "
        "'Train U-Net', on a dask.distributed cluster: by default a local cluster of worker "
        "processes on this computer; or give the address of a running dask scheduler "
        "(tcp://host:port) to use the workers of a workstation or a cluster.\n\n"
        "Each input gives OUTPUT_FOLDER/<input name>_classes.tif (the classes' colours and "
        "names, overviews). An image larger than the block size is split into blocks by extent; "
        "each block is classified with the windows and blending of 'Classify raster', reaching "
        "beyond the block as far as those windows do, so the stitched map equals the "
        "one-process map exactly. Blocks are written atomically; running again with the same "
        "model and settings skips the images and blocks already finished, while a map made by "
        "another model or with other settings is classified again and replaced (with a "
        "warning). An output that would overwrite one of the inputs refuses the run. A block that fails is tried again; an image that "
        "cannot be classified fails alone, named in the log, and the others go on.\n\n"
        "Workers of a running scheduler need the plugin importable (its folder's parent on "
        "PYTHONPATH), TensorFlow and GDAL, and must see the images and the output folder at "
        "the same paths.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.INPUTS, "Images to classify (a VRT mosaic counts as one)",
            QgsProcessing.TypeRaster))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Trained model (.keras from 'Train U-Net', or .onnx from 'Export model')",
            fileFilter="Models (*.keras *.onnx);;All files (*)"))
        self.addParameter(QgsProcessingParameterString(
            self.SCHEDULER, "Dask scheduler address (empty: a local cluster)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.WORKERS, "Local worker processes", QgsProcessingParameterNumber.Integer,
            defaultValue=DEFAULT_WORKERS, minValue=1, maxValue=MAX_WORKERS))
        self.addParameter(QgsProcessingParameterNumber(
            self.BLOCK_SIZE, "Block size (pixels): larger images are split",
            QgsProcessingParameterNumber.Integer, defaultValue=DEFAULT_BLOCK_SIZE,
            minValue=MIN_BLOCK_SIZE, maxValue=MAX_BLOCK_SIZE))
        self.addParameter(QgsProcessingParameterEnum(
            self.TTA, "Test-time augmentation (averaged probabilities)",
            [TTA_LABELS[mode] for mode in TTA_MODES], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_MAPPING_UNIT, "Minimum mapping unit (hectares; 0: off)",
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0,
            maxValue=MAX_MAPPING_UNIT))
        self.addParameter(QgsProcessingParameterBoolean(
            self.VECTORS, "Also write the classes as polygons (GeoPackage per image)",
            defaultValue=False))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT_FOLDER, "Output folder"))
        self.addOutput(QgsProcessingOutputNumber(self.CLASSIFIED, "Images classified"))
        self.addOutput(QgsProcessingOutputNumber(self.FAILED, "Images that failed"))
        self.set_parameter_help(PARAMETER_HELP)

    def execute(self, parameters, context, feedback) -> dict:
        layers = self.parameterAsLayerList(parameters, self.INPUTS, context)
        if not layers:
            raise UserError("Choose at least one image to classify.")
        for layer in layers:
            check_raster_file(layer)
        model = self.model_file(parameters, self.MODEL, context)
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        self.check_files(parameters, context, [
            self.output(self.OUTPUT_FOLDER, folder, "", (), folder=True)])
        settings = BatchSettings(
            block_size=self.parameterAsInt(parameters, self.BLOCK_SIZE, context),
            scheduler=(self.parameterAsString(parameters, self.SCHEDULER, context) or "").strip(),
            workers=self.parameterAsInt(parameters, self.WORKERS, context),
            tta=TTA_MODES[self.parameterAsEnum(parameters, self.TTA, context)],
            min_mapping_unit=self.parameterAsDouble(parameters, self.MIN_MAPPING_UNIT, context),
            vectors=self.parameterAsBoolean(parameters, self.VECTORS, context))
        images = [layer.source() for layer in layers]
        result = classify_batch(images, model, folder, settings, FeedbackProgress(feedback))
        if result.failed and not result.outputs:
            first = next(iter(result.failed.items()))
            raise UserError(f"No image was classified. '{os.path.basename(first[0])}': "
                            f"{first[1]}")
        for output in result.outputs.values():
            write_class_style(output)
        return {self.OUTPUT_FOLDER: folder, self.CLASSIFIED: len(result.outputs),
                self.FAILED: len(result.failed)}


PARAMETER_HELP = {
    ClassifyBatchAlgorithm.INPUTS: "The images: same bands, in the same order, as the image the "
                                   "model was trained on. Any size; a VRT mosaic is one image.",
    ClassifyBatchAlgorithm.MODEL: "A .keras file written by 'Train U-Net', or an .onnx file "
                                  "exported from one (workers then need only onnxruntime). It "
                                  "is sent to each worker once.",
    ClassifyBatchAlgorithm.SCHEDULER: "Address of a running dask scheduler, e.g. "
                                      "tcp://10.0.0.5:8786. Empty: start a local cluster on "
                                      "this computer (WORKERS processes) for this run.",
    ClassifyBatchAlgorithm.WORKERS: f"Worker processes of the local cluster (1 to {MAX_WORKERS};"
                                    " each runs one image or block at a time). Not used with a "
                                    "scheduler address.",
    ClassifyBatchAlgorithm.BLOCK_SIZE: f"Images wider or taller than this many pixels "
                                       f"({MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}) are split into "
                                       "blocks of this size, classified in parallel and stitched "
                                       "without seams.",
    ClassifyBatchAlgorithm.TTA: "Predict each window also flipped (and rotated) and average the "
                                "probabilities: slightly better maps, 4 or 8 times slower.",
    ClassifyBatchAlgorithm.MIN_MAPPING_UNIT: "Smallest patch kept, in hectares (0 to 1,000,000;"
                                             " 0: off), applied to each whole stitched map "
                                             "(GDAL's sieve filter, 4-connected). Needs a "
                                             "projected CRS.",
    ClassifyBatchAlgorithm.VECTORS: "Also write <input name>_classes.gpkg: one polygon per "
                                    "patch with class_id, class_name and area_ha.",
    ClassifyBatchAlgorithm.OUTPUT_FOLDER: "Where <input name>_classes.tif goes for each input "
                                          "(unfinished blocks wait in its .parts folder).",
}
