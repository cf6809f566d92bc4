"""The pose model: shapes, the step loop against hand-stepped references, losses and schedules.

Backend-agnostic: the module also runs on JAX (see test_backends.py), but for the fit.
"""

import keras
import numpy as np
import pytest
from keras import ops

from keras_cvae.distributions import reparameterize
from keras_cvae.schedules import KLAnnealing, TeacherForcing
from keras_cvae.tasks.pose.config import PoseModelConfig, pose_presets
from keras_cvae.tasks.pose.model import PoseCVAE

pytestmark = pytest.mark.jax
CONFIG = pose_presets()["pose-tiny"].model  # 4-frame windows, latents of 2 channels


def batch(rng, size=2, steps=4):
    shape = (size, steps, 32, 64, 3)
    return {"frames": rng.uniform(size=shape).astype("float32"),
            "conditions": rng.uniform(size=shape).astype("float32")}


@pytest.fixture
def model():
    keras.utils.set_random_seed(0)
    return PoseCVAE(CONFIG, seed=3)


def test_generation_shapes_follow_the_noise(model):
    data = batch(np.random.default_rng(0), steps=6)
    for steps in (1, 5):
        noise = np.zeros((2, steps, 32, 64, 2), "float32")
        frames = model({"context": data["frames"][:, :1], "conditions": data["conditions"], "noise": noise})
        assert tuple(frames.shape) == (2, steps, 32, 64, 3)
    assert model.config.latent_shape == (32, 64, 2)


def test_the_rollout_feeds_back_its_own_predictions(model):
    rng = np.random.default_rng(1)
    data = batch(rng)
    noise = rng.normal(size=(2, 3, 32, 64, 2)).astype("float32")
    rolled = ops.convert_to_numpy(model.rollout(data["frames"][:, 0], data["conditions"][:, 1:], noise))
    frame = data["frames"][:, 0]
    for t in range(3):  # the reference: step by hand from the previous prediction
        frame = ops.convert_to_numpy(model.step(frame, data["conditions"][:, t + 1], noise[:, t]))
        np.testing.assert_allclose(rolled[:, t], frame, atol=1e-5)


@pytest.mark.parametrize("teacher_forced", [True, False])
def test_training_rollout_with_teacher_forcing_on_and_off(model, teacher_forced):
    data = batch(np.random.default_rng(2))
    frames, labels = data["frames"], data["conditions"]
    state = ops.convert_to_numpy(model.seed_generator.state)
    predictions, mse, kl, _ = model.rollout_losses(frames, labels, teacher_forced, training=False)
    model.seed_generator.state.assign(state)  # replay the same posterior noise
    mean, log_variance = model.posterior_moments(frames[:, 1:], labels[:, 1:], training=False)
    latents = reparameterize(mean, log_variance, keras.random.normal(ops.shape(mean), seed=model.seed_generator))
    if teacher_forced:  # every step is fed the ground-truth previous frame
        expected = np.stack([ops.convert_to_numpy(model.step(frames[:, t], labels[:, t + 1], latents[:, t]))
                             for t in range(3)], axis=1)
    else:  # tfr 0: every step after the first is fed the model's own prediction
        expected = ops.convert_to_numpy(model.rollout(frames[:, 0], labels[:, 1:], latents))
    np.testing.assert_allclose(ops.convert_to_numpy(predictions), expected, atol=1e-5)
    np.testing.assert_allclose(float(mse), np.sum(np.mean((expected - frames[:, 1:]) ** 2, axis=(0, 2, 3, 4))),
                               rtol=1e-4)
    m, lv = ops.convert_to_numpy(mean), ops.convert_to_numpy(log_variance)
    reference_kl = 0.5 * np.sum(np.exp(lv) + m**2 - 1.0 - lv) / frames.shape[0]  # the lab's kl_criterion
    np.testing.assert_allclose(float(kl), reference_kl, rtol=1e-3)  # float32 sums


def test_a_tfr_of_zero_never_teacher_forces(model):
    model.compile(keras.optimizers.Adam(1e-3), teacher_forcing=TeacherForcing(0.0, 0, 0.0))
    model.optimizer.build(model.trainable_variables)
    assert not any(bool(model.training_schedule()[2]) for _ in range(20))


@pytest.mark.slow
@pytest.mark.tf_only  # JAX training is covered by test_training and test_backends
def test_a_short_fit_lowers_the_loss_and_anneals_the_kl_weight(model):
    data = batch(np.random.default_rng(4))
    model.compile(keras.optimizers.Adam(3e-3), kl_annealing=KLAnnealing("monotonic", total_steps=4, cycles=1, ratio=0.5),
                  teacher_forcing=TeacherForcing(1.0, 10, 0.0), beta=1e-3, jit_compile=False)
    history = model.fit(data, batch_size=2, epochs=4, verbose=0).history
    np.testing.assert_allclose(history["kl_anneal"], [0.0, 0.5, 1.0, 1.0])  # ramps over half of 4 steps
    assert history["mse"][-1] < history["mse"][0]
    assert history["tfr"] == [1.0] * 4


def test_the_config_round_trips_and_checks_its_values(model):
    assert PoseCVAE.from_config(model.get_config()).config == CONFIG
    assert PoseModelConfig.from_dict(CONFIG.to_dict()) == CONFIG
    with pytest.raises(ValueError, match="latent_channels"):
        PoseModelConfig(latent_channels=0)
