"""Files a stranger hands the plugin: ONNX models that read other files, zip bombs, HDF5 weights
that link out, formulas as class names, and model files, checkpoints and masks that lie.

Every crafted file starts from a real one (the bundled sample scene, a model made for it, its
ONNX export, a mask built from its polygons) and changes what an attacker would. Each case runs
through qgis_process, as a user would run it, and must end in a clear message: no traceback, no
secret read, no output written, every input unchanged.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import stat
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr
from support import snapshot
from fixtures_classify import make_test_model

from support import ROOT, qgis_process, write_class_raster

from landcoverunet.backend.core.csv_cells import safe_cell
from landcoverunet.backend.core.errors import UserError
from landcoverunet.backend.core.feature_ids import METADATA_KEY as FEATURE_IDS_KEY
from landcoverunet.backend.model.keras_file import METADATA_ENTRY
from landcoverunet.backend.model.opened import open_model
from landcoverunet.backend.training.checkpoint import FILE, STATE, Checkpoint, checkpoint_folder

SAMPLE = ROOT / "resources" / "sample"
SECRET = b"landcoverunet-secret-0123456789abcdef"
ALTERED = "it was not made by this plugin or was altered"
FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "@SUM(1+1)", "+1+cmd", "-2+3", "\tTAB"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """The sample scene, a mask whose class names are formulas, a model and its ONNX export,
    and a secret file that nothing may read."""
    from landcoverunet.backend.export.onnx_file import export_onnx
    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput

    folder = tmp_path_factory.mktemp("hostile")
    shutil.copy(SAMPLE / "nc_landsat7_2000.tif", folder / "image.tif")
    shutil.copy(SAMPLE / "reference_polygons.gpkg", folder / "reference.gpkg")
    labels = gdal.VectorTranslate(str(folder / "labels.gpkg"),
                                  str(SAMPLE / "training_polygons.gpkg"))
    labels = None
    source = ogr.Open(str(folder / "labels.gpkg"), 1)
    layer = source.GetLayer(0)
    for feature in layer:
        feature.SetField("label", FORMULAS[feature.GetField("id") % len(FORMULAS)]
                         + str(feature.GetField("id")))
        layer.SetFeature(feature)
    source = None
    build_mask(str(folder / "image.tif"), [VectorInput(str(folder / "labels.gpkg"))],
               str(folder / "mask.tif"), class_field="id", class_name_field="label")
    bands = gdal.Open(str(folder / "image.tif")).RasterCount
    make_test_model(folder / "model.keras", bands=bands, classes=7)
    export_onnx(str(folder / "model.keras"), str(folder / "model.onnx"))
    (folder / "secret.txt").write_bytes(SECRET * 64)
    (folder / "models").mkdir()
    (folder / "out").mkdir()
    return folder


# --- ONNX ---------------------------------------------------------------------------------

def onnx_with(ws: Path, name: str, edit) -> str:
    """A copy of the exported ONNX model changed by ``edit(model)`` (written as bytes, so that
    onnx's own saving never touches external files)."""
    import onnx

    model = onnx.load(str(ws / "model.onnx"))
    edit(model)
    path = ws / "models" / name
    path.write_bytes(model.SerializeToString())
    return str(path)


def external(location: str):
    """Points the first weight (the normalisation factor, read by every pixel) at a file."""
    def edit(model):
        from onnx import TensorProto

        tensor = model.graph.initializer[0]
        size = len(tensor.raw_data)
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(size))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
    return edit


def node_changed(op_type: str | None = None, domain: str | None = None):
    def edit(model):
        node = next(n for n in model.graph.node if n.op_type == "Relu")
        if op_type:
            node.op_type = op_type
        if domain:
            node.domain = domain
    return edit


def with_function(model):
    function = model.functions.add()
    function.name, function.domain = "Steal", "com.evil"


def with_opset(model):
    opset = model.opset_import.add()
    opset.domain, opset.version = "com.evil", 1


def huge_window(model):
    for value_info in (model.graph.input[0], model.graph.output[0]):
        for axis in (2, 3):
            value_info.type.tensor_type.shape.dim[axis].dim_value = 10 ** 9


