"""A small progress/cancel interface the backend reports through.

The backend cannot see QGIS's ``QgsProcessingFeedback``; algorithms wrap it in an object with
these four methods, and tests or scripts use :class:`ConsoleProgress`.
"""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What long-running backend work reports to, and asks whether to stop."""

    def set_fraction(self, fraction: float) -> None:
        """Reports how much of the work is done, from 0 to 1."""

    def info(self, message: str) -> None:
        """Logs a line for the user."""

    def warn(self, message: str) -> None:
        """Logs a warning the user should read."""

    def cancelled(self) -> bool:
        """Whether the user has asked to stop."""


class ConsoleProgress:
    """Prints messages; never cancels. For scripts, benches and tests."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.messages: list[str] = []
        self.warnings: list[str] = []
        self.fraction = 0.0

    def set_fraction(self, fraction: float) -> None:
        self.fraction = fraction

    def info(self, message: str) -> None:
        self.messages.append(message)
        if not self.quiet:
            print(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if not self.quiet:
            print("WARNING:", message)

    def cancelled(self) -> bool:
        return False


class SubProgress:
    """Maps a step's 0..1 onto a slice [start, end] of a parent's progress."""

    def __init__(self, parent: Progress, start: float, end: float) -> None:
        self.parent, self.start, self.end = parent, start, end

    def set_fraction(self, fraction: float) -> None:
        self.parent.set_fraction(self.start + (self.end - self.start) * min(max(fraction, 0.0), 1.0))

    def info(self, message: str) -> None:
        self.parent.info(message)

    def warn(self, message: str) -> None:
        self.parent.warn(message)

    def cancelled(self) -> bool:
        return self.parent.cancelled()
