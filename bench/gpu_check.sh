#!/usr/bin/env bash
# GPU check (issue 14): on a machine with an NVIDIA GPU and JAX or PyTorch (TensorFlow works too),
# trains the U-Net on the bundled sample for a fixed number of steps in float32 and in mixed
# precision, classifies the sample scene, and prints pixels/s of each, the GPU's name and memory,
# and how much of each map equals the map of the same weights computed on the CPU. Without a GPU
# it runs float32 on the CPU and says so. Exits non-zero on any failure; stops after 280 s.
#
#   bash bench/gpu_check.sh [gpu_check.py options: --steps 40 --mixed --model medium ...]
#
# Needs only Python 3.10+, numpy, Keras 3 and one backend: no GDAL, rasterio or QGIS
# (bench/sample_scene.py reads the sample GeoTIFF without them), and no network.
#   - Backend: $KERAS_BACKEND if set, else jax if importable, else torch, else tensorflow.
#   - Python: $PYTHON if set, else .venv/bin/python if there is one, else python3.
#   - Keras: when the Python has no Keras 3, every wheel in $LANDCOVERUNET_WHEELS (default
#     bench/wheels, git-ignored) is unpacked into build/gpucheck-lib and put on the path, so
#     carry Keras and whatever of its dependencies the machine lacks. Made on a machine with the
#     internet, for the target's Python (3.11 here):
#       pip download keras==3.15.1 --no-deps -d bench/wheels
#       pip download namex optree rich markdown-it-py mdurl pygments absl-py h5py ml-dtypes \
#           --no-deps --only-binary=:all: --python-version 3.11 -d bench/wheels
#     (only what `python3 -c "import keras"` reports missing is needed; jax brings ml-dtypes).
#     Give bench/wheels to the device tool's `carry` (it is ignored by git, so it does not travel
#     otherwise).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# The plugin is a package named after its folder; expose it as landcoverunet (as scripts/env.sh).
mkdir -p build/plugins
ln -sfn "$ROOT" build/plugins/landcoverunet
export PYTHONPATH="$ROOT/build/plugins${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
export PYTHONDONTWRITEBYTECODE=1

has() { "$PYTHON" -c "import $1" >/dev/null 2>&1; }

if [ -z "${KERAS_BACKEND:-}" ]; then
    for candidate in jax torch tensorflow; do
        if has "$candidate"; then KERAS_BACKEND=$candidate; break; fi
    done
fi
if [ -z "${KERAS_BACKEND:-}" ]; then
    echo "FAIL: none of jax, torch, tensorflow is importable by $PYTHON" >&2
    exit 2
fi
export KERAS_BACKEND

keras3() { "$PYTHON" -c "import keras, sys; sys.exit(int(keras.__version__.split('.')[0]) < 3)" \
    >/dev/null 2>&1; }
if ! keras3; then
    WHEELS="${LANDCOVERUNET_WHEELS:-$ROOT/bench/wheels}"
    LIB="$ROOT/build/gpucheck-lib"
    shopt -s nullglob
    wheels=("$WHEELS"/*.whl)
    if [ ${#wheels[@]} -eq 0 ]; then
        echo "FAIL: $PYTHON has no Keras 3 and $WHEELS holds no wheels (see this script's header)" >&2
        exit 2
    fi
    rm -rf "$LIB" && mkdir -p "$LIB"
    for wheel in "${wheels[@]}"; do  # a wheel is a zip of what goes into site-packages
        "$PYTHON" -m zipfile -e "$wheel" "$LIB"
    done
    export PYTHONPATH="$PYTHONPATH:$LIB"  # after the machine's own packages: its numpy wins
    if ! keras3; then
        echo "FAIL: Keras still does not import after unpacking ${#wheels[@]} wheels:" >&2
        "$PYTHON" -c "import keras" 2>&1 | tail -1 >&2
        exit 2
    fi
    echo "Keras unpacked from ${#wheels[@]} wheels in $WHEELS"
fi

echo "GPU check with $PYTHON, KERAS_BACKEND=$KERAS_BACKEND"
timeout 280 "$PYTHON" bench/gpu_check.py "$@"
