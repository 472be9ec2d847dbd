"""What the desktop shows when optional packages are missing: one message-bar warning at load,
and the "Check installation" page it opens (what is missing, for which algorithm, the command
for this system and a Copy button).

The findings come from ``backend/core/dependencies.py`` (no QGIS, cheap: nothing is imported);
this module only lays them out.
"""
from __future__ import annotations

import html
from typing import Callable

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtWidgets import (QApplication, QDialog, QHBoxLayout, QLabel, QPlainTextEdit,
                                 QPushButton, QVBoxLayout, QWidget)

from ..backend.core.dependencies import (Dependency, install_command, missing, readme_link,
                                        where_to_run)

TITLE = "Land Cover U-Net"
CHECK_BUTTON = "Check installation"


def algorithm_names(dependency: Dependency) -> list[str]:
    """The display names of the algorithms that need ``dependency``, as the toolbox shows them."""
    registry = QgsApplication.processingRegistry()
    names = []
    for name in dependency.needed_by:
        algorithm = registry.algorithmById(f"landcoverunet:{name}")
        names.append(algorithm.displayName() if algorithm is not None else name)
    return names


def warning_text(absent: list[Dependency]) -> str:
    """The message bar's one line: what is missing and which algorithms cannot run."""
    needing = []
    for dependency in absent:
        needing += [n for n in algorithm_names(dependency) if n not in needing]
    return (f"missing {', '.join(d.label for d in absent)}: {', '.join(needing)} will not run "
            "until installed.")


def push_missing_warning(iface, open_check: Callable[[], None]) -> list[Dependency]:
    """Pushes one warning with a "Check installation" button when packages are missing;
    returns what is missing (nothing pushed when nothing is)."""
    absent = missing()
    if not absent:
        return absent
    bar = iface.messageBar()
    item = bar.createMessage(TITLE, warning_text(absent))
    button = QPushButton(CHECK_BUTTON, item)
    button.setObjectName("landcoverunet_check_installation")
    button.clicked.connect(open_check)
    item.layout().addWidget(button)
    bar.pushWidget(item, Qgis.Warning)
    return absent


class InstallationDialog(QDialog):
    """What is missing, for which algorithms, and the command that installs it, with Copy."""

    def __init__(self, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setObjectName("landcoverunet_installation_dialog")
        self.setWindowTitle(f"{TITLE}: check installation")
        self.setMinimumWidth(640)
        layout = QVBoxLayout(self)
        absent = missing()
        self.command = install_command(absent) if absent else ""
        summary = QLabel(self.summary_html(absent))
        summary.setObjectName("landcoverunet_missing")
        summary.setWordWrap(True)
        summary.setOpenExternalLinks(True)
        layout.addWidget(summary)
        self.command_box = QPlainTextEdit(self.command)
        self.command_box.setObjectName("landcoverunet_install_command")
        self.command_box.setReadOnly(True)
        self.command_box.setMaximumHeight(90)
        self.command_box.setVisible(bool(absent))
        layout.addWidget(self.command_box)
        link = readme_link()
        more = QLabel("More: " + (f'<a href="{link}">{html.escape(link)}</a>' if "://" in link
                                  else html.escape(link)))
        more.setOpenExternalLinks(True)
        layout.addWidget(more)
        buttons = QHBoxLayout()
        buttons.addStretch()
        copy = QPushButton("Copy")
        copy.setObjectName("landcoverunet_copy_command")
        copy.setEnabled(bool(absent))
        copy.clicked.connect(self.copy)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons.addWidget(copy)
        buttons.addWidget(close)
        layout.addLayout(buttons)

    @staticmethod
    def summary_html(absent: list[Dependency]) -> str:
        """The page's text: each missing package, why and for which algorithms, then where
        to run the command."""
        if not absent:
            return "Everything the algorithms need is installed."
        rows = "".join(
            f"<li><b>{html.escape(d.label)}</b>: {html.escape(d.purpose)}.<br>Needed by: "
            f"{html.escape(', '.join(algorithm_names(d)))}</li>" for d in absent)
        needed = {name for d in absent for name in d.needed_by}
        provider = QgsApplication.processingRegistry().providerById("landcoverunet")
        free = [a.displayName() for a in (provider.algorithms() if provider else [])
                if a.name() not in needed]
        works = f"{', '.join(free)} work without them. " if free else ""
        return (f"<p>Missing from the Python that QGIS runs:</p><ul>{rows}</ul>"
                f"<p>{html.escape(works)}Run this in {html.escape(where_to_run())}, then restart "
                "QGIS:</p>")

    def copy(self) -> None:
        """Puts the command on the clipboard."""
        QApplication.clipboard().setText(self.command)
