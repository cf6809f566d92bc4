"""One model on two backends: TF/JAX parity, files crossing backends, the marked tests on JAX.

This module runs on TensorFlow (the suite's backend); the JAX side runs in background
processes started at collection (tests/background.py): tests/backend_parity.py, and the
re-run of every test marked `jax` (backend-agnostic tests of the model, training and
evaluation) under JAX, with the JAX-only loop checks below.
"""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

import background
import backend_parity
from backend_parity import SCHEDULE_STEPS
from keras_cvae import backends

pytestmark = pytest.mark.slow  # trains, exports or starts processes: `-m 'not slow'` skips it


@pytest.fixture(scope="module")
def jax_results(background_runs):
    """The folder of tests/backend_parity.py's files, started in the background at collection."""
    run = background_runs["backend_parity"]
    status, output = background.finish(run, timeout=600)
    assert status == 0, output[-3000:]
    return run.scratch


@pytest.mark.background("backend_parity")
def test_same_weights_and_noise_give_the_same_frames_on_tensorflow_and_jax(jax_results):
    tf_frames = np.load(jax_results / "tf_predictions.npy")
    jax_frames = np.load(jax_results / "jax_predictions.npy")
    assert tf_frames.std() > 0.01  # outputs that vary, so the comparison means something
    np.testing.assert_allclose(jax_frames, tf_frames, atol=1e-4)


@pytest.mark.background("backend_parity")
def test_a_model_trained_on_jax_loads_and_predicts_the_same_on_tensorflow(jax_results):
    model = keras.saving.load_model(jax_results / "jax.keras", compile=False)
    original = keras.saving.load_model(jax_results / "tf.keras", compile=False)
    inputs = dict(np.load(jax_results / "inputs.npz"))
    frames = ops.convert_to_numpy(model(inputs))
    np.testing.assert_allclose(frames, np.load(jax_results / "jax_trained_predictions.npy"), atol=1e-4)
    changed = [np.abs(ops.convert_to_numpy(a) - ops.convert_to_numpy(b)).max()
               for a, b in zip(model.trainable_variables, original.trainable_variables)]
    assert max(changed) > 1e-4  # the JAX training moved the weights


@pytest.mark.background("backend_parity")
def test_schedules_see_the_current_step_inside_one_jitted_fit_on_jax(jax_results):
    """Logged values are running means over the epoch; each step's value is recovered."""
    logged = json.loads((jax_results / "logged.json").read_text())
    assert len(logged) == SCHEDULE_STEPS
    steps = np.arange(SCHEDULE_STEPS)
    for name, schedule in (("kl_anneal", backend_parity.kl_annealing()), ("tfr", backend_parity.teacher_forcing())):
        means = np.array([entry[name] for entry in logged])
        per_step = means * (steps + 1) - np.concatenate([[0.0], means[:-1] * steps[1:]])
        expected = ops.convert_to_numpy(schedule(steps))
        np.testing.assert_allclose(per_step, expected, atol=1e-5)
        assert len(set(np.round(per_step, 4))) > 1, name


@pytest.mark.background("jax_rerun")
def test_marked_tests_pass_on_jax(background_runs):
    """The backend-agnostic tests (marked `jax`) pass with KERAS_BACKEND=jax.

    conftest.py started that run in the background after collection; this waits for it.
    """
    status, output = background.finish(background_runs["jax_rerun"], timeout=1200)
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


@pytest.mark.jax
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax", reason="XLA's CPU loops: runs in the JAX run")
@pytest.mark.parametrize("steps", [12, backends.MAX_UNROLLED_STEPS + 1])
def test_short_scans_are_unrolled_on_a_cpu_and_long_ones_stay_loops(steps):
    import jax

    layer = keras.layers.Dense(3, kernel_initializer="orthogonal", bias_initializer="ones")
    layer.build((None, 3))
    kernel, bias = (ops.convert_to_numpy(weight) for weight in layer.weights)

    def rollout(carry, xs):
        return backends.scan(lambda c, x: 0.5 * layer(c) + x, carry, xs, lambda c: c, layer)[1]

    initial = np.full((2, 3), 0.1, "float32")
    xs = np.random.default_rng(0).normal(size=(steps, 2, 3)).astype("float32")
    program = jax.jit(rollout).lower(initial, xs).as_text()
    assert ("stablehlo.while" in program) == (steps > backends.MAX_UNROLLED_STEPS)
    carry, expected = initial, []
    for x in xs:  # the same recurrence in NumPy
        carry = 0.5 * (carry @ kernel + bias) + x
        expected.append(carry)
    np.testing.assert_allclose(jax.jit(rollout)(initial, xs), np.stack(expected), rtol=1e-5, atol=1e-5)
