"""The SVG model: shapes, gradients, teacher forcing, save/load, learning."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_cvae.config import get_preset
from keras_cvae.model import SVG
from keras_cvae.schedules import KLAnnealing, TeacherForcing
from model_weights import randomize_weights

TINY = get_preset("tiny").model


def make_batch(batch=3, steps=TINY.sequence_length, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.random((batch, steps, 64, 64, 3), dtype=np.float32)
    conditions = rng.normal(size=(batch, steps, 7)).astype("float32")
    return frames, conditions


def generate(model, frames, conditions, noise):
    return ops.convert_to_numpy(model({"context": frames[:, : model.config.n_past],
                                       "conditions": conditions, "noise": noise}))


def test_reference_widths_and_skip_shapes():
    model = SVG(get_preset("svg").model)
    code, skips = model.encoder(np.zeros((2, 64, 64, 3), "float32"))
    assert code.shape == (2, 128)
    assert [tuple(s.shape[1:]) for s in skips] == [(64, 64, 64), (32, 32, 128), (16, 16, 256), (8, 8, 512)]
    frame = model.decoder(code, skips)
    assert frame.shape == (2, 64, 64, 3)


def test_parts_shapes():
    model = SVG(TINY, seed=0)
    code, skips = model.encoder(np.zeros((2, 64, 64, 3), "float32"))
    state = model.initial_state(2)
    assert len(state) == 2 * TINY.predictor_layers + 2 * TINY.prior_layers
    pair = np.zeros((2, 14), "float32")
    noise = np.zeros((2, TINY.z_dim), "float32")
    frame, new_state = model.predict_next(code, skips, pair, noise, state)
    assert frame.shape == (2, 64, 64, 3)
    assert [s.shape for s in new_state] == [s.shape for s in state]
    mean, log_variance, _ = model.posterior(model._join(code, pair), model.posterior.initial_state(2))
    assert mean.shape == log_variance.shape == (2, TINY.z_dim)


@pytest.mark.parametrize("horizon", [TINY.n_future, 6])
def test_generation_shape_and_range(horizon):
    model = SVG(TINY, seed=0)
    frames, conditions = make_batch(steps=TINY.n_past + horizon)
    noise = np.random.default_rng(0).normal(size=(3, horizon, TINY.z_dim)).astype("float32")
    out = generate(model, frames, conditions, noise)
    assert out.shape == (3, horizon, 64, 64, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_noise_changes_learned_prior_samples_but_zero_noise_is_deterministic():
    model = SVG(TINY, seed=0)
    randomize_weights(model, seed=0)
    frames, conditions = make_batch()
    zeros = np.zeros((3, TINY.n_future, TINY.z_dim), "float32")
    np.testing.assert_array_equal(generate(model, frames, conditions, zeros),
                                  generate(model, frames, conditions, zeros))
    noisy = np.random.default_rng(5).normal(size=zeros.shape).astype("float32")
    # Bit-identical for equal noise (above), so any clear difference is the noise's effect.
    assert np.abs(generate(model, frames, conditions, noisy) - generate(model, frames, conditions, zeros)).max() > 1e-5


@pytest.mark.parametrize("prior", ["learned", "fixed"])
@pytest.mark.parametrize("teacher_forced", [True, False])
def test_gradients_reach_every_sub_network(prior, teacher_forced):
    model = SVG(dataclasses.replace(TINY, prior=prior), seed=0)
    frames, conditions = make_batch()
    with tf.GradientTape() as tape:
        _, mse, kl = model.rollout_losses(frames, conditions, teacher_forced)
        loss = mse + kl
    grads = tape.gradient(loss, model.trainable_variables)
    parts = ["encoder", "decoder", "predictor", "posterior"] + (["prior"] if prior == "learned" else [])
    for part in parts:
        norms = [float(tf.norm(g)) for g, v in zip(grads, model.trainable_variables)
                 if v.path.split("/")[1] == part and g is not None]
        assert norms and max(norms) > 0, part
    assert (model.prior is None) == (prior == "fixed")


def test_free_running_feeds_own_predictions_not_ground_truth():
    """After the context, changing ground-truth frames must not change free-running outputs.

    The latents and skips are held fixed so that only the frame fed back can carry the
    change; the teacher-forced rollout, which does feed the ground truth, must change.
    Encodings use training mode (batch statistics), as the train step does: an untrained
    net in inference mode is nearly constant and would make the comparison empty.
    """
    model = SVG(TINY, seed=0)
    frames, conditions = make_batch()
    altered = frames.copy()
    altered[:, TINY.n_past:] = 1.0 - altered[:, TINY.n_past:]
    pairs = model.condition_pairs(model.normalize_conditions(conditions))
    latents = np.random.default_rng(1).normal(size=(3, TINY.sequence_length - 1, TINY.z_dim)).astype("float32")
    codes, skips = model._encode_sequence(ops.convert_to_tensor(frames), training=True)
    codes_altered, _ = model._encode_sequence(ops.convert_to_tensor(altered), training=True)

    free = model._free_running_rollout(tf.constant(frames), skips, pairs, latents)[0]
    free_altered = model._free_running_rollout(tf.constant(altered), skips, pairs, latents)[0]
    np.testing.assert_allclose(ops.convert_to_numpy(free), ops.convert_to_numpy(free_altered), atol=1e-6)

    forced = model._teacher_forced_rollout(codes, skips, pairs, latents)[0]
    forced_altered = model._teacher_forced_rollout(codes_altered, skips, pairs, latents)[0]
    future = slice(TINY.n_past, None)  # steps whose input frame is a ground-truth future frame
    assert np.abs(ops.convert_to_numpy(forced)[:, future] - ops.convert_to_numpy(forced_altered)[:, future]).max() > 1e-4


def test_teacher_forcing_ratio_zero_takes_the_free_running_branch(monkeypatch):
    model = SVG(TINY, seed=0)
    taken = []
    real = SVG.rollout_losses
    monkeypatch.setattr(SVG, "rollout_losses",
                        lambda self, f, c, forced, training=True: taken.append(forced) or real(self, f, c, forced, training))
    model.compile(keras.optimizers.Adam(1e-3), teacher_forcing=TeacherForcing(ratio=0.0, decay_step=0.0),
                  jit_compile=False, run_eagerly=True)
    frames, conditions = make_batch(batch=2)
    model.train_on_batch({"frames": frames, "conditions": conditions})
    # ops.cond runs eagerly: only the branch chosen by the coin executes.
    assert taken == [False]


def test_save_and_load_restores_every_weight(tmp_path):
    model = SVG(TINY, condition_mean=[0.5] * 7, condition_std=[2.0] * 7, seed=0)
    # Perturb every weight so that a freshly initialised model cannot match by chance.
    for variable in model.weights:
        variable.assign(variable + np.random.default_rng(0).normal(size=variable.shape).astype("float32") * 0.01)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    names = {v.path.split("/")[1] for v in loaded.weights}
    assert {"encoder", "decoder", "predictor", "posterior", "prior"} <= names
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
    frames, conditions = make_batch()
    noise = np.random.default_rng(2).normal(size=(3, TINY.n_future, TINY.z_dim)).astype("float32")
    np.testing.assert_array_equal(generate(model, frames, conditions, noise),
                                  generate(loaded, frames, conditions, noise))


def test_a_few_fit_steps_lower_the_loss():
    keras.utils.set_random_seed(0)
    model = SVG(TINY, seed=0)
    model.compile(keras.optimizers.Adam(2e-3), kl_annealing=KLAnnealing("none"), jit_compile=False)
    rng = np.random.default_rng(0)
    # Smooth, learnable frames: a constant colour per sequence that drifts slowly.
    colours = rng.random((4, 1, 1, 1, 3), dtype=np.float32)
    frames = np.clip(colours + 0.02 * np.arange(TINY.sequence_length)[None, :, None, None, None], 0, 1)
    frames = np.broadcast_to(frames, (4, TINY.sequence_length, 64, 64, 3)).astype("float32")
    data = tf.data.Dataset.from_tensors(
        {"frames": frames, "conditions": np.zeros((4, TINY.sequence_length, 7), "float32")}).repeat()
    history = model.fit(data, steps_per_epoch=8, epochs=3, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]


def test_mixed_precision_trains_with_float32_outputs():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = SVG(TINY, seed=0)
        model.compile(keras.optimizers.Adam(1e-3), jit_compile=False, run_eagerly=True)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        frames, conditions = make_batch(batch=2)
        logs = model.train_on_batch({"frames": frames, "conditions": conditions}, return_dict=True)
        assert np.isfinite(logs["loss"])
        noise = np.zeros((2, TINY.n_future, TINY.z_dim), "float32")
        out = model({"context": frames[:, :2], "conditions": conditions, "noise": noise})
        assert out.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
