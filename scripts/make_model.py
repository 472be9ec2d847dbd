"""Writes resources/land_cover_chain.model3: the graphical-modeler chain of the three tools.

Inputs: image, training polygons, class field (+ optional class name field and epochs).
Outputs: the trained model, the classified raster and the training report.
    source scripts/env.sh && .venv/bin/python scripts/make_model.py
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "resources", "land_cover_chain.model3")


def build_model():
    from qgis.core import (QgsApplication, QgsProcessing, QgsProcessingModelAlgorithm,
                           QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource as Source,
                           QgsProcessingModelOutput, QgsProcessingModelParameter,
                           QgsProcessingParameterField, QgsProcessingParameterNumber,
                           QgsProcessingParameterRasterLayer, QgsProcessingParameterVectorLayer)
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm("land_cover_chain", "Land Cover U-Net")
    model.setHelpContent({"ALG_DESC": (
        "Digitised polygons and an image in, a trained U-Net and a classified land-cover map out: "
        "Build training masks, then Train U-Net, then Classify raster."),
        "ALG_CREATOR": "Land Cover U-Net"})
    training = QgsApplication.processingRegistry().algorithmById("landcoverunet:trainunet")
    epochs = training.parameterDefinition("EPOCHS").defaultValue()  # one source: the algorithm
    inputs = [
        (QgsProcessingParameterRasterLayer("image", "Image"), 60),
        (QgsProcessingParameterVectorLayer("polygons", "Training polygons",
                                           [QgsProcessing.TypeVectorAnyGeometry]), 140),
        (QgsProcessingParameterField("class_field", "Class field",
                                     parentLayerParameterName="polygons"), 220),
        (QgsProcessingParameterField("class_name_field", "Class name field (optional)",
                                     parentLayerParameterName="polygons", optional=True), 300),
        (QgsProcessingParameterNumber("epochs", "Training epochs",
                                      QgsProcessingParameterNumber.Integer, epochs, minValue=1),
         380),
    ]
    for parameter, y in inputs:
        component = QgsProcessingModelParameter(parameter.name())
        component.setPosition(QPointF(120, y))
        model.addModelParameter(parameter, component)

    def child(algorithm: str, child_id: str, description: str, x: float, y: float,
              sources: dict, outputs: dict):
        step = QgsProcessingModelChildAlgorithm(f"landcoverunet:{algorithm}")
        step.setChildId(child_id)
        step.setDescription(description)
        step.setPosition(QPointF(x, y))
        for name, source in sources.items():
            step.addParameterSources(name, [source])
        model_outputs = {}
        for output_name, (name, label) in outputs.items():
            output = QgsProcessingModelOutput(name, label)
            output.setChildId(child_id)
            output.setChildOutputName(output_name)
            output.setPosition(QPointF(x + 200, y + 60))
            model_outputs[name] = output
        step.setModelOutputs(model_outputs)
        model.addChildAlgorithm(step)

    child("buildmasks", "buildmasks", "Build training masks", 420, 140, {
        "INPUT": Source.fromModelParameter("image"),
        "VECTORS": Source.fromModelParameter("polygons"),
        "CLASS_FIELD": Source.fromModelParameter("class_field"),
        "CLASS_NAME_FIELD": Source.fromModelParameter("class_name_field")}, {})
    child("trainunet", "trainunet", "Train U-Net", 420, 280, {
        "INPUT": Source.fromModelParameter("image"),
        "MASK": Source.fromChildOutput("buildmasks", "OUTPUT"),
        "EPOCHS": Source.fromModelParameter("epochs")},
        {"OUTPUT_MODEL": ("model", "Trained model"),
         "OUTPUT_REPORT": ("report", "Training report")})
    child("classifyraster", "classifyraster", "Classify raster", 420, 420, {
        "INPUT": Source.fromModelParameter("image"),
        "MODEL": Source.fromChildOutput("trainunet", "OUTPUT_MODEL")},
        {"OUTPUT": ("classified", "Classified raster")})
    return model


def main() -> int:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    import landcoverunet

    plugin = landcoverunet.classFactory(None)
    plugin.initProcessing()
    model = build_model()
    if not model.toFile(TARGET):
        print("could not save the model")
        return 1
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
