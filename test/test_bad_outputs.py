"""Outputs that would destroy inputs, clash, carry the wrong extension or cannot be written.

Every case runs one of the algorithms on real files (the bundled sample scene, its polygons
as GeoPackage and shapefile, a mask, a model) and asserts: a clear message, no traceback, no
new file, and every input and earlier output unchanged byte for byte (hashed before and after).
The checks run before any work, so each case takes a fraction of a second in process; every case
also runs through qgis_process, where the user would read a traceback if one escaped.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from osgeo import gdal
from qgis import processing
from qgis.core import QgsProcessingException
from fixtures_classify import make_test_model

from support import ROOT, qgis_process, snapshot

SAMPLE = ROOT / "resources" / "sample"
OVERWRITE = "would overwrite the input"
BELONGS = "belongs to the input"
BOTH = "would both be written to"
UNWRITABLE = "cannot write"


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A folder of real inputs, and an earlier output in out/."""
    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput

    folder = tmp_path_factory.mktemp("bad_outputs")
    for name in ("nc_landsat7_2000.tif", "training_polygons.gpkg", "reference_polygons.gpkg"):
        shutil.copy(SAMPLE / name, folder / name)
    os.rename(folder / "nc_landsat7_2000.tif", folder / "image.tif")
    gdal.VectorTranslate(str(folder / "labels.shp"), str(folder / "training_polygons.gpkg"))
    result = build_mask(str(folder / "image.tif"),
                        [VectorInput(str(folder / "training_polygons.gpkg"))],
                        str(folder / "mask.tif"), class_field="id", class_name_field="label",
                        class_map_json=str(folder / "classes.json"))
    assert len(result.class_map) == 7
    make_test_model(folder / "model.keras",
                    bands=gdal.Open(str(folder / "image.tif")).RasterCount, classes=7)
    (folder / "out").mkdir()
    shutil.copy(folder / "mask.tif", folder / "out" / "earlier.tif")
    os.symlink(folder / "image.tif", folder / "alias.tif")
    (folder / "sub").mkdir()
    (folder / "folder.tif").mkdir()
    (folder / "folder.gpkg").mkdir()
    gdal.BuildVRT(str(folder / "stack.vrt"), [str(folder / "image.tif")]).FlushCache()
    return folder


@pytest.fixture(scope="module")
def unwritable(tmp_path_factory) -> Path:
    """A folder no one may write into: sysfs for root (which ignores permissions), a folder
    without write permission for anyone else."""
    if os.geteuid() == 0:
        folder = Path("/sys/landcoverunet-test")
        parent = folder.parent
    else:
        parent = tmp_path_factory.mktemp("read_only")
        parent.chmod(0o555)
        folder = parent / "landcoverunet-test"
    with pytest.raises(OSError):
        open(parent / "landcoverunet-probe", "x").close()
    yield folder
    if os.geteuid() != 0:
        parent.chmod(0o755)


