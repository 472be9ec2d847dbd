"""Writes resources/land_cover_chain.model3: the "Land cover chain" model of the graphical
modeler, Build training masks -> Train U-Net -> Classify raster -> Assess accuracy.

QGIS 3.22 lists a model's inputs by name, alphabetically (the order cannot be set before 3.26),
so the names are chosen to sort in the order an analyst fills them in: image, labels and their
fields, epochs, reference and its fields. Every child parameter that no input feeds gets the
algorithm's own default as a fixed value, so the model validates (``model.validate()`` is
empty) and opens without red boxes.
    source scripts/env.sh && .venv/bin/python scripts/make_model.py
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "resources", "land_cover_chain.model3")
NAME = "Land cover chain"

DESCRIPTION = (
    "From an image and a few digitised polygons to a land-cover map and its accuracy, in one "
    "run: Build training masks burns the labels onto the image's grid, Train U-Net learns "
    "from them, Classify raster maps the whole image, and Assess accuracy compares the map "
    "with reference labels digitised apart from the training ones. Each step is the toolbox "
    "algorithm of the same name with its default settings; open the model in the Graphical "
    "Modeler to change them.")

INPUT_HELP = {
    "image": "The image to learn from and to classify (any number of bands).",
    "labels": "Digitised training labels: polygons (or lines, points) with a class field.",
    "labels_class": "The field of the training labels with each feature's class (an integer "
                    "code or a text name).",
    "labels_names": "Optionally, a field with a readable name for each class code (e.g. "
                    "'label' beside an integer 'id').",
    "max_epochs": "The most epochs Train U-Net runs (it stops earlier when validation stalls).",
    "reference": "Reference labels digitised apart from the training labels (e.g. "
                 "resources/sample/reference_polygons.gpkg), to measure the map's accuracy.",
    "reference_class": "The reference's class field (codes or names matching the training "
                       "labels').",
    "reference_names": "Optionally, the reference's class name field, so classes are matched "
                       "by name.",
}


def build_model():
    from qgis.core import (QgsApplication, QgsProcessing, QgsProcessingModelAlgorithm,
                           QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource as Source,
                           QgsProcessingModelOutput, QgsProcessingModelParameter,
                           QgsProcessingParameterField, QgsProcessingParameterNumber,
                           QgsProcessingParameterRasterLayer, QgsProcessingParameterVectorLayer)
    from qgis.PyQt.QtCore import QPointF

    registry = QgsApplication.processingRegistry()
    model = QgsProcessingModelAlgorithm(NAME, "Land Cover U-Net")
    model.setHelpContent({"ALG_DESC": DESCRIPTION, "ALG_CREATOR": "Land Cover U-Net",
                          **INPUT_HELP})
    epochs = registry.algorithmById("landcoverunet:trainunet").parameterDefinition(
        "EPOCHS").defaultValue()  # one source: the algorithm
    any_geometry = [QgsProcessing.TypeVectorAnyGeometry]
    inputs = [
        QgsProcessingParameterRasterLayer("image", "Image"),
        QgsProcessingParameterVectorLayer("labels", "Training labels (digitised polygons)",
                                          any_geometry),
        QgsProcessingParameterField("labels_class", "Class field of the training labels",
                                    "id", parentLayerParameterName="labels"),
        QgsProcessingParameterField("labels_names", "Class name field of the training labels",
                                    "label", parentLayerParameterName="labels", optional=True),
        QgsProcessingParameterNumber("max_epochs", "Maximum training epochs",
                                     QgsProcessingParameterNumber.Integer, epochs, minValue=1),
        QgsProcessingParameterVectorLayer("reference", "Reference labels (not the training "
                                          "ones)", any_geometry),
        QgsProcessingParameterField("reference_class", "Class field of the reference", "id",
                                    parentLayerParameterName="reference"),
        QgsProcessingParameterField("reference_names", "Class name field of the reference",
                                    "label", parentLayerParameterName="reference",
                                    optional=True),
    ]
    for row, parameter in enumerate(inputs):
        parameter.setHelp(INPUT_HELP[parameter.name()])
        component = QgsProcessingModelParameter(parameter.name())
        component.setPosition(QPointF(120, 60 + 80 * row))
        model.addModelParameter(parameter, component)

    def child(algorithm: str, row: int, sources: dict, outputs: dict) -> None:
        """Adds a step fed by ``sources``, every other parameter fixed at its default."""
        definition = registry.algorithmById(f"landcoverunet:{algorithm}")
        step = QgsProcessingModelChildAlgorithm(definition.id())
        step.setChildId(algorithm)
        step.setDescription(definition.displayName())
        step.setPosition(QPointF(460, 100 + 160 * row))
        for parameter in definition.parameterDefinitions():
            name = parameter.name()
            if name in sources:
                step.addParameterSources(name, [sources[name]])
            elif not parameter.isDestination() and parameter.defaultValue() is not None:
                step.addParameterSources(name, [Source.fromStaticValue(
                    parameter.defaultValue())])
        model_outputs = {}
        for output_name, (name, label) in outputs.items():
            output = QgsProcessingModelOutput(name, label)
            output.setChildId(algorithm)
            output.setChildOutputName(output_name)
            output.setPosition(QPointF(760, 100 + 160 * row + 40 * len(model_outputs)))
            model_outputs[name] = output
        step.setModelOutputs(model_outputs)
        model.addChildAlgorithm(step)

    child("buildmasks", 0, {
        "INPUT": Source.fromModelParameter("image"),
        "VECTORS": Source.fromModelParameter("labels"),
        "CLASS_FIELD": Source.fromModelParameter("labels_class"),
        "CLASS_NAME_FIELD": Source.fromModelParameter("labels_names")}, {})
    child("trainunet", 1, {
        "INPUT": Source.fromModelParameter("image"),
        "MASK": Source.fromChildOutput("buildmasks", "OUTPUT"),
        "EPOCHS": Source.fromModelParameter("max_epochs")},
        {"OUTPUT_MODEL": ("model", "Trained model"),
         "OUTPUT_REPORT": ("report", "Training report")})
    child("classifyraster", 2, {
        "INPUT": Source.fromModelParameter("image"),
        "MODEL": Source.fromChildOutput("trainunet", "OUTPUT_MODEL")},
        {"OUTPUT": ("classified", "Land-cover map")})
    child("assessaccuracy", 3, {
        "INPUT": Source.fromChildOutput("classifyraster", "OUTPUT"),
        "REFERENCE": Source.fromModelParameter("reference"),
        "CLASS_FIELD": Source.fromModelParameter("reference_class"),
        "CLASS_NAME_FIELD": Source.fromModelParameter("reference_names")},
        {"OUTPUT_REPORT": ("accuracy", "Accuracy report")})
    return model


def main() -> int:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    import landcoverunet

    plugin = landcoverunet.classFactory(None)
    plugin.initProcessing()
    model = build_model()
    valid, problems = model.validate()
    if not valid:
        print("the model is not valid:", *problems, sep="\n")
        return 1
    if not model.toFile(TARGET):
        print("could not save the model")
        return 1
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
