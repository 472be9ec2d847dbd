"""What every algorithm of the plugin shares: naming, help, icon, errors and progress.

Algorithms stay thin: they translate parameters, call the backend through :meth:`execute`, and
return outputs. A backend :class:`~..backend.errors.UserError` becomes a
``QgsProcessingException``, so the analyst reads a message, never a traceback.
"""
from __future__ import annotations

import traceback
from typing import Any

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtGui import QIcon

from ..backend.errors import Cancelled, UserError


class FeedbackProgress:
    """Adapts a QgsProcessingFeedback to the backend's Progress interface."""

    def __init__(self, feedback: QgsProcessingFeedback | None) -> None:
        self.feedback = feedback or QgsProcessingFeedback()

    def set_fraction(self, fraction: float) -> None:
        self.feedback.setProgress(100.0 * min(max(fraction, 0.0), 1.0))

    def info(self, message: str) -> None:
        self.feedback.pushInfo(message)

    def warn(self, message: str) -> None:
        self.feedback.pushWarning(message)

    def cancelled(self) -> bool:
        return self.feedback.isCanceled()


class LandCoverAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set NAME, DISPLAY_NAME, HELP and implement :meth:`execute`."""

    NAME = ""
    DISPLAY_NAME = ""
    HELP = ""

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802
        return self.DISPLAY_NAME

    def shortHelpString(self) -> str:  # noqa: N802
        return self.HELP

    def icon(self) -> QIcon:
        from .provider import ICON

        return QIcon(ICON)

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
        raise QgsProcessingException(message)

    def set_parameter_help(self, texts: dict[str, str]) -> None:
        """Gives each named parameter its help text (shown in the dialog and qgis_process)."""
        for name, text in texts.items():
            self.parameterDefinition(name).setHelp(text)

    def execute(self, parameters: dict, context, feedback) -> dict[str, Any]:
        """Does the algorithm's work; raise UserError for bad input."""
        raise NotImplementedError