def cases(ws: Path, unwritable: Path) -> list[tuple[str, dict, str]]:
    """(algorithm, parameters, expected message) of every bad-output case."""
    image, mask, out = str(ws / "image.tif"), str(ws / "mask.tif"), ws / "out"
    gpkg, shp, ref = str(ws / "training_polygons.gpkg"), str(ws / "labels.shp"), \
        str(ws / "reference_polygons.gpkg")
    model, json_map = str(ws / "model.keras"), str(ws / "classes.json")
    masks = dict(INPUT=image, VECTORS=[gpkg], CLASS_FIELD="id")
    train = dict(INPUT=image, MASK=mask, OUTPUT_MODEL=str(out / "m.keras"), EPOCHS=1)
    classify = dict(INPUT=image, MODEL=model, OUTPUT=str(out / "c.tif"))
    assess = dict(INPUT=mask, REFERENCE=ref, CLASS_FIELD="id",
                  OUTPUT_REPORT=str(out / "a.html"))
    return [
        ("buildmasks", {**masks, "OUTPUT": image}, OVERWRITE + r" INPUT"),
        ("buildmasks", {**masks, "OUTPUT": gpkg}, OVERWRITE + r" VECTORS"),
        ("buildmasks", {**masks, "VECTORS": [shp], "OUTPUT": str(ws / "labels.dbf")},
         BELONGS + " VECTORS"),
        ("buildmasks", {**masks, "OUTPUT": str(ws / "alias.tif")}, OVERWRITE + " INPUT"),
        ("buildmasks", {**masks, "OUTPUT": str(ws / "sub" / ".." / "image.tif")},
         OVERWRITE + " INPUT"),
        ("buildmasks", {**masks, "OUTPUT": str(out / "m.png")}, r"GeoTIFF; give it the "
         r"extension \.tif or \.tiff"),
        ("buildmasks", {**masks, "OUTPUT": str(out / "m.gpkg")}, r"\.tif or \.tiff"),
        ("buildmasks", {**masks, "CLASS_MAP": json_map, "OUTPUT": str(out / "m.tif"),
                        "OUTPUT_CLASS_MAP": json_map}, OVERWRITE + " CLASS_MAP"),
        ("buildmasks", {**masks, "CLASS_MAP": mask, "OUTPUT": str(ws / "mask_features.tif")},
         BELONGS + " CLASS_MAP"),
        ("buildmasks", {**masks, "OUTPUT": str(out / "m.tif"),
                        "OUTPUT_CLASS_MAP": str(out / "m.tif")}, BOTH),
        ("buildmasks", {**masks, "OUTPUT": str(out / "m.tif"),
                        "OUTPUT_CLASS_MAP": str(out / "m.txt")}, r"JSON; give it"),
        ("buildmasks", {**masks, "OUTPUT": str(ws / "folder.tif")}, "is a folder"),
        ("buildmasks", {**masks, "OUTPUT": str(unwritable / "m.tif")}, UNWRITABLE),
        ("buildmasks", {**masks, "OUTPUT": str(ws / "image.tif" / "m.tif")}, "is a file"),
        ("trainunet", {**train, "OUTPUT_REPORT": image}, OVERWRITE + " INPUT"),
        ("trainunet", {**train, "OUTPUT_REPORT": mask}, OVERWRITE + " MASK"),
        ("trainunet", {**train, "OUTPUT_MODEL": model, "INIT_MODEL": model},
         OVERWRITE + " INIT_MODEL"),
        ("trainunet", {**train, "OUTPUT_MODEL": str(out / "m.h5")}, r"\.keras"),
        ("trainunet", {**train, "OUTPUT_REPORT": str(out / "m_epochs.csv")}, BOTH),
        ("trainunet", {**train, "OUTPUT_REPORT": str(out / "r.txt")}, r"HTML page"),
        ("trainunet", {**train, "TENSORBOARD_DIR": image}, OVERWRITE + " INPUT"),
        ("trainunet", {**train, "OUTPUT_MODEL": str(unwritable / "m.keras")}, UNWRITABLE),
        ("trainunet", {**train, "OUTPUT_REPORT": str(unwritable / "r.html")}, UNWRITABLE),
        ("trainunet", {**train, "EXTRA_IMAGES": [image], "EXTRA_MASKS": [mask],
                       "OUTPUT_REPORT": str(ws / "image.tif.aux.xml")}, BELONGS),
        ("classifyraster", {**classify, "OUTPUT": image}, OVERWRITE + " INPUT"),
        ("classifyraster", {**classify, "OUTPUT": model}, OVERWRITE + " MODEL"),
        ("classifyraster", {**classify, "OUTPUT": str(ws / "alias.tif")}, OVERWRITE),
        ("classifyraster", {**classify, "OUTPUT_CONFIDENCE": str(out / "c.tif")}, BOTH),
        ("classifyraster", {**classify, "OUTPUT_PROBABILITIES": str(out / "c.tif")}, BOTH),
        ("classifyraster", {**classify, "OUTPUT": str(out / "c.png")}, r"\.tif or \.tiff"),
        ("classifyraster", {**classify, "OUTPUT_PROBABILITIES": image + ".aux.xml"}, BELONGS),
        ("classifyraster", {**classify, "INPUT": str(ws / "stack.vrt"), "OUTPUT": image},
         BELONGS + " INPUT"),
        ("classifyraster", {**classify, "OUTPUT": str(unwritable / "c.tif")}, UNWRITABLE),
        ("classifyraster", {**classify, "OUTPUT_CONFIDENCE": str(unwritable / "k.tif")},
         UNWRITABLE),
        ("assessaccuracy", {**assess, "OUTPUT_REPORT": mask}, OVERWRITE + " INPUT"),
        ("assessaccuracy", {**assess, "OUTPUT_TABLE": ref}, OVERWRITE + " REFERENCE"),
        ("assessaccuracy", {**assess, "REFERENCE": shp, "OUTPUT_TABLE": str(ws / "labels.shx")},
         BELONGS + " REFERENCE"),
        ("assessaccuracy", {**assess, "OUTPUT_TABLE": str(out / "a.html")}, BOTH),
        ("assessaccuracy", {**assess, "OUTPUT_REPORT": str(out / "a.pdf")}, r"HTML page"),
        ("assessaccuracy", {**assess, "OUTPUT_TABLE": str(out / "a.xlsx")}, r"CSV table"),
        ("assessaccuracy", {**assess, "OUTPUT_REPORT": str(unwritable / "a.html")},
         UNWRITABLE),
        ("assessaccuracy", {**assess, "REFERENCE": mask, "OUTPUT_REPORT": str(
            ws / "mask_features.tif")}, BELONGS + " (INPUT|REFERENCE)"),
        ("assessaccuracy", {**assess, "OUTPUT_AREA_TABLE": ref}, OVERWRITE + " REFERENCE"),
        ("assessaccuracy", {**assess, "OUTPUT_AREA_TABLE": str(out / "a.html")}, BOTH),
        ("accuracysample", dict(INPUT=mask, OUTPUT=str(unwritable / "s.gpkg")), UNWRITABLE),
        ("accuracysample", dict(INPUT=mask, OUTPUT=str(out / "s.shp")), r"extension \.gpkg"),
        ("accuracysample", dict(INPUT=mask, OUTPUT=str(ws / "folder.gpkg")), "is a folder"),
        ("classifybatch", dict(INPUTS=[image], MODEL=model, OUTPUT_FOLDER=image),
         "is a file|would overwrite the input"),
        ("classifybatch", dict(INPUTS=[image], MODEL=model,
                               OUTPUT_FOLDER=str(unwritable / "maps")), UNWRITABLE),
        ("classifyraster", {**classify, "OUTPUT_VECTOR": str(out / "v.shp")}, r"\.gpkg"),
    ]


