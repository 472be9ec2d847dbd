#!/usr/bin/env bash
# The main job on the bundled sample: masks -> training -> classification -> accuracy -> map.
#   bash scripts/demo.sh [output folder]      (default: out/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
exec .venv/bin/python scripts/demo.py "$@"
