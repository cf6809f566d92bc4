"""One model on two backends: TF/JAX parity, files crossing backends, JAX without TensorFlow.

This module runs on TensorFlow (the suite's backend); the JAX side runs in subprocesses
with KERAS_BACKEND=jax. `test_marked_tests_pass_on_jax` re-runs every test marked `jax`
(backend-agnostic tests of the model, training and evaluation) under JAX.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from keras_cvae.schedules import KLAnnealing, TeacherForcing
from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.model import SVG

import background
from background import quick_jax_env
from model_weights import randomize_weights
from no_tensorflow import ROOT

pytestmark = pytest.mark.slow  # trains, exports or starts processes: `-m 'not slow'` skips it

TINY = get_preset("tiny").model
SCHEDULE_STEPS = 4


def run_on_jax(code, timeout=600):
    """Runs `code` with `python -c` on the JAX backend (TensorFlow importable)."""
    python_path = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": python_path, **quick_jax_env()},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"exit {result.returncode}; stderr ends:\n{result.stderr[-3000:]}"
    return result


def check_inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "context": rng.random((batch, TINY.n_past, 64, 64, 3), dtype=np.float32),
        "conditions": rng.normal(size=(batch, TINY.window_length, 7)).astype("float32"),
        "noise": rng.normal(size=(batch, TINY.n_future, TINY.z_dim)).astype("float32"),
    }


@pytest.fixture(scope="module")
def jax_results(tmp_path_factory):
    """One JAX process: predictions from TF-written weights, a JAX-trained .keras file, and
    the KL weight and teacher-forcing ratio of every step of one jitted fit."""
    folder = tmp_path_factory.mktemp("backends")
    model = SVG(TINY, condition_mean=[0.1] * 7, condition_std=[1.5] * 7, seed=0)
    randomize_weights(model, seed=0)
    model.save(folder / "tf.keras")
    np.savez(folder / "inputs.npz", **check_inputs())
    np.save(folder / "tf_predictions.npy", ops.convert_to_numpy(model(check_inputs())))
    run_on_jax(f"""
        import json
        import keras
        import numpy as np
        from keras import ops
        from keras_cvae.tasks.svg.model import SVG
        from keras_cvae.schedules import KLAnnealing, TeacherForcing

        assert keras.backend.backend() == "jax"
        folder = {str(folder)!r}
        inputs = dict(np.load(folder + "/inputs.npz"))
        model = keras.saving.load_model(folder + "/tf.keras", compile=False)
        np.save(folder + "/jax_predictions.npy", ops.convert_to_numpy(model(inputs)))

        rng = np.random.default_rng(0)
        frames = rng.random((2, {TINY.window_length}, 64, 64, 3), dtype=np.float32)
        conditions = rng.normal(size=(2, {TINY.window_length}, 7)).astype("float32")
        model.compile(
            keras.optimizers.Adam(1e-3),
            kl_annealing=KLAnnealing("cyclical", total_steps=4, cycles=1, ratio=0.5),
            teacher_forcing=TeacherForcing(ratio=1.0, start_decay_epoch=1, decay_step=0.25,
                                           steps_per_epoch=1),
            jit_compile=True,
        )
        logged = []

        class Record(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                logged.append({{k: float(logs[k]) for k in ("kl_anneal", "tfr")}})

        data = {{"frames": np.repeat(frames, {SCHEDULE_STEPS}, 0),
                 "conditions": np.repeat(conditions, {SCHEDULE_STEPS}, 0)}}
        model.fit(data, batch_size=2, epochs=1, steps_per_epoch={SCHEDULE_STEPS}, shuffle=False,
                  verbose=0, callbacks=[Record()])
        model.save(folder + "/jax.keras")
        np.save(folder + "/jax_trained_predictions.npy", ops.convert_to_numpy(model(inputs)))
        json.dump(logged, open(folder + "/logged.json", "w"))
    """)
    return folder


def test_same_weights_and_noise_give_the_same_frames_on_tensorflow_and_jax(jax_results):
    tf_frames = np.load(jax_results / "tf_predictions.npy")
    jax_frames = np.load(jax_results / "jax_predictions.npy")
    assert tf_frames.std() > 0.01  # outputs that vary, so the comparison means something
    np.testing.assert_allclose(jax_frames, tf_frames, atol=1e-4)


def test_a_model_trained_on_jax_loads_and_predicts_the_same_on_tensorflow(jax_results):
    model = keras.saving.load_model(jax_results / "jax.keras", compile=False)
    original = keras.saving.load_model(jax_results / "tf.keras", compile=False)
    inputs = dict(np.load(jax_results / "inputs.npz"))
    frames = ops.convert_to_numpy(model(inputs))
    np.testing.assert_allclose(frames, np.load(jax_results / "jax_trained_predictions.npy"), atol=1e-4)
    changed = [np.abs(ops.convert_to_numpy(a) - ops.convert_to_numpy(b)).max()
               for a, b in zip(model.trainable_variables, original.trainable_variables)]
    assert max(changed) > 1e-4  # the JAX training moved the weights


def test_schedules_see_the_current_step_inside_one_jitted_fit_on_jax(jax_results):
    """Logged values are running means over the epoch; each step's value is recovered."""
    logged = json.loads((jax_results / "logged.json").read_text())
    assert len(logged) == SCHEDULE_STEPS
    steps = np.arange(SCHEDULE_STEPS)
    for name, schedule in (
        ("kl_anneal", KLAnnealing("cyclical", total_steps=4, cycles=1, ratio=0.5)),
        ("tfr", TeacherForcing(ratio=1.0, start_decay_epoch=1, decay_step=0.25, steps_per_epoch=1)),
    ):
        means = np.array([entry[name] for entry in logged])
        per_step = means * (steps + 1) - np.concatenate([[0.0], means[:-1] * steps[1:]])
        expected = ops.convert_to_numpy(schedule(steps))
        np.testing.assert_allclose(per_step, expected, atol=1e-5)
        assert len(set(np.round(per_step, 4))) > 1, name


def test_marked_tests_pass_on_jax(background_run):
    """The backend-agnostic tests (marked `jax`) pass with KERAS_BACKEND=jax.

    conftest.py started that run in the background after collection; this waits for it.
    """
    status, output = background.finish(background_run, timeout=1200)
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    assert status == 0, output[-6000:]
    assert " passed" in summary and " failed" not in summary, summary


def test_select_backend_refuses_a_switch_after_keras_is_imported():
    from keras_cvae.startup import select_backend

    assert select_backend("tensorflow") == "tensorflow"
    with pytest.raises(ValueError, match="already running on tensorflow"):
        select_backend("jax")
    with pytest.raises(ValueError, match="backend must be one of"):
        select_backend("torch")
