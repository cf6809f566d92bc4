"""Hierarchical latents: shapes per level, each level's own prior, gradients, serialization."""

import dataclasses

import keras
import numpy as np
import pytest
from keras import ops

from keras_cvae.schedules import TeacherForcing
from keras_cvae.tasks.svg.config import get_preset
from keras_cvae.tasks.svg.hierarchy import GaussianConv, LatentHierarchy
from keras_cvae.tasks.svg.model import SVG

from model_weights import randomize_weights

HIERARCHICAL = dataclasses.replace(get_preset("tiny").model, latents="hierarchical")
K = HIERARCHICAL.latent_channels


def batch(seed=0, rows=2):
    rng = np.random.default_rng(seed)
    frames = rng.random((rows, HIERARCHICAL.window_length, 64, 64, 3), dtype=np.float32)
    conditions = rng.normal(size=(rows, HIERARCHICAL.window_length, 7)).astype("float32")
    return frames, conditions


def level_slices(config):
    """Where each level sits in the flat latent: the top z_t, then each map flattened."""
    bounds = np.cumsum([0, config.z_dim] + [r * r * config.latent_channels for r in config.level_resolutions])
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def test_levels_sizes_and_the_flat_latent():
    assert HIERARCHICAL.level_resolutions == (8, 16)
    assert HIERARCHICAL.noise_dim == HIERARCHICAL.z_dim + (64 + 256) * K
    assert dataclasses.replace(HIERARCHICAL, latent_levels=3).level_resolutions == (8, 16, 32)
    assert dataclasses.replace(HIERARCHICAL, latents="flat").noise_dim == HIERARCHICAL.z_dim
    hierarchy = LatentHierarchy((8, 16), K, 8)
    flat = np.random.default_rng(0).normal(size=(3, hierarchy.size)).astype("float32")
    maps = hierarchy.split(flat)
    assert [tuple(m.shape) for m in maps] == [(3, 8, 8, K), (3, 16, 16, K)]
    np.testing.assert_array_equal(ops.convert_to_numpy(hierarchy.flatten(maps)), flat)


def test_step_gives_one_latent_map_per_decoder_resolution():
    model = SVG(HIERARCHICAL, seed=0)
    _, skips = model.encoder(np.zeros((2, 64, 64, 3), "float32"), np.zeros((2, 7), "float32"))
    z = np.zeros((2, HIERARCHICAL.z_dim), "float32")
    noise = np.zeros((2, model.hierarchy.size), "float32")
    maps, mean, log_variance = model.hierarchy.prior(skips, z, np.zeros((2, 14), "float32"), noise, False)
    assert [tuple(m.shape) for m in maps] == [(2, 8, 8, K), (2, 16, 16, K)]
    assert mean.shape == log_variance.shape == (2, model.hierarchy.size)
    frame = np.zeros((2, 64, 64, 3), "float32")
    prediction, (mean, _), _ = model.step(
        frame, np.zeros((2, 14), "float32"), np.zeros((2, HIERARCHICAL.noise_dim), "float32"), True,
        model.initial_state(2))
    assert prediction.shape == (2, 64, 64, 3) and mean.shape == (2, HIERARCHICAL.noise_dim)


def test_the_coarser_level_conditions_the_finer_not_the_reverse():
    model = SVG(HIERARCHICAL, seed=0)
    randomize_weights(model, seed=0)
    frames, conditions = batch()
    _, skips = model.encoder(frames[:, 0], conditions[:, 0])
    z = np.random.default_rng(1).normal(size=(2, HIERARCHICAL.z_dim)).astype("float32")
    pair = np.concatenate([conditions[:, 0], conditions[:, 1]], -1)
    noise = np.random.default_rng(2).normal(size=(2, model.hierarchy.size)).astype("float32")
    coarse, fine = level_slices(HIERARCHICAL)[1:]
    coarse, fine = slice(coarse.start - HIERARCHICAL.z_dim, coarse.stop - HIERARCHICAL.z_dim), \
        slice(fine.start - HIERARCHICAL.z_dim, fine.stop - HIERARCHICAL.z_dim)

    def prior_mean(noise):
        return ops.convert_to_numpy(model.hierarchy.prior(skips, z, pair, noise, False)[1])

    reference = prior_mean(noise)
    changed_coarse, changed_fine = noise.copy(), noise.copy()
    changed_coarse[:, coarse] += 1.0
    changed_fine[:, fine] += 1.0
    assert np.abs(prior_mean(changed_coarse)[:, fine] - reference[:, fine]).max() > 1e-3
    np.testing.assert_array_equal(prior_mean(changed_fine), reference)  # nothing reads the finest


