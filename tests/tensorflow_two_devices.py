"""Two training steps of the tiny SVG and pose models on 1 and on 2 TensorFlow devices
(2 logical CPU devices, set before TensorFlow starts), printed as JSON on the last line.

    KERAS_BACKEND=tensorflow python tests/tensorflow_two_devices.py

The first step is teacher-forced (tfr 1), the second fed its own predictions (tfr 0). The
optimizer is plain SGD, so that a weight moves by its gradient: Adam moves every weight by
about its learning rate whatever the gradient's size, so a gradient that is rounding error
alone (the bias of a convolution before BatchNorm) moves its weight as far as any other.
Weights larger than the initial ones make the noise drawn in the step matter to the gradients.
"""

import dataclasses
import json
import time

import tensorflow as tf

# TensorFlow's devices are fixed once it starts: first thing, before Keras touches it.
CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from model_weights import randomize_weights  # noqa: E402

from keras_cvae import backends  # noqa: E402
from keras_cvae.schedules import TeacherForcing  # noqa: E402
from keras_cvae.tasks.pose.config import pose_presets  # noqa: E402
from keras_cvae.tasks.pose.model import PoseCVAE  # noqa: E402
from keras_cvae.tasks.svg.config import get_preset  # noqa: E402
from keras_cvae.tasks.svg.model import SVG  # noqa: E402


def variables(model) -> dict:
    """The model's trainable weights and its BatchNorm moving statistics, as arrays."""
    return {"trainable": [keras.ops.convert_to_numpy(v) for v in model.trainable_variables],
            "statistics": [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables
                           if "moving_" in v.path]}


def two_steps(build, initial, data, devices, clip_norm) -> dict:
    """Variables, per-step logs and random state after two steps on `devices` devices."""
    logs = []
    with backends.data_parallel(devices):
        model = build()
        model.set_weights(initial)
        model.compile(keras.optimizers.SGD(0.01, global_clipnorm=clip_norm), jit_compile=False,
                      teacher_forcing=TeacherForcing(ratio=1.0, start_decay_epoch=1, decay_step=1.0))
        model.fit(data, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[
            keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs=None, out=logs: out.append(
                {name: float(logs[name]) for name in ("loss", "tfr")}))])
        return {**variables(model), "logs": logs,
                "random_state": keras.ops.convert_to_numpy(model.seed_generator.state).tolist()}


def compare(build, frames, conditions, clip_norm=None) -> dict:
    """How far the 2-device steps end from the 1-device steps, and how far those moved."""
    started = time.monotonic()
    keras.utils.set_random_seed(0)
    model = build()
    randomize_weights(model, seed=1)
    initial = model.get_weights()
    before = variables(model)
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


def main():
    # Two predicted frames: MirroredStrategy traces the unrolled steps of each replica, the
    # cost of this script, and two are enough for a step fed its own prediction.
    svg = dataclasses.replace(get_preset("tiny").model, n_future=2)
    pose = pose_presets()["pose-tiny"].model
    print(json.dumps({
        "svg": compare(lambda: SVG(svg, seed=0), (svg.window_length, 64, 64, 3), (svg.window_length, 7)),
        # Clipped, at a norm its gradients exceed.
        "pose": compare(lambda: PoseCVAE(pose, seed=0), (pose.window_length, *pose.frame_shape),
                        (pose.window_length, *pose.frame_shape), clip_norm=0.05),
    }))


if __name__ == "__main__":
    main()