def huge_weight(model):
    model.graph.initializer[0].dims[:] = [10 ** 12]


def onnx_cases(ws: Path) -> list[tuple[str, str]]:
    relative = os.path.relpath(ws / "secret.txt", ws / "models")
    return [
        (onnx_with(ws, "absolute.onnx", external(str(ws / "secret.txt"))), "external data"),
        (onnx_with(ws, "relative.onnx", external(relative)), "external data"),
        (onnx_with(ws, "beside.onnx", external("secret.txt")), "external data"),
        (onnx_with(ws, "custom.onnx", node_changed(domain="com.microsoft")),
         "a custom operator \\(domain 'com.microsoft'\\)"),
        (onnx_with(ws, "foreign.onnx", node_changed(op_type="Elu")), "the operator 'Elu'"),
        (onnx_with(ws, "function.onnx", with_function), "functions in the model"),
        (onnx_with(ws, "opset.onnx", with_opset), "the operator domain 'com.evil'"),
        (onnx_with(ws, "window.onnx", huge_window), "a declared size of 1000000000"),
        (onnx_with(ws, "weight.onnx", huge_weight), "a weight larger than the file itself"),
    ]


# --- .keras archives ----------------------------------------------------------------------

def rewrite(ws: Path, name: str, change: dict, infos: dict | None = None) -> str:
    """A copy of the model archive with entries replaced (name -> bytes), deflated, and any
    ``infos`` (name -> ZipInfo) written as given."""
    path = ws / "models" / name
    with zipfile.ZipFile(ws / "model.keras") as original, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as copy:
        for entry in original.namelist():
            if entry not in change and entry not in (infos or {}):
                copy.writestr(entry, original.read(entry))
        for entry, data in change.items():
            copy.writestr(entry, data)
        for info, data in (infos or {}).values():
            copy.writestr(info, data)
    return str(path)


def metadata_with(ws: Path, name: str, **changes) -> str:
    with zipfile.ZipFile(ws / "model.keras") as archive:
        metadata = json.loads(archive.read(METADATA_ENTRY))
    return rewrite(ws, name, {METADATA_ENTRY: json.dumps({**metadata, **changes}).encode()})


def config_with(ws: Path, name: str, edit) -> str:
    with zipfile.ZipFile(ws / "model.keras") as archive:
        config = json.loads(archive.read("config.json"))
    edit(next(l for l in config["config"]["layers"] if l["class_name"] == "Conv2D"))
    return rewrite(ws, name, {"config.json": json.dumps(config).encode()})


def weights_with(ws: Path, name: str, edit) -> str:
    """A copy whose weights (HDF5) were changed by ``edit(h5py.File)``."""
    import h5py

    with zipfile.ZipFile(ws / "model.keras") as archive:
        data = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(data, "a") as weights:
        edit(weights)
    return rewrite(ws, name, {"model.weights.h5": data.getvalue()})


def first_dataset(weights) -> str:
    found = []
    weights.visititems(lambda n, o: found.append(n) if hasattr(o, "shape") else None)
    return found[0]


def external_dataset(secret: Path):
    def edit(weights):
        name = first_dataset(weights)
        shape, dtype = weights[name].shape, weights[name].dtype
        del weights[name]
        weights.create_dataset(name, shape, dtype, external=[(str(secret), 0, int(
            np.prod(shape)) * dtype.itemsize)])
    return edit


def external_link(secret: Path):
    def edit(weights):
        name = first_dataset(weights)
        del weights[name]
        weights[name] = __import__("h5py").ExternalLink(str(secret), "/data")
    return edit


