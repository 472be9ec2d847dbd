"""Class rasters and class polygons loaded into QGIS get the class colours and names, on the main
thread.

Processing calls a layer post-processor on the main thread after the algorithm has finished, so
styling never touches the project or the GUI from the background task. The palette comes from
the class map the raster itself carries (see ``backend.class_map``).
"""
from __future__ import annotations

import os

from qgis.core import (QgsCategorizedSymbolRenderer, QgsEditorWidgetSetup,
                       QgsGraduatedSymbolRenderer, QgsPalettedRasterRenderer,
                       QgsPalLayerSettings, QgsProcessingLayerPostProcessorInterface,
                       QgsRasterLayer, QgsRendererCategory, QgsRendererRange, QgsSymbol,
                       QgsValueMapFieldFormatter, QgsVectorLayer, QgsVectorLayerSimpleLabeling)
from qgis.PyQt.QtGui import QColor

from ..backend.core.class_map import ClassMap


def apply_class_palette(layer: QgsRasterLayer, class_map: ClassMap | None = None) -> bool:
    """Gives a class raster a paletted renderer with its classes' colours and names.

    Args:
        layer: a raster layer whose band 1 holds class ids.
        class_map: the classes; read from the layer's file when not given.

    Returns:
        Whether a palette was applied (False when the raster carries no class map).
    """
    if class_map is None:
        class_map = ClassMap.read_from_raster(layer.source())
    if class_map is None:
        return False
    classes = [QgsPalettedRasterRenderer.Class(c.id, QColor(c.color), c.name)
               for c in class_map.classes]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    layer.triggerRepaint()
    return True


def write_class_style(raster_path: str, class_map: ClassMap | None = None) -> str | None:
    """Writes ``<raster>.qml`` beside a class raster: QGIS loads it whenever the file is opened
    (a new project, a colleague), so the legend shows exactly the classes. Without it QGIS
    shows the GeoTIFF's colour table, which the format pads to 256 entries (0, the classes,
    then black 8, 9 ... 255). Returns the style's path, or None when there is no class map."""
    layer = QgsRasterLayer(raster_path, "classes", "gdal")
    if not layer.isValid() or not apply_class_palette(layer, class_map):
        return None
    path = os.path.splitext(raster_path)[0] + ".qml"
    _, saved = layer.saveNamedStyle(path)
    return path if saved else None


class ClassPaletteStyler(QgsProcessingLayerPostProcessorInterface):
    """Post-processor that styles a loaded class raster with :func:`apply_class_palette`."""

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        if isinstance(layer, QgsRasterLayer) and not apply_class_palette(layer):
            feedback.pushWarning(f"{layer.name()}: no class map found, left unstyled.")

    @classmethod
    def attach(cls, context, output_path: str, layer_name: str | None = None) -> None:
        """Styles ``output_path`` when Processing loads it on completion (and names it)."""
        attach_styler(context, output_path, layer_name, cls())


def apply_class_categories(layer: QgsVectorLayer, class_map: ClassMap,
                           field: str = "class_id", by_name: bool = False) -> None:
    """Gives a layer of classes one category per class: its colour and name. ``field`` holds
    the class ids, or the class names when ``by_name``."""
    categories = []
    for info in class_map.classes:
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setColor(QColor(info.color))
        categories.append(QgsRendererCategory(info.name if by_name else info.id, symbol,
                                              info.name))
    layer.setRenderer(QgsCategorizedSymbolRenderer(field, categories))
    layer.triggerRepaint()


def write_sample_style(path: str, layer_name: str, class_map: ClassMap, class_field: str,
                       reference_field: str) -> bool:
    """Saves an accuracy sample's default style inside its GeoPackage: points coloured by map
    class, and ``reference_field`` edited with a drop-down of the class names (a value map, with
    an empty choice for points not labelled yet), so labelling hundreds of points is picking,
    not typing names that must match exactly."""
    layer = QgsVectorLayer(f"{path}|layername={layer_name}", layer_name, "ogr")
    if not layer.isValid():
        return False
    apply_class_categories(layer, class_map, class_field, by_name=True)
    set_class_choices(layer, reference_field, {info.name: info.name
                                               for info in class_map.classes})
    error = layer.saveStyleToDatabase(layer_name, "Land Cover U-Net accuracy sample", True, "")
    return not error


