"""Tests of the embedded robot-pushing world (keras_cvae.data.pushing_sim)."""

import dataclasses

import numpy as np
import pytest

from keras_cvae.data import pushing_sim as ps
from keras_cvae.data.pushing_sim import SimConfig, simulate, simulate_sequence

KEYS = ("image_aux1", "image_main", "action", "endeffector_pos")


@pytest.fixture(scope="module")
def sequences():
    return [simulate_sequence(3, i) for i in range(20)]


def test_shapes_dtypes_and_ranges(sequences):
    config = SimConfig()
    T, S = config.sequence_length, config.image_size
    for seq in sequences[:5]:
        assert tuple(seq) == KEYS
        for key in ("image_aux1", "image_main"):
            assert seq[key].shape == (T, S, S, 3)
            assert seq[key].dtype == np.uint8
            assert seq[key].flags.c_contiguous
        assert seq["action"].shape == (T, 4) and seq["action"].dtype == np.float32
        assert seq["endeffector_pos"].shape == (T, 3) and seq["endeffector_pos"].dtype == np.float32
        assert np.all(np.abs(seq["action"]) <= 1.0)
        assert np.all(seq["endeffector_pos"] >= np.float32(config.workspace_low) - 1e-6)
        assert np.all(seq["endeffector_pos"] <= np.float32(config.workspace_high) + 1e-6)
        assert np.all(np.isfinite(seq["action"])) and np.all(np.isfinite(seq["endeffector_pos"]))
        # Real images: a spread of intensities, not blank, frames change over time.
        assert seq["image_aux1"].std() > 10
        assert np.abs(np.diff(seq["image_aux1"].astype(int), axis=0)).mean() > 0.5


def test_other_sizes_and_lengths():
    config = SimConfig(image_size=32, sequence_length=7)
    seq = simulate_sequence(0, 0, config)
    assert seq["image_aux1"].shape == (7, 32, 32, 3)
    assert seq["image_main"].shape == (7, 32, 32, 3)
    assert seq["action"].shape == (7, 4)


def test_deterministic_in_seed_and_index():
    a = simulate_sequence(5, 2)
    b = simulate_sequence(5, 2)
    for key in KEYS:
        np.testing.assert_array_equal(a[key], b[key])
    for other in (simulate_sequence(6, 2), simulate_sequence(5, 3)):
        for key in KEYS:
            assert not np.array_equal(a[key], other[key]), key


def _integrate(ee0, actions, config):
    """Independent integration of the documented action semantics."""
    low = np.array(config.workspace_low, dtype=np.float64)
    high = np.array(config.workspace_high, dtype=np.float64)
    pos = [np.array(ee0, dtype=np.float64)]
    for t in range(len(actions) - 1):
        pos.append(np.minimum(np.maximum(pos[-1] + actions[t, :3] * config.step_scale, low), high))
    return np.array(pos)


def test_actions_drive_the_end_effector(sequences):
    config = SimConfig()
    clipped_somewhere = False
    for seq in sequences:
        expected = _integrate(seq["endeffector_pos"][0], seq["action"].astype(np.float64), config)
        np.testing.assert_allclose(seq["endeffector_pos"], expected, atol=1e-4)
        steps = np.cumsum(seq["action"][:-1, :3] * config.step_scale, axis=0)
        free = seq["endeffector_pos"][0] + steps
        clipped_somewhere |= not np.allclose(free, seq["endeffector_pos"][1:], atol=1e-4)
    # The planner moves a lot: positions really change with the actions.
    moves = np.abs(np.diff(sequences[0]["endeffector_pos"], axis=0)).sum()
    assert moves > 1.0


def test_clipping_at_the_workspace_bounds():
    config = SimConfig(sequence_length=12)
    actions = np.zeros((12, 4), np.float32)
    actions[:, 0] = 1.0  # keep going right
    actions[:, 2] = -1.0  # and down
    out = simulate(actions, np.random.default_rng(0), config)
    ee = out["endeffector_pos"]
    assert np.isclose(ee[-1, 0], config.workspace_high[0])
    assert np.isclose(ee[-1, 2], config.workspace_low[2])
    np.testing.assert_allclose(ee, _integrate(ee[0], actions.astype(np.float64), config), atol=1e-5)


def test_objects_move_in_most_sequences():
    config = SimConfig()
    px_per_unit = config.image_size / 2.0
    moved = 0
    for i in range(20):
        rng = np.random.default_rng([3, i])  # the same draws simulate_sequence makes
        scene = ps.sample_scene(rng, config)
        actions = ps.plan_actions(scene, rng, config)
        out = simulate(actions, rng, config, scene=scene)
        np.testing.assert_array_equal(out["image_aux1"], simulate_sequence(3, i)["image_aux1"])
        shift = np.linalg.norm(out["object_pos"][-1] - out["object_pos"][0], axis=-1).max()
        moved += shift * px_per_unit > 2.0
        # Objects never leave the table.
        assert np.all(np.abs(out["object_pos"]) <= 1.0)
    assert moved >= 10, moved


def _gripper_scene(config, pos, z):
    """An empty-ish scene (one object far in a corner) with the gripper held at `pos`."""
    one = dataclasses.replace(config, min_objects=1, max_objects=1)
    scene = ps.sample_scene(np.random.default_rng(1), one)
    scene.pos0[:] = [[-0.8, 0.8]]
    scene.ee0[:] = [pos[0], pos[1], z]
    return scene


