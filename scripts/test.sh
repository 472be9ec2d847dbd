#!/usr/bin/env bash
# The test command: sets up what is missing, then runs the whole suite headless.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
exec .venv/bin/python -m pytest test "$@"