def set_class_choices(layer: QgsVectorLayer, field: str, choices: dict[str, str]) -> None:
    """Makes ``field`` a drop-down (a value map): each class name shown, its value stored, and
    an empty choice for a point not labelled yet."""
    entries = [{name: value} for name, value in choices.items()]
    entries.append({"(not labelled)": QgsValueMapFieldFormatter.NULL_VALUE})
    layer.setEditorWidgetSetup(layer.fields().indexOf(field),
                               QgsEditorWidgetSetup("ValueMap", {"map": entries}))


SCORE_RANGES = ((0.0, 0.5, "#fee5d9", "sure (under 0.5)"), (0.5, 0.75, "#fcae91", "0.5 - 0.75"),
                (0.75, 0.9, "#fb6a4a", "0.75 - 0.9"),
                (0.9, 1.0, "#a50f15", "hesitant (0.9 - 1: nearly even)"))
"""The suggestions' colours by uncertainty (1 - margin of the two likeliest classes)."""


def write_suggestion_style(path: str, layer_name: str, class_field: str,
                           codes: dict[str, str]) -> bool:
    """Saves the default style of suggested places inside their GeoPackage: darker where the
    model hesitates more, the rank as a label, and ``class_field`` a drop-down of the model's
    classes (``codes``: name -> stored value)."""
    layer = QgsVectorLayer(f"{path}|layername={layer_name}", layer_name, "ogr")
    if not layer.isValid():
        return False
    ranges = []
    for low, high, colour, label in SCORE_RANGES:
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setColor(QColor(colour))
        symbol.setSize(3.0)
        ranges.append(QgsRendererRange(low, high, symbol, label))
    layer.setRenderer(QgsGraduatedSymbolRenderer("score", ranges))
    labels = QgsPalLayerSettings()
    labels.fieldName = "rank"
    labels.enabled = True
    layer.setLabeling(QgsVectorLayerSimpleLabeling(labels))
    layer.setLabelsEnabled(True)
    set_class_choices(layer, class_field, codes)
    error = layer.saveStyleToDatabase(layer_name, "Land Cover U-Net places to label", True, "")
    return not error


def write_categories_style(vector_path: str, class_map: ClassMap) -> bool:
    """Saves the class categories (as :func:`apply_class_categories`) as the default style
    inside the GeoPackage of class polygons, which QGIS loads whenever the layer is opened (a
    ``.qml`` beside it would share its name with the class raster's)."""
    layer = QgsVectorLayer(vector_path, "classes", "ogr")
    if not layer.isValid():
        return False
    apply_class_categories(layer, class_map)
    error = layer.saveStyleToDatabase("classes", "Land Cover U-Net classes", True, "")
    return not error


class ClassCategoriesStyler(QgsProcessingLayerPostProcessorInterface):
    """Post-processor that styles loaded class polygons with :func:`apply_class_categories`."""

    def __init__(self, class_map: ClassMap) -> None:
        super().__init__()
        self.class_map = class_map

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        if isinstance(layer, QgsVectorLayer):
            apply_class_categories(layer, self.class_map)

    @classmethod
    def attach(cls, context, output_path: str, class_map: ClassMap,
               layer_name: str | None = None) -> None:
        """Styles ``output_path`` when Processing loads it on completion (and names it)."""
        attach_styler(context, output_path, layer_name, cls(class_map))


class SavedStyleLoader(QgsProcessingLayerPostProcessorInterface):
    """Post-processor that gives a loaded GeoPackage layer the default style saved inside it
    (Processing loads results without it): the accuracy sample's and the suggestions' colours
    and class drop-downs."""

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        _, loaded = layer.loadDefaultStyle()
        if not loaded:
            feedback.pushWarning(f"{layer.name()}: its saved style could not be loaded.")

    @classmethod
    def attach(cls, context, output_path: str, layer_name: str | None = None) -> None:
        """Styles ``output_path`` when Processing loads it on completion (and names it)."""
        attach_styler(context, output_path, layer_name, cls())


_KEPT: list[QgsProcessingLayerPostProcessorInterface] = []
"""Every post-processor attached: Processing does not own them, so they must outlive the run."""


def attach_styler(context, output_path: str, layer_name: str | None,
                  styler: QgsProcessingLayerPostProcessorInterface) -> None:
    """Has ``styler`` style ``output_path`` (and names it) when Processing loads it on
    completion; nothing when it will not be loaded. The styler is kept alive here: Processing
    does not own post-processors."""
    if not context.willLoadLayerOnCompletion(output_path):
        return
    details = context.layerToLoadOnCompletionDetails(output_path)
    if layer_name:
        details.name = layer_name
    _KEPT.append(styler)
    details.setPostProcessor(styler)
