"""A class-field drop-down for parameters whose layers QGIS 3.22's own field picker cannot read.

Build training masks takes several label layers (a multiple-layers parameter) and Assess
accuracy a reference that is a vector layer or a mask raster (a map-layer parameter). QGIS
3.22's ``QgsProcessingParameterField`` lists nothing under the first and crashes the dialog
under the second when it holds a raster, so those class fields are string parameters, and this
wrapper gives them what an analyst expects anyway: an editable drop-down of the fields of the
chosen layers (every layer's, in order, each once), refreshed when the layers change. A typed
name still works (the backend refuses an unknown one and lists the layer's fields). In the
modeler it offers the model's string and field inputs, as QGIS's own string widget does.

Algorithms name it in a parameter's metadata (``algorithms/base.py``'s ``pick_field_of``), by
dotted path, so Processing imports it only when it builds a dialog: ``qgis_process`` never
loads Qt widgets.
"""
from __future__ import annotations

from processing.gui.wrappers import DIALOG_MODELER, WidgetWrapper
from processing.tools import dataobjects
from qgis.core import (NULL, QgsProcessingFeatureSourceDefinition, QgsProcessingOutputString,
                       QgsProcessingParameterDefinition, QgsProcessingParameterField,
                       QgsProcessingParameterString, QgsProcessingUtils, QgsVectorLayer)
from qgis.PyQt.QtWidgets import QComboBox


def layer_fields(value, context) -> list[str]:
    """The field names of the layer(s) a layer parameter's widget holds (ids, paths, feature
    source definitions or layers, alone or in a list), each once, in order; none of rasters."""
    names: list[str] = []
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, QgsProcessingFeatureSourceDefinition):
            item, _ = item.source.valueAsString(context.expressionContext())
        layer = QgsProcessingUtils.mapLayerFromString(item, context) \
            if isinstance(item, str) and item else item
        if isinstance(layer, QgsVectorLayer):
            names += [f.name() for f in layer.fields() if f.name() not in names]
    return names


class FieldPickerWrapper(WidgetWrapper):
    """An editable drop-down of the fields of the layer parameter named ``parent``."""

    def createWidget(self, parent: str = "", **kwargs):  # noqa: N802
        self.parent_name = parent
        self.context = dataobjects.createContext()
        widget = QComboBox()
        widget.setEditable(True)
        if self.dialogType == DIALOG_MODELER:
            values = self.dialog.getAvailableValuesOfType(
                [QgsProcessingParameterString, QgsProcessingParameterField],
                [QgsProcessingOutputString])
            for value in values:
                widget.addItem(self.dialog.resolveValueDescription(value), value)
        widget.setToolTip(self.parameterDefinition().toolTip())
        return widget

    def postInitialize(self, wrappers) -> None:  # noqa: N802
        if self.dialogType == DIALOG_MODELER:
            return
        for wrapper in wrappers:
            if wrapper.parameterDefinition().name() == self.parent_name:
                self.fill(wrapper.parameterValue())
                wrapper.widgetValueHasChanged.connect(
                    lambda changed: self.fill(changed.parameterValue()))
                break

    def fill(self, layers) -> None:
        """Lists the fields of ``layers``, keeping what was chosen or typed."""
        kept = self.widget.currentText()
        self.widget.clear()
        if self.parameterDefinition().flags() & QgsProcessingParameterDefinition.FlagOptional:
            self.widget.addItem("")
        for name in layer_fields(layers, self.context):
            self.widget.addItem(name, name)
        self.widget.setEditText(kept)

    def setValue(self, value) -> None:  # noqa: N802
        if value is None or value == NULL:
            return
        if self.dialogType == DIALOG_MODELER:
            self.setComboValue(value)
        else:
            self.widget.setEditText(str(value))

    def value(self):
        if self.dialogType == DIALOG_MODELER:
            return self.comboValue()
        return self.widget.currentText().strip() or None

