"""One tiny SVG on both backends, files in $SCRATCH, for tests/test_backends.py.

    KERAS_BACKEND=tensorflow python tests/backend_parity.py

On TensorFlow it writes a model with random weights (`tf.keras`), inputs (`inputs.npz`)
and that model's predictions (`tf_predictions.npy`), then runs itself on JAX, which loads
the TensorFlow file and writes its predictions (`jax_predictions.npy`), trains it with one
jitted fit of `SCHEDULE_STEPS` steps, recording the KL weight and teacher-forcing ratio
logged at every step (`logged.json`), and saves the result (`jax.keras`,
`jax_trained_predictions.npy`).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
from background import quick_jax_env
from keras import ops
from model_weights import randomize_weights

from keras_cvae.schedules import KLAnnealing, TeacherForcing
from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.model import SVG

TINY = get_preset("tiny").model
SCHEDULE_STEPS = 4


def kl_annealing():
    return KLAnnealing("cyclical", total_steps=SCHEDULE_STEPS, cycles=1, ratio=0.5)


def teacher_forcing():
    return TeacherForcing(ratio=1.0, start_decay_epoch=1, decay_step=0.25, steps_per_epoch=1)


def check_inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "context": rng.random((batch, TINY.n_past, 64, 64, 3), dtype=np.float32),
        "conditions": rng.normal(size=(batch, TINY.window_length, 7)).astype("float32"),
        "noise": rng.normal(size=(batch, TINY.n_future, TINY.z_dim)).astype("float32"),
    }


def on_tensorflow(folder: Path):
    model = SVG(TINY, condition_mean=[0.1] * 7, condition_std=[1.5] * 7, seed=0)
    randomize_weights(model, seed=0)
    model.save(folder / "tf.keras")
    np.savez(folder / "inputs.npz", **check_inputs())
    np.save(folder / "tf_predictions.npy", ops.convert_to_numpy(model(check_inputs())))
    jax = subprocess.run([sys.executable, __file__], env={**os.environ, "KERAS_BACKEND": "jax", **quick_jax_env()})
    return jax.returncode


def on_jax(folder: Path):
    inputs = dict(np.load(folder / "inputs.npz"))
    model = keras.saving.load_model(folder / "tf.keras", compile=False)
    np.save(folder / "jax_predictions.npy", ops.convert_to_numpy(model(inputs)))

    rng = np.random.default_rng(0)
    frames = rng.random((2, TINY.window_length, 64, 64, 3), dtype=np.float32)
    conditions = rng.normal(size=(2, TINY.window_length, 7)).astype("float32")
    model.compile(keras.optimizers.Adam(1e-3), kl_annealing=kl_annealing(), teacher_forcing=teacher_forcing(),
                  jit_compile=True)
    logged = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs=None: logged.append(
        {name: float(logs[name]) for name in ("kl_anneal", "tfr")}))
    data = {"frames": np.repeat(frames, SCHEDULE_STEPS, 0), "conditions": np.repeat(conditions, SCHEDULE_STEPS, 0)}
    model.fit(data, batch_size=2, epochs=1, steps_per_epoch=SCHEDULE_STEPS, shuffle=False, verbose=0,
              callbacks=[record])
    model.save(folder / "jax.keras")
    np.save(folder / "jax_trained_predictions.npy", ops.convert_to_numpy(model(inputs)))
    (folder / "logged.json").write_text(json.dumps(logged))
    return 0


if __name__ == "__main__":
    scratch = Path(os.environ["SCRATCH"])
    sys.exit(on_jax(scratch) if keras.backend.backend() == "jax" else on_tensorflow(scratch))
