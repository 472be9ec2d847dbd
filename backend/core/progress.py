"""A small progress/cancel interface the backend reports through.

The backend cannot see QGIS's ``QgsProcessingFeedback``; algorithms wrap it in an object with
these four methods, and tests or scripts use :class:`ConsoleProgress`.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol


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


class TimeLeft:
    """How long the work still needs, from the share done and the time it took so far.

    QGIS's progress bar shows how much is done, not when it ends; an analyst who starts a
    ten-minute training run wants to know whether to wait or to come back. The estimate assumes
    the rest goes as fast as what was done, so it is said only once :data:`SETTLED` of the work
    and :data:`FIRST` seconds are behind, then at most every :data:`EVERY` seconds and only
    when the words change: QGIS writes each into the log as well.
    """

    SETTLED = 0.03
    FIRST = 10.0
    EVERY = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.said_at: float | None = None
        self.words = ""

    def update(self, fraction: float) -> str | None:
        """The words to show now ("About 4 min left"), or None when nothing new is to say."""
        now = self.clock()
        if fraction < self.SETTLED or fraction >= 1.0 or now - self.started < self.FIRST:
            return None
        if self.said_at is not None and now - self.said_at < self.EVERY:
            return None
        words = words_for(round((now - self.started) * (1.0 - fraction) / fraction))
        if words == self.words:
            return None
        self.said_at, self.words = now, words
        return words


def words_for(seconds: int) -> str:
    """'Under a minute left', 'About 4 min left', 'About 1 h 05 min left'."""
    if seconds < 60:
        return "Under a minute left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"About {minutes} min left"
    return f"About {minutes // 60} h {minutes % 60:02d} min left"