def test_each_level_kl_is_against_its_own_prior():
    """Changing level l's prior net changes the prior (hence the KL) of level l only."""
    model = SVG(HIERARCHICAL, seed=0)
    randomize_weights(model, seed=1)
    frames, conditions = batch()
    normalized = model.normalize_conditions(conditions)
    pairs = model.condition_pairs(normalized)
    codes, skips = model._encode_sequence(ops.convert_to_tensor(frames), normalized, training=False)
    latents, mean_q, log_variance_q = model.posterior_latents(codes, skips, pairs, training=False)

    def prior():
        _, (mean, log_variance) = model._teacher_forced_rollout(codes, skips, pairs, latents, training=False)
        return ops.convert_to_numpy(mean), ops.convert_to_numpy(log_variance)

    slices = level_slices(HIERARCHICAL)
    reference_mean, _ = prior()
    for level, net in enumerate(model.hierarchy.priors, start=1):
        original = ops.convert_to_numpy(net.mean.bias)
        net.mean.bias.assign(original + 0.5)
        mean, _ = prior()
        net.mean.bias.assign(original)
        for index, part in enumerate(slices):
            difference = np.abs(mean[..., part] - reference_mean[..., part]).max()
            assert (difference > 0.4) if index == level else (difference == 0), (level, index)


@pytest.mark.slow
@pytest.mark.parametrize("teacher_forced", [True, False])
def test_a_train_step_reaches_every_levels_posterior_and_prior(teacher_forced):
    model = SVG(HIERARCHICAL, seed=0)
    model.compile(keras.optimizers.Adam(1e-2), beta=1.0, run_eagerly=True,
                  teacher_forcing=TeacherForcing(ratio=float(teacher_forced), decay_step=0.0))
    before = {v.path: ops.convert_to_numpy(v) for v in model.trainable_variables}
    frames, conditions = batch()
    model.train_on_batch({"frames": frames, "conditions": conditions})
    moved = {}
    for variable in model.trainable_variables:
        part = variable.path.split("/")[1]
        change = np.abs(ops.convert_to_numpy(variable) - before[variable.path]).max()
        moved[part] = max(moved.get(part, 0.0), change)
    for part in ("posterior8", "posterior16", "prior8", "prior16"):
        assert moved[part] > 1e-3, (part, moved)


def test_a_fixed_prior_is_standard_normal_at_every_level():
    model = SVG(dataclasses.replace(HIERARCHICAL, prior="fixed"), seed=0)
    assert model.hierarchy.priors is None and model.prior is None
    frame = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    _, (mean, log_variance), _ = model.step(
        frame, np.ones((2, 14), "float32"), np.ones((2, HIERARCHICAL.noise_dim), "float32"), True,
        model.initial_state(2))
    assert not np.any(ops.convert_to_numpy(mean)) and not np.any(ops.convert_to_numpy(log_variance))


@pytest.mark.parametrize("make", [
    lambda: GaussianConv(8, 3, name="level"),
    lambda: LatentHierarchy((8, 16, 32), 2, 8, learned_prior=False, name="hierarchy"),
], ids=["GaussianConv", "LatentHierarchy"])
def test_layers_round_trip_their_config(make):
    layer = make()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
