"""Runs inside a real QGIS desktop (``qgis --code``) started where some packages are hidden
(test/hide_modules): records the message-bar warnings the plugin pushed on load, presses the
warning's "Check installation" button, reads the page it opens, presses Copy and reads the
clipboard, and saves a screenshot of the page.

The job (a JSON file named by LANDCOVERUNET_DESKTOP_JOB) says where to write the findings and the
screenshot. QGIS is then closed without saving anything.
"""
import faulthandler
import json
import os
import traceback

from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QLabel, QPlainTextEdit, QPushButton
from qgis.utils import iface

job = json.load(open(os.environ["LANDCOVERUNET_DESKTOP_JOB"]))
findings = {"errors": [], "warnings": []}


def settle() -> None:
    for _ in range(20):
        QApplication.processEvents()


def run_job() -> None:
    faulthandler.dump_traceback_later(120, exit=True)
    try:
        import qgis.utils

        findings["plugin_loaded"] = "landcoverunet" in qgis.utils.active_plugins
        ours = []
        for item in iface.messageBar().items():
            buttons = [b.text() for b in item.findChildren(QPushButton)]
            findings["warnings"].append({"title": item.title(), "text": item.text(),
                                         "level": int(item.level()), "buttons": buttons})
            if item.title() == "Land Cover U-Net":
                ours.append(item)
        if ours:
            check = next(b for b in ours[0].findChildren(QPushButton)
                         if b.text() == "Check installation")
            check.click()
            settle()
            page = next(w for w in QApplication.topLevelWidgets()
                        if w.objectName() == "landcoverunet_installation_dialog")
            findings["page_visible"] = page.isVisible()
            findings["page_text"] = page.findChild(QLabel, "landcoverunet_missing").text()
            command = page.findChild(QPlainTextEdit, "landcoverunet_install_command")
            findings["command"] = command.toPlainText()
            QApplication.clipboard().clear()
            page.findChild(QPushButton, "landcoverunet_copy_command").click()
            settle()
            findings["clipboard"] = QApplication.clipboard().text()
            if job.get("screenshot"):
                page.grab().save(job["screenshot"])
            page.close()
    except Exception:
        findings["errors"].append(traceback.format_exc())
    with open(job["findings"], "w") as handle:
        json.dump(findings, handle, indent=2)
    os._exit(0)


QTimer.singleShot(2000, run_job)
