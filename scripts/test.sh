#!/usr/bin/env bash
# The test command: sets up what is missing, then runs the whole suite headless, and the
# backend tests of training and classification once more under Keras's JAX backend.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
status=0
.venv/bin/python -m pytest test "$@" || status=$?
echo "Training and classification again under the JAX backend (KERAS_BACKEND=jax):"
KERAS_BACKEND=jax .venv/bin/python -m pytest -q -p no:cacheprovider \
    test/test_training_backend.py test/test_classify_backend.py || status=$?
exit $status
