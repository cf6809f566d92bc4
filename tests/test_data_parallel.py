"""Data parallelism: training steps with the batch split over 2 devices give the weights of
the same steps on 1 device (virtual CPU devices stand in for GPUs)."""

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

# TensorFlow's devices are fixed before it starts: 2 logical CPU devices, set in the process.
# Two steps of each model on 1 and on 2 devices: the first teacher-forced (tfr 1), the second
# fed its own predictions (tfr 0). The optimizer is plain SGD, so that a weight moves by its
# gradient: Adam moves every weight by about its learning rate whatever the gradient's size,
# so a gradient that is rounding error alone (the bias of a convolution before BatchNorm)
# moves its weight as far as any other. Weights larger than the initial ones make the noise
# drawn in the step matter to the gradients.
TWO_STEPS_ON_1_AND_2_DEVICES_TENSORFLOW = textwrap.dedent("""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import json, sys, time
    import keras, numpy as np
    sys.path.insert(0, TESTS)
    from model_weights import randomize_weights
    from keras_cvae import backends
    from keras_cvae.tasks.pose.config import pose_presets
    from keras_cvae.tasks.pose.model import PoseCVAE
    from keras_cvae.tasks.svg.config import get_preset
    from keras_cvae.tasks.svg.model import SVG
    from keras_cvae.schedules import TeacherForcing

    def two_steps(build, initial, data, devices, clip_norm):
        logs = []
        with backends.data_parallel(devices):
            model = build()
            model.set_weights(initial)
            model.compile(keras.optimizers.SGD(0.01, global_clipnorm=clip_norm), jit_compile=False,
                          teacher_forcing=TeacherForcing(ratio=1.0, start_decay_epoch=1, decay_step=1.0))
            model.fit(data, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[
                keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs=None, out=logs: out.append(
                    {name: float(logs[name]) for name in ("loss", "tfr")}))])
            trainable = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
            statistics = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables
                          if "moving_" in v.path]
            return {"trainable": trainable, "statistics": statistics, "logs": logs,
                    "random_state": keras.ops.convert_to_numpy(model.seed_generator.state).tolist()}

    def compare(build, frames, conditions, clip_norm=None):
        started = time.monotonic()
        keras.utils.set_random_seed(0)
        model = build()
        randomize_weights(model, seed=1)
        initial = model.get_weights()
        before = {"trainable": [keras.ops.convert_to_numpy(v) for v in model.trainable_variables],
                  "statistics": [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables
                                 if "moving_" in v.path]}
        rng = np.random.default_rng(0)
        data = {"frames": rng.random((8, *frames), dtype=np.float32),
                "conditions": rng.random((8, *conditions), dtype=np.float32)}
        one, two = (two_steps(build, initial, data, devices, clip_norm) for devices in (1, 2))
        figures = {"logs": [one["logs"], two["logs"]],
                   "same_random_state": one["random_state"] == two["random_state"]}
        for kind in ("trainable", "statistics"):
            figures[kind] = {
                "changed": max(float(np.max(np.abs(a - b))) for a, b in zip(one[kind], before[kind])),
                "difference": max(float(np.max(np.abs(a - b))) for a, b in zip(one[kind], two[kind])),
            }
        figures["seconds"] = time.monotonic() - started
        return figures

    svg = get_preset("tiny").model
    pose = pose_presets()["pose-tiny"].model
    print(json.dumps({
        "svg": compare(lambda: SVG(svg, seed=0), (svg.window_length, 64, 64, 3), (svg.window_length, 7)),
        # Clipped, at a norm its gradients exceed.
        "pose": compare(lambda: PoseCVAE(pose, seed=0), (pose.window_length, *pose.frame_shape),
                        (pose.window_length, *pose.frame_shape), clip_norm=0.05),
    }))
""")


def run_on_two_devices(script, backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           **quick_jax_env(devices=2)}
    script = f"TESTS = {str(ROOT / 'tests')!r}\n{script}"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.jax
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax",
                    reason="runs in the background JAX run, overlapping the TensorFlow tests")
def test_one_step_on_two_devices_equals_one_device():
    figures = run_on_two_devices(ONE_STEP_ON_1_AND_2_DEVICES, "jax")
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


@pytest.fixture(scope="module")
def two_tensorflow_devices():
    return run_on_two_devices(TWO_STEPS_ON_1_AND_2_DEVICES_TENSORFLOW, "tensorflow")


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="TensorFlow's devices")
def test_more_devices_than_there_are_is_one_clear_error():
    import tensorflow as tf

    from keras_cvae import backends

    present = len(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))
    with pytest.raises(ValueError, match=rf"^devices \(--devices\) {present + 1}: only {present} found \("):
        with backends.data_parallel(present + 1):
            pass