def keras_cases(ws: Path) -> list[tuple[str, str]]:
    bomb = b"{" + b" " * (64 * 2 ** 20) + b"}"
    link = zipfile.ZipInfo("metadata.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    folder = ws / "models" / "folder.keras"
    folder.mkdir(exist_ok=True)
    bands = len(open_model(str(ws / "model.keras")).metadata.bands)
    return [
        (rewrite(ws, "bomb_metadata.keras", {METADATA_ENTRY: bomb}), "zip bomb"),
        (rewrite(ws, "bomb_weights.keras", {"model.weights.h5": bytes(64 * 2 ** 20)}),
         "zip bomb"),
        (rewrite(ws, "link.keras", {}, {"metadata.json": (link, str(ws / "secret.txt"))}),
         "as a link or folder"),
        (weights_with(ws, "h5_external.keras", external_dataset(ws / "secret.txt")),
         "whose values are read from other files"),
        (weights_with(ws, "h5_link.keras", external_link(ws / "secret.txt")),
         "a link '.*' to another place or file"),
        (metadata_with(ws, "std.keras", std=[1e-300] + [1.0] * (bands - 1)),
         "a standard deviation of 1e-300"),
        (metadata_with(ws, "mean.keras", mean=[1e300] * bands), "a statistic of 1e\\+300"),
        (metadata_with(ws, "tile.keras", tile_size=10 ** 9),
         "tile size 1000000000, larger than the 4096 px"),
        (config_with(ws, "activation.keras", lambda layer: layer["config"].update(
            activation={"class_name": "relu", "config": {}})), "the activation '\\{"),
        (config_with(ws, "filters.keras", lambda layer: layer["config"].update(
            filters=10 ** 7)), "with 10000000 filters"),
        (str(folder), "is a folder, not a model file"),
    ]


def refused(algorithm: str, parameters: dict, message: str) -> str:
    """Runs an algorithm through qgis_process; asserts a refusal with ``message``."""
    arguments = [f"{k}={item}" for k, v in parameters.items()
                 for item in (v if isinstance(v, list) else [v])]
    done = qgis_process("run", f"landcoverunet:{algorithm}", "--", *arguments, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert "Traceback" not in said, said
    assert re.search(message, said), f"{message!r} not in:\n{said}"
    assert SECRET.decode() not in said
    return said


def test_hostile_model_files_are_refused_in_process(ws):
    """Every case, quickly, through the backend's checks (what the algorithms call first)."""
    for path, message in onnx_cases(ws) + keras_cases(ws):
        started = time.monotonic()
        with pytest.raises(UserError, match=message) as error:
            open_model(path).network()
        assert time.monotonic() - started < 10, f"{path} took long to refuse"
        assert "Traceback" not in str(error.value)
    open_model(str(ws / "model.onnx"))   # the real files still pass
    open_model(str(ws / "model.keras"))


@pytest.mark.slow
def test_hostile_model_files_are_refused_through_qgis_process(qgis_process_ready, ws):
    cases = onnx_cases(ws) + keras_cases(ws)
    before = snapshot(ws)
    out = ws / "out"
    for path, message in cases:
        refused("classifyraster", dict(INPUT=ws / "image.tif", MODEL=path,
                                      OUTPUT=out / "classes.tif"), message)
        assert not os.listdir(out), f"{path} left {os.listdir(out)}"
    assert snapshot(ws) == before
    activation = next(p for p, m in cases if "activation" in m)
    said = refused("classifybatch", dict(INPUTS=ws / "image.tif", MODEL=activation,
                                         OUTPUT_FOLDER=out / "maps"), "the activation")
    assert "unhashable" not in said and "failed" not in said
    assert not (out / "maps").exists() or not os.listdir(out / "maps")


# --- masks and checkpoints that lie -------------------------------------------------------

@pytest.mark.parametrize("named", ["../../../../etc/passwd", "/etc/passwd", "sub/x.tif"])
def test_a_feature_id_file_outside_the_masks_folder_is_refused(qgis_process_ready, ws, named,
                                                               tmp_path):
    mask = tmp_path / "mask.tif"
    gdal.Translate(str(mask), str(ws / "mask.tif"))
    dataset = gdal.Open(str(mask), gdal.GA_Update)
    dataset.SetMetadataItem(FEATURE_IDS_KEY, named)
    dataset = None
    refused("trainunet", dict(INPUT=ws / "image.tif", MASK=mask, EPOCHS=1,
                              OUTPUT_MODEL=tmp_path / "out" / "model.keras"),
            "names its feature-id file as '.*', outside its own folder")
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def damaged_checkpoint(model: Path, state) -> None:
    folder = Path(checkpoint_folder(str(model)))
    folder.mkdir(parents=True)
    with open(folder / FILE, "wb") as handle:
        np.savez(handle, **{STATE: np.asarray(json.dumps(state))})


@pytest.mark.parametrize("state", [[1, 2, 3], {"key": "x", "stages": [], "finished": []},
                                   {"key": "x", "stages": {"fold1": [1]}, "finished": []}])
def test_a_damaged_checkpoint_is_said_and_training_starts_afresh(tmp_path, state):
    damaged_checkpoint(tmp_path / "model.keras", state)
    found = Checkpoint(str(tmp_path / "model.keras"), "x").load()
    assert found.startswith("The checkpoint beside the model is damaged") and \
        found.endswith("training starts afresh.")


@pytest.mark.slow
def test_resume_with_a_damaged_checkpoint_through_qgis_process(qgis_process_ready, ws,
                                                               tmp_path):
    model = tmp_path / "model.keras"
    damaged_checkpoint(model, [1, 2, 3])
    arguments = dict(INPUT=ws / "image.tif", MASK=ws / "mask.tif", OUTPUT_MODEL=model,
                     EPOCHS=1, STEPS_PER_EPOCH=1, TILE_SIZE=32, BATCH_SIZE=2, RESUME="true",
                     FINAL_FIT="false", TEACHER="false")
    done = qgis_process("run", "landcoverunet:trainunet", "--",
                        *[f"{k}={v}" for k, v in arguments.items()], timeout=900)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "The checkpoint beside the model is damaged" in said and "Traceback" not in said
    assert model.exists() and not Path(checkpoint_folder(str(model))).exists()


# --- CSV cells ----------------------------------------------------------------------------

def test_formula_cells_are_guarded_and_numbers_kept():
    assert [safe_cell(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    assert [safe_cell(v) for v in ("-0.25", "+3", "-1e-05", "forest", 3, -2.5, "")] == \
        ["-0.25", "+3", "-1e-05", "forest", 3, -2.5, ""]


def test_architecture_every_csv_goes_through_the_guard():
    """Only backend/core/csv_cells.py makes a csv.writer: a new CSV cannot skip the guard."""
    makers = [str(p.relative_to(ROOT)) for package in ("backend", "algorithms", "models")
              for p in (ROOT / package).rglob("*.py")
              if re.search(r"csv\.(writer|DictWriter)\(", p.read_text(encoding="utf-8"))]
    assert makers == ["backend/core/csv_cells.py"]


def test_class_names_as_formulas_reach_the_csv_tables_as_text(qgis_process_ready, ws,
                                                             tmp_path):
    from landcoverunet.backend.core.class_map import ClassMap

    image = gdal.Open(str(ws / "image.tif"))
    codes = np.random.default_rng(0).integers(1, 8, (image.RasterYSize, image.RasterXSize))
    names = {c: FORMULAS[c % len(FORMULAS)] + str(c) for c in range(1, 8)}
    classes = write_class_raster(tmp_path / "map.tif", codes.astype(np.uint8),
                                 ClassMap.from_codes(list(range(1, 8)), names),
                                 like=ws / "image.tif")
    table, areas = tmp_path / "accuracy.csv", tmp_path / "areas.csv"
    done = qgis_process("run", "landcoverunet:assessaccuracy", "--", f"INPUT={classes}",
                        f"REFERENCE={ws / 'reference.gpkg'}",
                        "CLASS_FIELD=id", f"OUTPUT_REPORT={tmp_path / 'report.html'}",
                        f"OUTPUT_TABLE={table}", f"OUTPUT_AREA_TABLE={areas}", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    guarded = 0
    for path in (table, areas):
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                for cell in row:
                    if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                        float(cell)  # only numbers may start so
                    guarded += cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@", "\t")
    assert guarded >= 5
