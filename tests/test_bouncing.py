"""The stochastic toy: layout, motion, randomness, rendering, and `--data bouncing`."""

import numpy as np
import pytest

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import DataError, embedded, resolve_source
from keras_cvae.data.bouncing import BouncingConfig, bouncing_sequence, render_discs
from keras_cvae.data.generate import TEST_INDEX_OFFSET, write_generated_dataset

CONFIG = BouncingConfig()


def test_a_sequence_has_the_bair_layout_and_no_informative_conditions():
    sequence = bouncing_sequence(0, 3)
    checked = bair.check_sequence(sequence)
    np.testing.assert_array_equal(checked["image_main"], checked["image_aux1"])
    assert not checked["action"].any() and not checked["endeffector_pos"].any()


def test_sequences_are_deterministic_in_seed_and_index():
    first, again = bouncing_sequence(4, 7), bouncing_sequence(4, 7)
    np.testing.assert_array_equal(first["image_main"], again["image_main"])
    assert not np.array_equal(first["image_main"], bouncing_sequence(4, 8)["image_main"])
    assert not np.array_equal(first["image_main"], bouncing_sequence(5, 7)["image_main"])


def test_the_disc_keeps_its_speed_and_direction_until_it_turns():
    low, high = CONFIG.radius, CONFIG.size - 1 - CONFIG.radius
    for index in range(50):
        sequence = bouncing_sequence(0, index)
        position, turned = sequence["position"], sequence["turned"]
        assert np.all(position >= low - 1e-9) and np.all(position <= high + 1e-9)
        moves = np.diff(position, axis=0)
        lengths = np.linalg.norm(moves, axis=1)
        assert np.all(lengths <= CONFIG.speed + 1e-9)
        for t in range(1, len(moves)):
            if not turned[t + 1] and not turned[t]:  # two straight moves in a row
                np.testing.assert_allclose(moves[t], moves[t - 1], atol=1e-9)


def test_the_future_is_not_determined_by_the_past():
    # The latent's job: within the 10 predicted frames most sequences take a new direction.
    turns = np.array([bouncing_sequence(0, index)["turned"][2:12].any() for index in range(200)])
    assert turns.mean() > 0.7
    # ... along one of the few headings, drawn at random (not mirrored): each is taken
    # about equally often, so a few samples can cover the outcomes of a turn.
    headings = CONFIG.heading_angles()
    chosen = []
    for index in range(200):
        sequence = bouncing_sequence(0, index)
        moves = np.diff(sequence["position"], axis=0)
        for t in np.flatnonzero(sequence["turned"][1:]):
            if t + 1 < len(moves) and np.linalg.norm(moves[t + 1]) > CONFIG.speed - 1e-9:  # not clipped
                angle = np.arctan2(moves[t + 1, 1], moves[t + 1, 0]) % (2 * np.pi)
                distance = np.abs(np.angle(np.exp(1j * (headings - angle))))
                assert distance.min() < 1e-9
                chosen.append(distance.argmin())
    counts = np.bincount(chosen, minlength=CONFIG.headings)
    assert len(counts) == CONFIG.headings and counts.min() > 0.7 * counts.mean()


def test_the_rendered_disc_is_centred_on_its_position():
    rng = np.random.default_rng(0)
    positions = rng.uniform(10, 53, size=(6, 2))
    frames = render_discs(positions, (250, 250, 250)).astype(np.float64)
    weights = frames[..., 0] - CONFIG.background
    ys, xs = np.mgrid[0:CONFIG.size, 0:CONFIG.size]
    centroid_x = (weights * xs).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
    centroid_y = (weights * ys).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
    np.testing.assert_allclose(centroid_x, positions[:, 0], atol=0.05)
    np.testing.assert_allclose(centroid_y, positions[:, 1], atol=0.05)
    area = weights.sum(axis=(1, 2)) / (250 - CONFIG.background)
    np.testing.assert_allclose(area, np.pi * CONFIG.radius**2, rtol=0.02)


def test_every_sequence_draws_the_disc_in_the_one_colour():
    for index in range(20):
        sequence = bouncing_sequence(0, index)
        x, y = np.round(sequence["position"][0]).astype(int)
        np.testing.assert_array_equal(sequence["image_main"][0, y, x], CONFIG.color)


@pytest.mark.slow  # starts worker processes
def test_data_bouncing_is_the_generated_toy(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    tiny = {
        "pushing": embedded.EmbeddedDataset("pushing", "pushing_v1", n_train=2, n_test=1),
        "bouncing": embedded.EmbeddedDataset("bouncing", "bouncing_v3", n_train=3, n_test=2),
    }
    monkeypatch.setattr(embedded, "embedded_datasets", lambda: tiny)
    source = resolve_source("bouncing")
    assert source.kind == "tfrecord" and source.root == tmp_path / "keras_cvae" / "bouncing_v3"
    read = list(bair.read_sequences(source.root / "test" / bair.file_name(0, 1)))
    np.testing.assert_array_equal(read[1]["image_main"], bouncing_sequence(0, TEST_INDEX_OFFSET + 1)["image_main"])
    assert not (tmp_path / "keras_cvae" / "pushing_v1").exists()  # only the asked-for dataset is built
    with pytest.raises(DataError, match="world must be one of"):
        write_generated_dataset(tmp_path / "x", n_train=1, n_test=0, seed=0, world="juggling")
