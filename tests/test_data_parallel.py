"""Data parallelism: training steps with the batch split over 2 devices give the weights of
the same steps on 1 device (virtual CPU devices stand in for GPUs)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import background
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

def run_on_two_jax_devices(script):
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), **quick_jax_env(devices=2)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.jax
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax",
                    reason="runs in the background JAX run, overlapping the TensorFlow tests")
def test_one_step_on_two_devices_equals_one_device():
    figures = run_on_two_jax_devices(ONE_STEP_ON_1_AND_2_DEVICES)
    assert figures["changed"] > 1e-4  # the step did move the weights
    assert figures["difference"] <= 1e-5, figures
    assert figures["loss"][0] == pytest.approx(figures["loss"][1], rel=1e-5)


# How far the 2-device steps may end from the 1-device steps, in parts of how far the steps
# moved the weights. The sums run in another order: on 1 device, permuting the rows of the
# batch moves the SVG's trainable weights by 0.6% of the change, its BatchNorm statistics by
# 0.007%. A replica normalising its own share, every replica drawing the same noise or
# clipping its own share of the gradient puts one of them over 8 times its tolerance away.
TOLERANCE = {"trainable": 0.01, "statistics": 0.001}


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="TensorFlow's MirroredStrategy")
@pytest.mark.parametrize("model", ["svg", "pose"])
@pytest.mark.background("tensorflow_two_devices")
def test_two_steps_on_two_tensorflow_devices_equal_one_device(two_tensorflow_devices, model):
    """BatchNorm statistics, noise, gradients (clipped by their global norm) and the
    teacher-forcing coins of the two replicas make the steps of one device."""
    figures = two_tensorflow_devices[model]
    one, two = figures["logs"]
    assert [step["tfr"] for step in one] == [step["tfr"] for step in two] == [1.0, 0.5]  # forced, then not
    for a, b in zip(one, two):
        assert a["loss"] == pytest.approx(b["loss"], rel=5e-5), figures
    assert figures["same_random_state"]
    for kind, tolerance in TOLERANCE.items():
        assert figures[kind]["changed"] > 1e-4, (kind, figures)  # the steps did move them
        assert figures[kind]["difference"] <= tolerance * figures[kind]["changed"], (kind, figures)


@pytest.fixture
def two_tensorflow_devices(background_runs):
    """The figures of tests/tensorflow_two_devices.py, started in the background at collection."""
    status, output = background.finish(background_runs["tensorflow_two_devices"], timeout=900)
    assert status == 0, output[-3000:]
    return json.loads(output.strip().splitlines()[-1])


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="TensorFlow's devices")
def test_more_devices_than_there_are_is_one_clear_error():
    import tensorflow as tf

    from keras_cvae import backends

    present = len(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))
    with pytest.raises(ValueError, match=rf"^devices \(--devices\) {present + 1}: only {present} found \("):
        with backends.data_parallel(present + 1):
            pass
