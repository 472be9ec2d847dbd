"""The Keras backend: setting + KERAS_BACKEND + keras.json → the backend a fresh Keras uses."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from landcoverunet.backend.core import keras_backend as kb


@pytest.fixture
def home(tmp_path) -> dict[str, str]:
    """An environment whose Keras home is an empty temporary folder."""
    return {"KERAS_HOME": str(tmp_path)}


def write_json(home: dict[str, str], backend: str) -> None:
    with open(kb.keras_json_path(home), "w") as handle:
        json.dump({"floatx": "float32", "backend": backend}, handle)


def test_keras_picks_variable_then_keras_json_then_tensorflow(home):
    assert kb.resolve(kb.AUTO, home) == kb.Resolution("tensorflow", "Keras's default")
    write_json(home, "jax")
    assert kb.resolve(kb.AUTO, home) == kb.Resolution("jax", "keras.json")
    assert kb.resolve("torch", home) == kb.Resolution("torch", "the plugin's setting")
    user = {**home, "KERAS_BACKEND": "tensorflow"}
    assert kb.resolve("torch", user).backend == "tensorflow", "the user's variable wins"
    assert "environment variable" in kb.resolve("torch", user).source
    assert kb.resolve(kb.AUTO, {**home, "KERAS_BACKEND": ""}).backend == "jax", \
        "Keras ignores an empty variable"


def test_a_broken_keras_json_counts_as_none(home):
    with open(kb.keras_json_path(home), "w") as handle:
        handle.write("{not json")
    assert kb.resolve(kb.AUTO, home).backend == "tensorflow"
    with open(kb.keras_json_path(home), "w") as handle:
        handle.write("[1, 2]")
    assert kb.keras_json_backend(kb.keras_json_path(home)) is None


def test_applying_the_setting_sets_the_variable_only_where_the_user_did_not(home):
    environ = dict(home)
    kb.apply_setting("jax", environ)
    assert environ["KERAS_BACKEND"] == "jax"
    assert kb.resolve("jax", environ).source == "the plugin's setting"
    assert kb.resolve(kb.AUTO, environ).backend == "jax", "in force until the setting changes"
    kb.apply_setting("torch", environ)            # the plugin may replace its own choice
    assert environ["KERAS_BACKEND"] == "torch"
    kb.apply_setting(kb.AUTO, environ)            # and take it back
    assert "KERAS_BACKEND" not in environ and kb.SET_BY_PLUGIN not in environ
    write_json(environ, "jax")
    assert kb.resolve(kb.AUTO, environ).backend == "jax"

    user = {**home, "KERAS_BACKEND": "tensorflow"}
    kb.apply_setting("torch", user)
    assert user["KERAS_BACKEND"] == "tensorflow" and kb.SET_BY_PLUGIN not in user
    kb.apply_setting(kb.AUTO, user)
    assert user["KERAS_BACKEND"] == "tensorflow"
    kb.apply_setting("nonsense", user)
    assert user["KERAS_BACKEND"] == "tensorflow"


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_setting_reaches_keras_and_a_late_change_asks_for_a_restart(tmp_path):
    out = _fresh(f"""
        import os, sys
        os.environ.pop('KERAS_BACKEND', None)
        os.environ['KERAS_HOME'] = {str(tmp_path)!r}
        from landcoverunet.backend.core import keras_backend as kb
        print('INSTALLED', [b for b in kb.BACKENDS if kb.installed(b)], 'keras' in sys.modules,
              'jax' in sys.modules, 'tensorflow' in sys.modules)
        print('BEFORE', kb.apply_setting('jax'), kb.backend_in_use())
        import keras
        print('KERAS', keras.config.backend(), kb.loaded_backend(), kb.backend_in_use())
        print('LATE', kb.apply_setting('tensorflow'))
        print('SAME', kb.apply_setting('jax'))
    """)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["INSTALLED"].startswith("['tensorflow', 'jax'") and \
        lines["INSTALLED"].endswith("False False False"), "found without importing"
    assert lines["BEFORE"] == "None jax"
    assert lines["KERAS"] == "jax jax jax"
    assert lines["LATE"] == "Keras already runs on JAX in this process; restart QGIS to use " \
                            "TensorFlow."
    assert lines["SAME"] == "None"


def test_keras_available_follows_the_backend_in_use(home):
    from landcoverunet.backend.core.deps import keras_available, missing_help

    out = _fresh(f"""
        import os
        os.environ['KERAS_HOME'] = {home['KERAS_HOME']!r}
        os.environ['KERAS_BACKEND'] = 'no_such_backend'
        from landcoverunet.backend.core.deps import keras_available, missing_help
        print(keras_available())
        print(missing_help().splitlines()[0])
    """)
    assert out.splitlines() == ["False", "no_such_backend (the Keras backend in use) is not "
                                "installed in the Python that QGIS runs (no_such_backend computes "
                                "Keras's network). Install from a terminal with:"]
    assert keras_available() and missing_help().startswith("Keras 3.14 or later is not installed")
