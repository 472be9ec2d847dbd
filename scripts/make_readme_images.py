"""Refreshes the pictures in docs/images/ from a demo run (bash scripts/demo.sh first).

Copies the map picture, takes the report pictures out of the HTML reports, and takes a
screenshot of real QGIS desktop (under Xvfb) classifying the sample with the demo's model, and
one of the places to label next over that map, with the class drop-down of the first.
    source scripts/env.sh && .venv/bin/python scripts/make_readme_images.py [demo folder]
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "docs", "images")
SAMPLE_IMAGE = os.path.join(ROOT, "resources", "sample", "nc_landsat7_2000.tif")


def report_pictures(html_path: str) -> dict[str, bytes]:
    """The PNG pictures embedded in one of the plugin's HTML reports, by their alt text."""
    with open(html_path, encoding="utf-8") as handle:
        html = handle.read()
    return {alt: base64.b64decode(data) for alt, data in re.findall(
        r"<img alt=['\"]([^'\"]*)['\"] src=['\"]data:image/png;base64,([^'\"]+)['\"]", html)}


def desktop_screenshot(model: str, target: str) -> None:
    """Classifies the sample in a real QGIS window and saves the main window as a picture."""
    folder = tempfile.mkdtemp(prefix="landcoverunet-screenshot-")
    job = {"algorithm": "landcoverunet:classifyraster",
           "parameters": {"INPUT": SAMPLE_IMAGE, "MODEL": model,
                          "OUTPUT": os.path.join(folder, "classified.tif")},
           "output": "OUTPUT", "findings": os.path.join(folder, "findings.json"),
           "screenshot": target}
    run_desktop(folder, "desktop_session.py", job, "1280x800")


def places_screenshot(model: str, target: str) -> None:
    """Where to digitise next in a real QGIS window: the places over the map and the class
    drop-down of the first one's form."""
    folder = tempfile.mkdtemp(prefix="landcoverunet-screenshot-")
    job = {"image": SAMPLE_IMAGE, "model": model, "class_field": "id", "folder": folder,
           "labels": os.path.join(ROOT, "resources", "sample", "training_polygons.gpkg"),
           "findings": os.path.join(folder, "findings.json"), "screenshot": target}
    run_desktop(folder, "desktop_suggest.py", job, "1500x950")


def run_desktop(folder: str, script: str, job: dict, screen: str) -> None:
    """Runs ``test/<script>`` with ``job`` in QGIS under Xvfb, with a fresh profile where the
    plugin is enabled; stops on any error the session reports."""
    settings = os.path.join(folder, "profiles", "profiles", "default", "QGIS")
    os.makedirs(settings)
    with open(os.path.join(settings, "QGIS3.ini"), "w") as handle:
        # no tip of the day nor version check: on a fresh profile they wait for a click
        handle.write("[PythonPlugins]\nlandcoverunet=true\n[qgis]\nshowTips=false\n"
                     "checkVersion=false\n[UI]\nUI\\showTips=false\n")
    with open(os.path.join(folder, "job.json"), "w") as handle:
        json.dump(job, handle)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["LANDCOVERUNET_DESKTOP_JOB"] = os.path.join(folder, "job.json")
    subprocess.run(["xvfb-run", "-a", "-s", f"-screen 0 {screen}x24", "qgis", "--nologo",
                    "--profiles-path", os.path.join(folder, "profiles"), "--code",
                    os.path.join(ROOT, "test", script)], env=env, check=True,
                   capture_output=True, timeout=300)
    with open(job["findings"]) as handle:
        findings = json.load(handle)
    if findings["errors"]:
        raise SystemExit("\n".join(findings["errors"]))
    shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    demo = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "out", "demo"))
    os.makedirs(IMAGES, exist_ok=True)
    shutil.copy(os.path.join(demo, "classified_map.png"), os.path.join(IMAGES, "classified_map.png"))
    training = report_pictures(os.path.join(demo, "training_report.html"))
    for name, alt in (("training_curves.png", "curves"),
                      ("training_confusion.png", "confusion matrix"),
                      ("training_tiles.png", "validation tiles")):
        with open(os.path.join(IMAGES, name), "wb") as handle:
            handle.write(training[alt])
    accuracy = report_pictures(os.path.join(demo, "accuracy_report.html"))
    with open(os.path.join(IMAGES, "accuracy_confusion.png"), "wb") as handle:
        handle.write(next(iter(accuracy.values())))
    desktop_screenshot(os.path.join(demo, "model.keras"), os.path.join(IMAGES, "qgis_desktop.png"))
    places_screenshot(os.path.join(demo, "model.keras"),
                      os.path.join(IMAGES, "places_to_label.png"))
    print(f"pictures written to {IMAGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
