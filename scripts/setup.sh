#!/usr/bin/env bash
# Installs what is missing, and nothing else, so that a second run is a no-op in seconds.
# Debian packages give QGIS, GDAL and rasterio built on Debian's numpy 1.x; the venv (made from
# the system Python with --system-site-packages) adds TensorFlow and the test tools on top of
# them, with numpy pinned to the system's so pip can never pull numpy 2 in.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(qgis python3-qgis qgis-providers python3-gdal python3-rasterio python3-matplotlib
              gdal-bin python3-venv python3-pip xvfb xauth zip)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv from /usr/bin/python3 (with system site packages)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

# Re-run pip only when the requirements changed since the last successful install.
stamp=.venv/.requirements.sha
want=$(cat requirements.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # Pin numpy (and friends) to the versions Debian's GDAL, rasterio and QGIS were built on.
  sysnumpy=$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')
  echo "setup: installing Python packages into .venv (numpy held at $sysnumpy)"
  .venv/bin/python -m pip install -q --disable-pip-version-check \
      -r requirements.txt -c constraints.txt "numpy==$sysnumpy"
  echo "$want" > "$stamp"
fi
