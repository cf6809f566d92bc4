"""The SVG model: shapes, gradients, teacher forcing, save/load, learning.

Backend-agnostic: the whole module also runs on JAX (see test_backends.py).
"""

import dataclasses

import keras
import numpy as np
import pytest
from keras import ops

from keras_cvae.schedules import KLAnnealing, TeacherForcing
from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.model import SVG

from model_weights import randomize_weights

TINY = get_preset("tiny").model
# Both of the lab's extras at once: hierarchical latents and conditional convolution.
EXTRAS = dataclasses.replace(TINY, latents="hierarchical", conditioning="cconv")
TF_ONLY = pytest.mark.tf_only  # a second backend adds nothing here; the JAX run skips it
# One-step tests run eagerly on TensorFlow (tracing both branches costs more than the step)
# and jitted on JAX (uncompiled, JAX re-traces every loop at every call).
ON_JAX = keras.backend.backend() == "jax"
pytestmark = [pytest.mark.jax, pytest.mark.slow]  # trains: `-m "not slow"` skips it


def make_batch(batch=3, steps=TINY.window_length, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.random((batch, steps, 64, 64, 3), dtype=np.float32)
    conditions = rng.normal(size=(batch, steps, 7)).astype("float32")
    return frames, conditions


def generate(model, frames, conditions, noise):
    return ops.convert_to_numpy(model({"context": frames[:, : model.config.n_past],
                                       "conditions": conditions, "noise": noise}))


@TF_ONLY
def test_the_medium_preset_fits_the_25_mb_of_a_shipped_onnx_file():
    """model.onnx holds each weight once in float32 (19.6 MiB for medium, measured)."""
    sizes = {name: SVG(get_preset(name).model).count_params() * 4 for name in ("medium", "svg")}
    assert sizes["medium"] < 25e6 < sizes["svg"]


@TF_ONLY
def test_reference_widths_and_skip_shapes():
    model = SVG(get_preset("svg").model)
    code, skips = model.encoder(np.zeros((2, 64, 64, 3), "float32"))
    assert code.shape == (2, 128)
    assert [tuple(s.shape[1:]) for s in skips] == [(64, 64, 64), (32, 32, 128), (16, 16, 256), (8, 8, 512)]
    frame = model.decoder(code, skips)
    assert frame.shape == (2, 64, 64, 3)


def test_step_shapes_and_state_structure():
    model = SVG(TINY, seed=0)
    state = model.initial_state(2)
    assert len(state["recurrent"]) == 2 * TINY.predictor_layers + 2 * TINY.prior_layers
    assert [tuple(s.shape[1:]) for s in state["skips"]] == model.encoder.skip_shapes(64)
    frame = np.zeros((2, 64, 64, 3), "float32")
    pair = np.zeros((2, 14), "float32")
    noise = np.zeros((2, TINY.z_dim), "float32")
    prediction, (mean, log_variance), new_state = model.step(frame, pair, noise, True, state)
    assert prediction.shape == (2, 64, 64, 3)
    assert mean.shape == log_variance.shape == (2, TINY.z_dim)
    assert [s.shape for s in new_state["recurrent"]] == [s.shape for s in state["recurrent"]]
    assert [s.shape for s in new_state["skips"]] == [s.shape for s in state["skips"]]


def test_step_keeps_the_context_skips_after_the_context():
    model = SVG(TINY, seed=0)
    randomize_weights(model, seed=0)
    frames = np.random.default_rng(0).random((2, 2, 64, 64, 3), dtype=np.float32)
    pair = np.zeros((2, 14), "float32")
    noise = np.zeros((2, TINY.z_dim), "float32")
    _, _, context_state = model.step(frames[:, 0], pair, noise, True, model.initial_state(2))
    _, _, later_state = model.step(frames[:, 1], pair, noise, False, context_state)
    for kept, carried in zip(later_state["skips"], context_state["skips"]):
        np.testing.assert_array_equal(ops.convert_to_numpy(kept), ops.convert_to_numpy(carried))
    _, new_skips = model.encoder(frames[:, 0])
    for skip, carried in zip(new_skips, context_state["skips"]):
        np.testing.assert_array_equal(ops.convert_to_numpy(skip), ops.convert_to_numpy(carried))


@pytest.mark.parametrize("config", [TINY, pytest.param(EXTRAS, marks=TF_ONLY)], ids=["base", "extras"])
def test_call_equals_stepping_by_hand(config):
    """`call` (one symbolic loop) computes what the documented step-by-step protocol does."""
    model = SVG(config, seed=0)
    randomize_weights(model, seed=3)
    frames, conditions = make_batch(batch=2)
    noise = np.random.default_rng(4).normal(size=(2, TINY.n_future, config.noise_dim)).astype("float32")
    pairs = ops.convert_to_numpy(model.condition_pairs(model.normalize_conditions(conditions)))
    state, frame, stepped = model.initial_state(2), frames[:, 0], []
    for t in range(1, TINY.window_length):
        is_context = t <= TINY.n_past
        step_noise = noise[:, t - TINY.n_past] if t >= TINY.n_past else np.zeros_like(noise[:, 0])
        prediction, _, state = model.step(frame, pairs[:, t - 1], step_noise, is_context, state)
        if t >= TINY.n_past:
            stepped.append(ops.convert_to_numpy(prediction))
        frame = frames[:, t] if t < TINY.n_past else prediction
    np.testing.assert_allclose(generate(model, frames, conditions, noise), np.stack(stepped, 1), atol=1e-5)


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


def _compiled(model, ratio, learning_rate=1e-3, **kwargs):
    kwargs.setdefault("jit_compile", ON_JAX)
    kwargs.setdefault("run_eagerly", not ON_JAX)
    model.compile(keras.optimizers.Adam(learning_rate),
                  teacher_forcing=TeacherForcing(ratio=ratio, decay_step=0.0), **kwargs)
    return model


@pytest.mark.parametrize("prior, teacher_forced", [
    ("learned", False), ("fixed", True),
    pytest.param("learned", True, marks=TF_ONLY), pytest.param("fixed", False, marks=TF_ONLY),
])
def test_a_train_step_updates_every_sub_network(prior, teacher_forced):
    """Adam moves every weight whose gradient is well above its epsilon by about the
    learning rate (beta 1 so that the KL gradients reaching the posterior and prior are)."""
    model = _compiled(SVG(dataclasses.replace(TINY, prior=prior), seed=0), float(teacher_forced),
                      learning_rate=1e-2, beta=1.0)
    before = [ops.convert_to_numpy(v) for v in model.trainable_variables]
    frames, conditions = make_batch()
    model.train_on_batch({"frames": frames, "conditions": conditions})
    parts = ["encoder", "decoder", "predictor", "posterior"] + (["prior"] if prior == "learned" else [])
    for part in parts:
        moved = [np.abs(ops.convert_to_numpy(v) - b).max() for v, b in zip(model.trainable_variables, before)
                 if v.path.split("/")[1] == part]
        assert moved and max(moved) > 1e-3, part
    assert (model.prior is None) == (prior == "fixed")


def test_free_running_feeds_own_predictions_not_ground_truth():
    """After the context, changing ground-truth frames must not change free-running outputs.

    The latents are held fixed so that only the frame fed back can carry the change; the
    teacher-forced rollout, which does feed the ground truth, must change. Encodings use
    training mode (batch statistics), as the train step does: an untrained net in
    inference mode is nearly constant and would make the comparison empty.
    """
    model = SVG(TINY, seed=0)
    frames, conditions = make_batch()
    altered = frames.copy()
    altered[:, TINY.n_past:] = 1.0 - altered[:, TINY.n_past:]
    pairs = model.condition_pairs(model.normalize_conditions(conditions))
    latents = np.random.default_rng(1).normal(size=(3, TINY.window_length - 1, TINY.z_dim)).astype("float32")

    def free_running(x):
        return ops.convert_to_numpy(model.rollout(x, pairs, latents, TINY.n_past, "given", training=True)[0])

    np.testing.assert_allclose(free_running(frames), free_running(altered), atol=1e-6)

    def teacher_forced(x):
        codes, skips = model._encode_sequence(ops.convert_to_tensor(x), conditions, training=True)
        return ops.convert_to_numpy(model._teacher_forced_rollout(codes, skips, pairs, latents)[0])

    future = slice(TINY.n_past, None)  # steps whose input frame is a ground-truth future frame
    assert np.abs(teacher_forced(frames)[:, future] - teacher_forced(altered)[:, future]).max() > 1e-4


@pytest.mark.parametrize("config", [TINY, pytest.param(EXTRAS, marks=TF_ONLY)], ids=["base", "extras"])
def test_teacher_forced_fast_path_equals_stepping_on_ground_truth(config):
    """The batched teacher-forced rollout is `step` fed the ground truth at every step
    (with the extras: each frame encoded with its own condition, the spatial priors
    batched over all steps)."""
    model = SVG(config, seed=0)
    randomize_weights(model, seed=2)
    frames, conditions = make_batch()
    normalized = model.normalize_conditions(conditions)
    pairs = ops.convert_to_numpy(model.condition_pairs(normalized))
    latents = np.random.default_rng(1).normal(size=(3, TINY.window_length - 1, config.noise_dim)).astype("float32")
    codes, skips = model._encode_sequence(ops.convert_to_tensor(frames), normalized, training=False)
    fast, (fast_mean, _) = model._teacher_forced_rollout(codes, skips, pairs, latents, training=False)
    state, stepped, means = model.initial_state(3), [], []
    for t in range(1, TINY.window_length):
        prediction, (mean, _), state = model.step(
            frames[:, t - 1], pairs[:, t - 1], latents[:, t - 1], t <= TINY.n_past, state, "given")
        stepped.append(ops.convert_to_numpy(prediction))
        means.append(ops.convert_to_numpy(mean))
    np.testing.assert_allclose(ops.convert_to_numpy(fast), np.stack(stepped, 1), atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(fast_mean), np.stack(means, 1), atol=1e-5)


@pytest.mark.parametrize("ratio", [0.0, pytest.param(1.0, marks=TF_ONLY)])
def test_teacher_forcing_ratio_picks_the_branch(ratio):
    """The train step's logged MSE is the chosen branch's loss on the pre-step weights."""
    keras.utils.set_random_seed(0)
    model = _compiled(SVG(TINY, seed=0), ratio)
    randomize_weights(model, seed=1)
    model.optimizer.build(model.trainable_variables)
    frames, conditions = make_batch(batch=2)
    frames[:, TINY.n_past:] = 1.0  # white ground truth: far from what the model feeds back
    batch = {"frames": frames, "conditions": conditions}
    saved = [ops.convert_to_numpy(v) for v in model.variables]

    def restore():
        for variable, value in zip(model.variables, saved):
            variable.assign(value)

    logs = model.train_on_batch(batch, return_dict=True)
    losses = {}
    for teacher_forced in (True, False):
        restore()
        model.training_schedule()  # the coin draw the step made before its noise draw
        losses[teacher_forced] = float(model.training_losses(batch, teacher_forced, 1.0)["mse"])
    gap = abs(losses[True] - losses[False]) / losses[True]
    assert gap > 2e-4, gap
    np.testing.assert_allclose(logs["mse"], losses[bool(ratio)], rtol=gap / 20)


@pytest.mark.parametrize("config", [TINY, pytest.param(EXTRAS, marks=TF_ONLY)], ids=["base", "extras"])
def test_save_and_load_restores_every_weight(tmp_path, config):
    model = SVG(config, condition_mean=[0.5] * 7, condition_std=[2.0] * 7, seed=0)
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
    noise = np.random.default_rng(2).normal(size=(3, TINY.n_future, config.noise_dim)).astype("float32")
    np.testing.assert_array_equal(generate(model, frames, conditions, noise),
                                  generate(loaded, frames, conditions, noise))


@TF_ONLY  # JAX training is covered by test_training and test_backends
def test_a_few_fit_steps_lower_the_loss():
    keras.utils.set_random_seed(0)
    model = SVG(TINY, seed=0)
    model.compile(keras.optimizers.Adam(4e-3), kl_annealing=KLAnnealing("none"), jit_compile=ON_JAX,
                  run_eagerly=not ON_JAX)  # tracing both branches costs more than 12 eager steps
    rng = np.random.default_rng(0)
    # Smooth, learnable frames: a constant colour per sequence that drifts slowly.
    colours = rng.random((4, 1, 1, 1, 3), dtype=np.float32)
    frames = np.clip(colours + 0.02 * np.arange(TINY.window_length)[None, :, None, None, None], 0, 1)
    frames = np.broadcast_to(frames, (4, TINY.window_length, 64, 64, 3)).astype("float32")
    data = {"frames": frames, "conditions": np.zeros((4, TINY.window_length, 7), "float32")}
    history = model.fit(data, batch_size=4, epochs=12, verbose=0).history
    first, last = np.mean(history["loss"][:3]), np.mean(history["loss"][-3:])
    assert last < 0.7 * first, history["loss"]


@pytest.mark.parametrize("policy", [pytest.param("mixed_float16", marks=TF_ONLY), "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_outputs(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = SVG(TINY, seed=0)
        model.compile(keras.optimizers.Adam(1e-3), jit_compile=ON_JAX, run_eagerly=not ON_JAX)
        # float16 needs loss scaling to keep small gradients; bfloat16 has float32's range.
        scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16")
        frames, conditions = make_batch(batch=2)
        logs = model.train_on_batch({"frames": frames, "conditions": conditions}, return_dict=True)
        assert np.isfinite(logs["loss"])
        noise = np.zeros((2, TINY.n_future, TINY.z_dim), "float32")
        out = model({"context": frames[:, :2], "conditions": conditions, "noise": noise})
        assert out.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_latent_kl_is_the_posterior_against_the_prior_per_dimension():
    frames, conditions = make_batch()
    fixed = SVG(dataclasses.replace(TINY, prior="fixed"), seed=0)
    randomize_weights(fixed, seed=2)
    kl = ops.convert_to_numpy(fixed.latent_kl(frames, conditions))
    normalized = fixed.normalize_conditions(conditions)
    codes, _ = fixed._encode_sequence(ops.convert_to_tensor(frames), normalized, False)
    mean, log_variance = (ops.convert_to_numpy(x) for x in fixed.posterior_sequence(
        codes[:, 1:], fixed.condition_pairs(normalized), False))
    expected = 0.5 * (np.exp(log_variance) + mean**2 - 1.0 - log_variance)  # KL(q || N(0, I))
    assert kl.shape == (3, TINY.window_length - 1, TINY.z_dim)
    np.testing.assert_allclose(kl, expected, rtol=1e-4, atol=1e-6)

    learned = SVG(TINY, seed=0)
    randomize_weights(learned, seed=2)
    kl = ops.convert_to_numpy(learned.latent_kl(frames, conditions))
    _, _, total, _ = learned.rollout_losses(frames, conditions, teacher_forced=True, training=False)
    assert np.all(kl >= -1e-6)
    np.testing.assert_allclose(kl.sum(axis=(1, 2)).mean(), float(ops.convert_to_numpy(total)), rtol=1e-5)


@TF_ONLY
@pytest.mark.parametrize("prior", ["learned", "fixed"])
def test_free_bits_spare_the_posterior_below_the_threshold_but_train_the_prior(prior):
    import tensorflow as tf

    model = SVG(dataclasses.replace(TINY, prior=prior), seed=0)
    rng = np.random.default_rng(5)
    tensors = [tf.Variable(rng.normal(0.0, 0.5, (3, 4, TINY.z_dim)).astype("float32")) for _ in range(4)]

    def gradients(free_bits):
        model.free_bits = free_bits
        with tf.GradientTape() as tape:
            q, p = (tensors[0], tensors[1]), (None if prior == "fixed" else (tensors[2], tensors[3]))
            penalty = model.kl_penalty(q, p)
            plain = tf.reduce_sum(tf.reduce_mean(tf.reduce_sum(model._kl(q, p), -1), 0))
        return float(penalty), float(plain), tape.gradient(penalty, tensors, unconnected_gradients="zero")

    value, plain, free = gradients(0.0)
    assert value == pytest.approx(plain, rel=1e-6)
    with tf.GradientTape() as tape:
        q, p = (tensors[0], tensors[1]), (None if prior == "fixed" else (tensors[2], tensors[3]))
        reference = tape.gradient(tf.reduce_sum(tf.reduce_mean(tf.reduce_sum(model._kl(q, p), -1), 0)), tensors,
                                  unconnected_gradients="zero")
    for got, expected in zip(free, reference):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)

    high = 1e3  # above every step's KL: the posterior is free, the prior still follows it
    value, plain, spared = gradients(high)
    assert value == pytest.approx(4 * high)  # sum over the 4 steps of max(KL_t, free bits)
    assert not np.any(spared[0].numpy()) and not np.any(spared[1].numpy())
    for got, expected in zip(spared[2:], reference[2:]):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)


def test_the_posterior_sees_the_frame_it_explains_and_the_prior_does_not():
    # What lets z carry a random turn: q(z_t) reads frame t, p(z_t) only frames before it.
    model = SVG(TINY, seed=0)
    randomize_weights(model, seed=3)
    frames, conditions = make_batch()
    changed = frames.copy()
    k = TINY.n_past + 1  # a future frame, explained by step k
    changed[:, k] = 1.0 - changed[:, k]
    outputs = []
    for batch in (frames, changed):
        _, posterior, prior = model._training_rollout(batch, conditions, True, False)
        outputs.append([ops.convert_to_numpy(x) for x in (*posterior, *prior)])
    (q_mean, _, p_mean, _), (q_changed, _, p_changed, _) = outputs
    step = k - 1  # index of step k among the steps 1..T-1
    assert np.abs(q_changed[:, step] - q_mean[:, step]).max() > 1e-3
    np.testing.assert_array_equal(p_changed[:, : step + 1], p_mean[:, : step + 1])
    np.testing.assert_array_equal(q_changed[:, :step], q_mean[:, :step])
    assert np.abs(p_changed[:, step + 1] - p_mean[:, step + 1]).max() > 1e-3  # the next step's prior reads it