def test_bad_outputs_are_refused_before_any_work(plugin, ws, unwritable):
    before = snapshot(ws)
    for algorithm, parameters, message in cases(ws, unwritable):
        with pytest.raises(QgsProcessingException, match=message) as error:
            processing.run(f"landcoverunet:{algorithm}", parameters)
        assert "Traceback" not in str(error.value)
        assert snapshot(ws) == before, f"{algorithm} {parameters} changed a file"
        assert not unwritable.exists()
    assert len(cases(ws, unwritable)) >= 40


@pytest.mark.slow
def test_no_traceback_through_qgis_process(qgis_process_ready, ws, unwritable):
    """Every case again as a batch user runs it (about 4 s each: QGIS starts every time)."""
    chosen = cases(ws, unwritable)
    before = snapshot(ws)
    for algorithm, parameters, message in chosen:
        arguments = []
        for key, value in parameters.items():
            for item in (value if isinstance(value, list) else [value]):
                arguments.append(f"{key}={item}")
        done = qgis_process("run", f"landcoverunet:{algorithm}", "--", *arguments, timeout=300)
        said = done.stdout + done.stderr
        assert done.returncode != 0, said
        assert "Traceback" not in said, said
        assert re.search(message, said), said
        assert snapshot(ws) == before


def test_clean_up_never_raises_and_stale_partials_go(tmp_path, unwritable):
    from landcoverunet.backend.core.errors import UserError
    from landcoverunet.backend.core.raster_io import atomic_output, remove_with_sidecars
    from landcoverunet.backend.core.staging import OutputSet

    remove_with_sidecars(str(tmp_path))           # a folder: cannot be removed, must not raise
    remove_with_sidecars(str(unwritable / "x.tif"))
    assert tmp_path.is_dir()
    with pytest.raises(UserError, match="Cannot create the folder"):
        with atomic_output(str(unwritable / "x.tif")):
            pass
    stale = [tmp_path / ".c.partial-0123abcd.tif", tmp_path / ".c.partial-0123abcd.tif.aux.xml"]
    other = tmp_path / ".other.partial-0123abcd.tif"
    for path in stale + [other]:
        path.write_text("left by a killed run")
    with atomic_output(str(tmp_path / "c.tif")) as temporary:
        gdal.GetDriverByName("GTiff").Create(temporary, 3, 2).FlushCache()
    assert not any(p.exists() for p in stale) and other.exists()
    assert gdal.Open(str(tmp_path / "c.tif")).RasterXSize == 3
    with pytest.raises(UserError, match="was not written correctly"):  # read back: not a TIFF
        with atomic_output(str(tmp_path / "c.tif")) as temporary:
            Path(temporary).write_text("cut short")
    assert gdal.Open(str(tmp_path / "c.tif")).RasterXSize == 3

    outputs = OutputSet()                          # a folder where a result must go: nothing moves
    gdal.GetDriverByName("GTiff").Create(outputs.temporary(str(tmp_path / "c.tif")), 5, 2
                                         ).FlushCache()
    (tmp_path / "blocked.csv").mkdir()
    Path(outputs.temporary(str(tmp_path / "blocked.csv"))).write_text("log")
    with pytest.raises(UserError, match="is a folder"):
        outputs.commit()
    assert gdal.Open(str(tmp_path / "c.tif")).RasterXSize == 3
    assert not [p for p in os.listdir(tmp_path) if ".partial-" in p and "other" not in p]


def test_two_attempts_at_one_part_both_finish_and_the_file_never_goes(tmp_path):
    """A batch part may be written twice at once (dask reruns a task whose worker died): the
    second attempt leaves the first one's temporary alone, and each move replaces the file in
    one step, so a reader (the stitching client) never finds it missing or half-written."""
    from landcoverunet.backend.core.raster_io import atomic_output

    def write(path, width: int) -> None:  # a real GeoTIFF: what is moved is read back first
        gdal.GetDriverByName("GTiff").Create(str(path), width, 1).FlushCache()

    def width() -> int:
        return gdal.Open(str(part)).RasterXSize

    part = tmp_path / "part.tif"
    write(part, 1)
    (tmp_path / "part.tif.aux.xml").write_text("<PAMDataset/>")
    with atomic_output(str(part), clear_stale=False) as first:
        write(first, 2)
        with atomic_output(str(part), clear_stale=False) as second:
            write(second, 3)
            assert Path(first).exists() and width() == 1
        assert width() == 3 and Path(first).exists()
    assert width() == 2
    assert sorted(os.listdir(tmp_path)) == ["part.tif"]
