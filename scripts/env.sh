# Sourced by the scripts: the environment in which QGIS, qgis_process and the tests find the
# plugin and the venv's TensorFlow. The plugin is reached through build/plugins/landcoverunet, a
# link to this checkout, because the folder a user clones into may not be a valid package name.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/build/plugins"
ln -sfn "$ROOT" "$ROOT/build/plugins/landcoverunet"
VENV_SITE="$("$ROOT/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export QGIS_PLUGINPATH="$ROOT/build/plugins"
# Appended after the system paths, so Debian's numpy, GDAL and QGIS bindings always win.
export PYTHONPATH="$ROOT/build/plugins${PYTHONPATH:+:$PYTHONPATH}:$VENV_SITE"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
export QGIS_OPTS=""            # Debian's qgis_process wrapper adds --noversioncheck, which 3.22 rejects
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONDONTWRITEBYTECODE=1
