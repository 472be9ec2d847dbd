#!/usr/bin/env bash
# Makes the plugin visible to QGIS desktop and to qgis_process for the current user, with the
# venv's TensorFlow importable from the system Python that both run.
#   bash scripts/install-plugin.sh            install (link + enable + TensorFlow path)
#   bash scripts/install-plugin.sh --remove   undo all three
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh

PROFILE="${QGIS_PROFILE_DIR:-$HOME/.local/share/QGIS/QGIS3/profiles/default}"
LINK="$PROFILE/python/plugins/landcoverunet"
# A .pth file in the user's site-packages appends the venv's packages (TensorFlow, Keras) to the
# system Python's path, after Debian's own: Debian's numpy 1.x, GDAL and QGIS still win.
USER_SITE="$(/usr/bin/python3 -m site --user-site)"
PTH="$USER_SITE/landcoverunet-tensorflow.pth"

if [ "${1:-}" = "--remove" ]; then
  env -u QGIS_PLUGINPATH qgis_process.bin plugins disable landcoverunet >/dev/null 2>&1 || true
  rm -f "$LINK" "$PTH"
  echo "Removed $LINK and $PTH."
  exit 0
fi

mkdir -p "$PROFILE/python/plugins" "$USER_SITE"
ln -sfn "$ROOT" "$LINK"
echo "$VENV_SITE" > "$PTH"
# Enabling writes the default profile's QGIS3.ini, which desktop QGIS and qgis_process share.
out="$(env -u QGIS_PLUGINPATH qgis_process.bin plugins enable landcoverunet 2>&1 || true)"
case "$out" in
  *"Enabled landcoverunet"*|*"already enabled"*) ;;
  *) echo "$out"; echo "Could not enable the plugin for qgis_process." >&2; exit 1 ;;
esac
echo "Installed: $LINK -> $ROOT"
echo "TensorFlow for QGIS's Python: $PTH"
echo "Check: QT_QPA_PLATFORM=offscreen qgis_process.bin list | grep landcoverunet"
