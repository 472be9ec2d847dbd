"""What every algorithm of the plugin shares: naming, groups, help, translation, icon, advanced
parameters, errors and progress.

Algorithms stay thin: they translate parameters, call the backend through :meth:`execute`, and
return outputs. A backend :class:`~..backend.core.errors.UserError` becomes a
``QgsProcessingException``, so the analyst reads a message, never a traceback. Every
user-visible string of an algorithm (name, group, help, parameter and output descriptions,
choice labels) goes through :meth:`LandCoverAlgorithm.tr`, so the plugin can be translated.
"""
from __future__ import annotations

import html
import re
import traceback
from typing import Any

from qgis.core import (QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback,
                       QgsProcessingParameterDefinition, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile, QgsProcessingParameterMapLayer,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString,
                       QgsProcessingUtils)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..backend.core.errors import Cancelled, UserError, os_reason
from ..backend.core.kept_outputs import beside, is_temporary
from ..backend.core.output_checks import PlannedOutput, check_outputs
from ..backend.core.progress import TimeLeft
from ..backend.core.version import repository_url
from ..backend.masks.features import VectorInput
from ..gui.icon import algorithm_icon

GROUPS = {"training": "1. Training", "mapping": "2. Mapping", "accuracy": "3. Accuracy"}
"""Processing groups (id: name). The toolbox sorts groups by name, so the numbers make them read
in the order of the work (train, then map, then check the map)."""

PARAMETER_ID = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b")
"""A word that may be a parameter's id (LINE_WIDTH, MATCH): help names the dialog's label
instead, since the dialog never shows ids."""


class FeedbackProgress:
    """Adapts a QgsProcessingFeedback to the backend's Progress interface."""

    def __init__(self, feedback: QgsProcessingFeedback | None) -> None:
        self.feedback = feedback or QgsProcessingFeedback()
        self.time_left = TimeLeft()

    def set_fraction(self, fraction: float) -> None:
        self.feedback.setProgress(100.0 * min(max(fraction, 0.0), 1.0))
        words = self.time_left.update(fraction)
        if words:
            self.feedback.setProgressText(words)   # beside the bar, not in the log

    def info(self, message: str) -> None:
        self.feedback.pushInfo(message)

    def warn(self, message: str) -> None:
        self.feedback.pushWarning(message)

    def cancelled(self) -> bool:
        return self.feedback.isCanceled()


class LandCoverAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set NAME, DISPLAY_NAME, GROUP, HELP (and ADVANCED, the names of
    expert parameters) and implement :meth:`execute`."""

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = ""
    """A key of :data:`GROUPS`."""
    HELP = ""
    ADVANCED: tuple[str, ...] = ()
    """Parameters shown under "Advanced parameters" (QGIS core algorithms do the same), so the
    dialog opens with the few choices that matter."""

    def tr(self, text: str) -> str:
        """Translates a user-visible string (context ``LandCoverUNet``)."""
        return QCoreApplication.translate("LandCoverUNet", text)

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802
        return self.tr(self.DISPLAY_NAME)

    def group(self) -> str:
        return self.tr(GROUPS[self.GROUP])

    def groupId(self) -> str:  # noqa: N802
        return self.GROUP

    def shortHelpString(self) -> str:  # noqa: N802
        """The help, with parameter ids replaced by their labels and escaped: QGIS shows it as
        HTML, where "<name>.cancelled.keras" would lose "<name>"."""
        return self.for_people(self.tr(self.HELP))

    def helpUrl(self) -> str:  # noqa: N802
        """This algorithm's section of docs/algorithms.md on the plugin's public repository (the
        dialog's Help button, as core algorithms have)."""
        return f"{repository_url()}/blob/HEAD/docs/algorithms.md#{self.NAME}"

    def for_people(self, text: str) -> str:
        """``text`` as the dialog's help panel and tooltips should show it (HTML): each
        parameter id is the label the dialog shows, quoted, and ``<``, ``>``, ``&`` survive."""
        def label(match: re.Match) -> str:
            definition = self.parameterDefinition(match.group(0))
            return f"'{definition.description()}'" if definition is not None else match.group(0)

        return html.escape(PARAMETER_ID.sub(label, text), quote=False)

    def icon(self) -> QIcon:
        return QIcon(algorithm_icon(self.NAME))

    def addParameter(self, definition, createOutput: bool = True) -> bool:  # noqa: N802
        """Adds a parameter with its description and choices translated, flagged advanced when
        it is one of :attr:`ADVANCED`."""
        definition.setDescription(self.tr(definition.description()))
        if isinstance(definition, QgsProcessingParameterNumber) and \
                definition.dataType() == QgsProcessingParameterNumber.Double:
            show_decimals(definition)
        if isinstance(definition, QgsProcessingParameterEnum):
            definition.setOptions([self.tr(option) for option in definition.options()])
        if definition.name() in self.ADVANCED:
            definition.setFlags(definition.flags()
                                | QgsProcessingParameterDefinition.FlagAdvanced)
        return super().addParameter(definition, createOutput)

    def addOutput(self, definition) -> bool:  # noqa: N802
        """Adds an output with its description translated."""
        definition.setDescription(self.tr(definition.description()))
        return super().addOutput(definition)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def processAlgorithm(self, parameters: dict, context, feedback) -> dict:  # noqa: N802
        try:
            return self.execute(parameters, context, feedback)
        except (UserError, Cancelled) as error:
            # The backend's frames may hold open GDAL datasets; clearing them closes those now,
            # not whenever the traceback dies (GDAL objects that outlive QGIS crash the exit).
            traceback.clear_frames(error.__traceback__)
            message = str(error) if isinstance(error, UserError) else \
                "Cancelled by the user: no output was written."
        except OSError as error:
            traceback.clear_frames(error.__traceback__)
            where = f" '{error.filename}'" if error.filename else ""
            message = (f"The system refused to read or write{where}: {os_reason(error)}. Check "
                       "that the files exist, the folder is writable and the disk has space.")
        except MemoryError as error:
            traceback.clear_frames(error.__traceback__)
            message = ("Not enough memory. Close other programs, or use a smaller batch size, "
                       "tile size or extent.")
        raise QgsProcessingException(message)

    def image_file(self, parameters: dict, name: str, context, missing: str):
        """The raster layer of parameter ``name``, which must be a file GDAL reads (the backend
        opens it by path); ``missing`` is the error when none is chosen."""
        image = self.parameterAsRasterLayer(parameters, name, context)
        if image is None:
            raise UserError(missing)
        check_raster_file(image)
        return image

    def model_file(self, parameters: dict, name: str, context) -> str:
        """The path of the model file of parameter ``name`` (.keras or .onnx)."""
        model = self.parameterAsFile(parameters, name, context)
        if not model:
            raise UserError("Choose a model file (.keras) trained by 'Train U-Net' or exported "
                            "from one (.onnx).")
        return model

    def check_files(self, parameters: dict, context, outputs: list[PlannedOutput]) -> None:
        """Refuses, before any work, outputs that would overwrite any input of this algorithm
        (every layer and file parameter, with the files that come with it) or each other, that
        carry the wrong extension, or that cannot be written (see ``output_checks``).

        Each algorithm calls it with its resolved output paths, so the paths checked are the
        paths written.
        """
        check_outputs(outputs, self.input_paths(parameters, context))

    def input_paths(self, parameters: dict, context) -> list[tuple[str, str]]:
        """(parameter name, file) of everything this algorithm reads, from its definitions, so
        that no input can be forgotten."""
        found: list[tuple[str, str]] = []
        for definition in self.parameterDefinitions():
            name = definition.name()
            if definition.isDestination() or parameters.get(name) in (None, ""):
                continue
            if isinstance(definition, QgsProcessingParameterMultipleLayers):
                found += [(name, layer.source()) for layer in
                          self.parameterAsLayerList(parameters, name, context) or []]
            elif isinstance(definition, (QgsProcessingParameterRasterLayer,
                                         QgsProcessingParameterMapLayer)):
                layer = self.parameterAsLayer(parameters, name, context)
                if layer is not None:
                    found.append((name, layer.source()))
            elif isinstance(definition, QgsProcessingParameterFile):
                path = self.parameterAsFile(parameters, name, context)
                if path:
                    found.append((name, path))
        return found

    def output(self, name: str, path: str | None, kind: str, extensions: tuple[str, ...],
               companions: tuple[str, ...] = (), folder: bool = False) -> PlannedOutput:
        """A planned output labelled with its parameter's name and description."""
        definition = self.parameterDefinition(name)
        label = f"{name} ({definition.description()})" if definition is not None else name
        return PlannedOutput(label, path or "", kind, extensions, companions, folder)

    def keep_beside(self, path: str, input_path: str, suffix: str, extension: str,
                    feedback, companions=lambda path: ()) -> str:
        """``path``, or when it is a temporary file (QGIS's default for a destination that cannot
        be empty; QGIS deletes it when it closes, and 3.22 cannot take that choice away) a named
        file beside ``input_path`` instead (see ``kept_outputs.beside``), said in the log."""
        if not is_temporary(path, QgsProcessingUtils.tempFolder()):
            return path
        kept = beside(input_path, suffix, extension, companions)
        feedback.pushInfo(self.tr("Not a temporary file (QGIS deletes those when it closes): "
                                  "kept as {}").format(kept))
        return kept

    def set_parameter_help(self, texts: dict[str, str]) -> None:
        """Gives each named parameter its help text (shown in the dialog and qgis_process), and
        each number its allowed range: QGIS itself only says "Incorrect parameter value"."""
        for name, text in texts.items():
            definition = self.parameterDefinition(name)
            help_text = self.tr(text)
            if isinstance(definition, QgsProcessingParameterNumber) and allowed_range(definition):
                help_text += " " + self.tr(allowed_range(definition))
            definition.setHelp(self.for_people(help_text))

    def execute(self, parameters: dict, context, feedback) -> dict[str, Any]:
        """Does the algorithm's work; raise UserError for bad input."""
        raise NotImplementedError


def check_raster_file(layer) -> None:
    """Errors unless a raster layer is a file GDAL reads (not a WMS, a memory raster ...)."""
    if layer.providerType() != "gdal":
        raise UserError(f"'{layer.name()}' is not a raster file; save it as a GeoTIFF first.")


def vector_input(layer, context, feedback) -> VectorInput:
    """A vector layer as the backend reads it with OGR: its file and layer, or a GeoPackage copy
    where QGIS holds it otherwise (a memory layer, a selection, a subset, a web service), with
    the CRS the user set on the layer."""
    path, layer_name = QgsProcessingUtils.convertToCompatibleFormatAndLayerName(
        layer, False, layer.name(), ["gpkg", "shp", "geojson", "json", "sqlite", "gml"], "gpkg",
        context, feedback)
    crs = layer.crs()
    return VectorInput(path, layer_name or None, layer.name(),
                       crs.toWkt() if crs.isValid() else None)


def pick_field_of(definition: QgsProcessingParameterString, parent: str
                  ) -> QgsProcessingParameterString:
    """``definition`` (a field name) shown as a drop-down of the fields of the layer parameter
    ``parent`` (``gui/field_picker.py``), where QGIS 3.22's own field picker cannot serve:
    several label layers, or a reference that may be a raster."""
    package = __name__.split(".")[0]
    definition.setMetadata({"widget_wrapper": {
        "class": f"{package}.gui.field_picker.FieldPickerWrapper", "parent": parent}})
    return definition


def show_decimals(definition: QgsProcessingParameterNumber) -> None:
    """Shows a decimal number with the decimals its default needs and one more (its minimum's
    when that needs more and is not tiny), not QGIS's six (10.000000, 0.002000)."""
    def needed(value) -> int:
        text = f"{abs(float(value)):.6f}".rstrip("0")
        return len(text.split(".")[1]) if "." in text else 0

    decimals = needed(definition.defaultValue() or 0) + 1
    low = definition.minimum()
    if 0.001 <= abs(low) < UNBOUNDED:
        decimals = max(decimals, needed(low))
    metadata = dict(definition.metadata())
    wrapper = dict(metadata.get("widget_wrapper") or {})
    wrapper.setdefault("decimals", min(decimals, 6))
    metadata["widget_wrapper"] = wrapper
    definition.setMetadata(metadata)


UNBOUNDED = 1e15
"""Bounds beyond this are QGIS's "no limit" (the largest double or integer)."""


def allowed_range(definition: QgsProcessingParameterNumber) -> str:
    """A number parameter's allowed values in words ("Allowed: whole numbers 1 to 10000."), or
    "" when any number is allowed."""
    integer = definition.dataType() == QgsProcessingParameterNumber.Integer

    def shown(value: float) -> str:
        return str(int(value)) if integer else f"{value:g}"

    low, high = definition.minimum(), definition.maximum()
    has_low, has_high = abs(low) < UNBOUNDED, abs(high) < UNBOUNDED
    kind = "whole numbers " if integer else ""
    if has_low and has_high:
        return f"Allowed: {kind}{shown(low)} to {shown(high)}."
    if has_low:
        return f"Allowed: {kind}from {shown(low)}."
    if has_high:
        return f"Allowed: {kind}up to {shown(high)}."
    return "Allowed: whole numbers." if integer else ""
