"""Data parallelism (JAX): one training step with the batch split over 2 devices gives the
weights of the same step on 1 device (virtual CPU devices stand in for GPUs)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from background import quick_jax_env

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # starts processes: `-m "not slow"` skips it

# Runs in a fresh process: the device count is fixed when the backend starts.
ONE_STEP_ON_1_AND_2_DEVICES = textwrap.dedent("""
    import dataclasses, json, sys
    import keras, numpy as np
    from keras_cvae import backends
    from keras_cvae.tasks.svg.config import get_preset
    from keras_cvae.tasks.svg.model import SVG
    from keras_cvae.training import compile_model

    preset = get_preset("tiny")
    train = dataclasses.replace(preset.train, batch_size=4, tfr=1.0, jit_compile=False,
                                run_eagerly=False)
    rng = np.random.default_rng(0)
    length = preset.model.window_length
    batch = {"frames": rng.random((4, length, 64, 64, 3), dtype=np.float32),
             "conditions": rng.normal(size=(4, length, 7)).astype(np.float32)}
    keras.utils.set_random_seed(0)
    initial = SVG(preset.model, seed=0).get_weights()

    def one_step(devices):
        with backends.data_parallel(devices):
            model = SVG(preset.model, seed=0)
            model.set_weights(initial)
            compile_model(model, train)
            logs = model.train_on_batch(batch, return_dict=True)
            return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights], logs

    single, single_logs = one_step(1)
    split, split_logs = one_step(2)
    changed = max(float(np.max(np.abs(a - b))) for a, b in zip(single, initial))
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(single, split))
    print(json.dumps({"changed": changed, "difference": difference,
                      "loss": [float(single_logs["loss"]), float(split_logs["loss"])]}))
""")


def run_on_two_devices(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           **quick_jax_env(devices=2)}
    result = subprocess.run([sys.executable, "-c", ONE_STEP_ON_1_AND_2_DEVICES], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.jax
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax",
                    reason="runs in the background JAX run, overlapping the TensorFlow tests")
def test_one_step_on_two_devices_equals_one_device():
    figures = run_on_two_devices("jax")
    assert figures["changed"] > 1e-4  # the step did move the weights
    assert figures["difference"] <= 1e-5, figures
    assert figures["loss"][0] == pytest.approx(figures["loss"][1], rel=1e-5)


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="the TensorFlow refusal")
def test_several_devices_on_tensorflow_is_one_clear_error():
    from keras_cvae import backends

    with pytest.raises(ValueError, match="needs the JAX backend"):
        with backends.data_parallel(2):
            pass
