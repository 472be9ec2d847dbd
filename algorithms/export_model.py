"""Processing algorithm ``landcoverunet:exportmodel``: a trained model written as ONNX."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterFile, QgsProcessingParameterFileDestination

from ..backend.core.errors import UserError
from ..backend.model.onnx_runtime import ONNX_EXTENSION
from ..backend.export.onnx_file import export_onnx
from .base import FeedbackProgress, LandCoverAlgorithm


class ExportModelAlgorithm(LandCoverAlgorithm):
    """Writes a model of 'Train U-Net' as an ONNX file, for Deepness and ONNX Runtime."""

    MODEL = "MODEL"
    OUTPUT = "OUTPUT"

    NAME = "exportmodel"
    DISPLAY_NAME = "Export model (ONNX)"
    GROUP = "mapping"
    HELP = (
        "Writes a model file of 'Train U-Net' as an ONNX file, which runs without TensorFlow "
        "or Keras: in 'Classify raster' of this plugin (with the onnxruntime package only), in "
        "the Deepness plugin, and in any ONNX Runtime program.\n\n"
        "The graph takes what Deepness feeds a segmentation model: the raw band values divided "
        "by 255, channels first, in square windows of the size 'Classify raster' uses for "
        "the model by default (a few training tiles); the plugin's normalisation is inside "
        "it. Its output is the class probabilities. The file's "
        "metadata holds what Deepness reads (model_type 'Segmentor', class_names, resolution "
        "in cm/px, tiles_size, tiles_overlap) and the plugin's own class map (ids, names, "
        "colours) and model metadata, so 'Classify raster' writes the same classes and "
        "palette from it.\n\n"
        "Deepness reads 8-bit images only: a model trained on 8-bit imagery suits it; for "
        "other imagery (reflectances, 16-bit) use the file in this plugin or ONNX Runtime. "
        "Before the file is written, the graph is run on a test window and compared with the "
        "Keras network; a graph that disagrees is never written. Needs the onnx and "
        "onnxruntime packages.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Trained model (.keras from 'Train U-Net')",
            fileFilter="Keras models (*.keras);;All files (*)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, "ONNX model", "ONNX models (*.onnx)"))
        self.set_parameter_help(PARAMETER_HELP)

    def execute(self, parameters, context, feedback) -> dict:
        model = self.parameterAsFile(parameters, self.MODEL, context)
        if not model:
            raise UserError("Choose a model file (.keras) trained by 'Train U-Net'.")
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        self.check_files(parameters, context, [
            self.output(self.OUTPUT, output, "an ONNX model", (ONNX_EXTENSION,))])
        result = export_onnx(model, output, FeedbackProgress(feedback))
        return {self.OUTPUT: result.path}


PARAMETER_HELP = {
    ExportModelAlgorithm.MODEL: "A .keras file written by 'Train U-Net' (or its cancelled "
                                "'<name>.cancelled.keras').",
    ExportModelAlgorithm.OUTPUT: "The .onnx file to write. It appears only once complete and "
                                 "checked against the Keras network.",
}
