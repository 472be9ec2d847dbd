"""The whole chain on the bundled sample, through qgis_process.bin, as an analyst would batch it.

Builds masks from the training polygons, trains a U-Net (a few minutes on 2 CPU cores),
classifies the scene, assesses it against held-out reference polygons, suggests 30 places to
label next, draws the map, and prints where each output is and the accuracy figures. Run through scripts/demo.sh.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample")
PROFILE = os.path.join(ROOT, "build", "qgis-profile")  # keeps the user's QGIS profile untouched

# The algorithm's defaults (at most 30 epochs, then the final fit), with a fixed seed.
TRAINING = {"SEED": 1}


def qgis_process(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_OPTS="",
               QGIS_CUSTOM_CONFIG_PATH=PROFILE)
    return subprocess.run(["qgis_process.bin", *args], capture_output=True, text=True, env=env)


def run(algorithm: str, **parameters) -> dict:
    """Runs one algorithm with ``qgis_process.bin --json run`` and returns its results."""
    started = time.time()
    print(f"- {algorithm} ...", end="", flush=True)
    done = qgis_process("--json", "run", f"landcoverunet:{algorithm}", "--",
                        *(f"{key}={value}" for key, value in parameters.items()))
    if done.returncode != 0:
        print(" failed\n" + done.stdout[-4000:] + done.stderr[-4000:])
        sys.exit(1)
    print(f" {time.time() - started:.0f} s")
    return json.loads(done.stdout[done.stdout.find("{"):])["results"]


def main() -> int:
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "out", "demo"))
    os.makedirs(out, exist_ok=True)
    os.makedirs(PROFILE, exist_ok=True)
    enabled = qgis_process("plugins", "enable", "landcoverunet")
    said = enabled.stdout + enabled.stderr
    if "Enabled landcoverunet" not in said and "already enabled" not in said:
        print(enabled.stdout + enabled.stderr)
        return 1
    image = os.path.join(SAMPLE, "nc_landsat7_2000.tif")
    print(f"Land Cover U-Net demo on {image}")

    masks = run("buildmasks", INPUT=image,
                VECTORS=os.path.join(SAMPLE, "training_polygons.gpkg"), CLASS_FIELD="id",
                CLASS_NAME_FIELD="label", OUTPUT=os.path.join(out, "training_mask.tif"),
                OUTPUT_CLASS_MAP=os.path.join(out, "classes.json"))
    training = run("trainunet", INPUT=image, MASK=masks["OUTPUT"],
                   OUTPUT_MODEL=os.path.join(out, "model.keras"),
                   OUTPUT_REPORT=os.path.join(out, "training_report.html"), **TRAINING)
    classified = run("classifyraster", INPUT=image, MODEL=training["OUTPUT_MODEL"],
                     OUTPUT=os.path.join(out, "classified.tif"),
                     OUTPUT_CONFIDENCE=os.path.join(out, "confidence.tif"))
    accuracy = run("assessaccuracy", INPUT=classified["OUTPUT"],
                   REFERENCE=os.path.join(SAMPLE, "reference_polygons.gpkg"), CLASS_FIELD="id",
                   CLASS_NAME_FIELD="label",
                   OUTPUT_REPORT=os.path.join(out, "accuracy_report.html"),
                   OUTPUT_TABLE=os.path.join(out, "accuracy.csv"))
    suggestions = run("suggestlabels", INPUT=image, MODEL=training["OUTPUT_MODEL"],
                      LABELS=os.path.join(SAMPLE, "training_polygons.gpkg"), CLASS_FIELD="id",
                      OUTPUT=os.path.join(out, "places_to_label.gpkg"))

    from landcoverunet.backend.classify.picture import render_class_map

    picture = render_class_map(classified["OUTPUT"], os.path.join(out, "classified_map.png"),
                               "Land cover of the sample scene (U-Net)")
    print("\nOutputs:")
    for label, path in (("training mask", masks["OUTPUT"]), ("class map (JSON)",
                        masks["OUTPUT_CLASS_MAP"]), ("model", training["OUTPUT_MODEL"]),
                        ("training report", training["OUTPUT_REPORT"]),
                        ("classified raster", classified["OUTPUT"]),
                        ("confidence raster", classified["OUTPUT_CONFIDENCE"]),
                        ("accuracy report", accuracy["OUTPUT_REPORT"]),
                        ("accuracy table", accuracy["OUTPUT_TABLE"]), ("map picture", picture),
                        ("places to label", suggestions["OUTPUT"])):
        print(f"  {label:18} {path}")
    print("\nAccuracy against the held-out reference polygons:")
    print(f"  overall accuracy {accuracy['OVERALL_ACCURACY']:.3f}   kappa {accuracy['KAPPA']:.3f}"
          f"   mIoU {accuracy['MIOU']:.3f}   mean F1 {accuracy['MEAN_F1']:.3f}")
    print(f"  training's estimate on polygons it never saw: mIoU {training['VAL_MIOU']:.3f} "
          f"({training['EPOCHS_RUN']} validated epochs, then the final fit on all polygons)")
    print("  (they score different things: the estimate, whole digitised polygons held out of "
          "training;\n   the reference, single labelled pixels across the scene, at least 100 m "
          "from any training polygon)")
    print(f"\nWhere to digitise next: {suggestions['SITES']} places in\n  "
          f"{suggestions['OUTPUT']}:\n  open it in QGIS, pick each point's class in the 'id' "
          "drop-down, then Build training masks\n  with the polygons and these points, and "
          "train again (README, Workflow).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