@pytest.mark.parametrize("target", [(-0.4, 0.3), (0.5, 0.5), (0.3, -0.1)])
def test_gripper_is_drawn_where_the_end_effector_is(target):
    config = SimConfig(sequence_length=2)
    z = 0.1
    still = np.zeros((2, 4), np.float32)
    rng = np.random.default_rng
    here = simulate(still, rng(0), config, scene=_gripper_scene(config, target, z))
    elsewhere = simulate(still, rng(0), config, scene=_gripper_scene(config, (-0.6, -0.7), 0.9))
    scale = config.image_size / 2.0
    col = int((target[0] + 1.0) * scale)
    row = int((target[1] - config.tilt * z + 1.0) * scale)
    diff = np.abs(here["image_aux1"][0].astype(int) - elsewhere["image_aux1"][0]).sum(-1)
    assert diff[row - 2 : row + 3, col - 2 : col + 3].mean() > 40
    # Far from both grippers, arms and shadows the two renders agree.
    assert diff[-4:, :4].max() == 0
    # The second camera is mirrored: the gripper shows up on the other side.
    diff_main = np.abs(here["image_main"][0].astype(int) - elsewhere["image_main"][0]).sum(-1)
    mcol = config.image_size - 1 - (col - config.second_camera_shift)
    if 2 <= mcol < config.image_size - 2:
        assert diff_main[row - 2 : row + 3, mcol - 2 : mcol + 3].mean() > 40


def test_height_and_gripper_opening_are_visible():
    config = SimConfig(sequence_length=2)
    still = np.zeros((2, 4), np.float32)
    rng = np.random.default_rng
    low = simulate(still, rng(0), config, scene=_gripper_scene(config, (0.0, 0.2), 0.05))
    high = simulate(still, rng(0), config, scene=_gripper_scene(config, (0.0, 0.2), 0.8))
    assert np.abs(low["image_aux1"][0].astype(int) - high["image_aux1"][0].astype(int)).sum() > 2000
    opened = still.copy()
    opened[0, 3] = 1.0
    closed = still.copy()
    closed[0, 3] = -1.0
    scene = _gripper_scene(config, (0.0, 0.2), 0.3)
    a = simulate(opened, np.random.default_rng(0), config, scene=scene)["image_aux1"]
    b = simulate(closed, np.random.default_rng(0), config, scene=scene)["image_aux1"]
    np.testing.assert_array_equal(a[0], b[0])  # action[0] only shows from frame 1 on
    assert np.abs(a[1].astype(int) - b[1].astype(int)).sum() > 500


def _push_actions(scene, config):
    """Open-loop actions that lower the gripper behind object 0 and push through it."""
    T = config.sequence_length
    actions = np.zeros((T, 4), np.float32)
    o = scene.pos0[0]
    start = o + np.array([-0.45, 0.0])
    scene.ee0[:] = [start[0], start[1], 0.05]
    actions[:, 0] = 0.6  # push to the right through the object
    return actions


def test_same_actions_different_noise_give_different_motion():
    config = SimConfig()
    base = ps.sample_scene(np.random.default_rng(11), config)
    base.pos0[0] = [-0.2, 0.05]
    finals = []
    for seed in range(6):
        scene = dataclasses.replace(base, pos0=base.pos0.copy(), ee0=base.ee0.copy())
        actions = _push_actions(scene, config)
        out = simulate(actions, np.random.default_rng(100 + seed), config, scene=scene)
        assert np.linalg.norm(out["object_pos"][-1, 0] - out["object_pos"][0, 0]) > 0.2  # pushed
        finals.append(out["object_pos"][-1, 0])
    finals = np.array(finals)
    # Identical scene and actions, different noise: the object ends up in different places...
    assert np.ptp(finals[:, 1]) * config.image_size / 2 > 1.0
    # ...and without the noise the outcome is fixed.
    quiet = dataclasses.replace(config, stochastic=False)
    runs = []
    for seed in range(2):
        scene = dataclasses.replace(base, pos0=base.pos0.copy(), ee0=base.ee0.copy())
        actions = _push_actions(scene, quiet)
        out = simulate(actions, np.random.default_rng(seed), quiet, scene=scene)
        runs.append(out["object_pos"])
    np.testing.assert_array_equal(runs[0], runs[1])


def test_bad_actions_shape_is_rejected():
    with pytest.raises(ValueError):
        simulate(np.zeros((5, 4)), np.random.default_rng(0), SimConfig())


def test_second_camera_is_a_mirrored_shifted_view_of_the_same_state(sequences):
    config = SimConfig()
    S, shift = config.image_size, config.second_camera_shift
    seq = sequences[0]
    aux = seq["image_aux1"].astype(np.float64).mean(-1)
    main = seq["image_main"].astype(np.float64).mean(-1)
    assert not np.array_equal(seq["image_aux1"], seq["image_main"])
    # Columns shift.. of the first camera are the second camera's columns mirrored, up to its
    # smooth re-shading: the frame-to-frame changes (arm, objects) line up.
    d_aux = np.diff(aux, axis=0)[:, :, shift:]
    d_main = np.diff(main, axis=0)[:, :, ::-1][:, :, : S - shift]
    corr = np.corrcoef(d_aux.ravel(), d_main.ravel())[0, 1]
    assert corr > 0.9, corr
