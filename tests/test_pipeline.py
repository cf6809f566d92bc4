"""make_dataset on the generated dataset: exact values, shapes, windows, seeds, splits."""

import numpy as np
import pytest

from conftest import N_TEST, N_TRAIN, SEED
from keras_cvae.data import DataError, condition_statistics, describe_source, make_dataset, resolve_source
from keras_cvae.data.generate import TEST_INDEX_OFFSET
from keras_cvae.data.pushing_sim import simulate_sequence


def full_sequences(source, split):
    """Every sequence of a split, all 30 steps: (uint8 frames [N, 30, ...], conditions [N, 30, 7])."""
    frames, conds = [], []
    for b in make_dataset(source, split, n_past=1, n_future=29, batch_size=64, training=False):
        frames.append(np.rint(b["frames"].numpy() * 255).astype(np.uint8))
        conds.append(b["conditions"].numpy())
    return np.concatenate(frames), np.concatenate(conds)


def test_generated_pixels_and_conditions_are_exactly_the_simulators(generated_dir):
    batches = list(make_dataset(generated_dir, "test", batch_size=3, training=False))
    assert [b["frames"].shape[0] for b in batches] == [3, 1]  # no drop_remainder in eval
    frames = np.concatenate([b["frames"].numpy() for b in batches])
    conds = np.concatenate([b["conditions"].numpy() for b in batches])
    for j in range(N_TEST):
        ref = simulate_sequence(SEED, TEST_INDEX_OFFSET + j)
        np.testing.assert_array_equal(np.rint(frames[j] * 255).astype(np.uint8), ref["image_aux1"][:12])
        np.testing.assert_array_equal(frames[j], ref["image_aux1"][:12].astype(np.float32) / 255.0)
        np.testing.assert_array_equal(conds[j, :, :4], ref["action"][:12])
        np.testing.assert_array_equal(conds[j, :, 4:], ref["endeffector_pos"][:12])
    val = next(iter(make_dataset(generated_dir, "val", n_past=1, n_future=29, batch_size=8, training=False)))
    ref = simulate_sequence(SEED, 257)
    np.testing.assert_array_equal(np.rint(val["frames"].numpy()[1] * 255).astype(np.uint8), ref["image_aux1"])


def test_shapes_dtypes_ranges_and_static_training_shapes(generated_dir):
    ds = make_dataset(generated_dir, "train", n_past=2, n_future=3, batch_size=4, training=True, seed=1)
    assert ds.element_spec["frames"].shape.as_list() == [4, 5, 64, 64, 3]
    assert ds.element_spec["conditions"].shape.as_list() == [4, 5, 7]
    b = next(iter(ds))
    assert b["frames"].dtype.name == "float32" and b["conditions"].dtype.name == "float32"
    f = b["frames"].numpy()
    assert 0.0 <= f.min() and f.max() <= 1.0 and f.std() > 0.01
    assert np.all(np.isfinite(b["conditions"].numpy()))


def test_training_windows_are_contiguous_slices_with_varying_starts(generated_dir):
    frames, conds = full_sequences(generated_dir, "train")
    ds = make_dataset(generated_dir, "train", n_past=2, n_future=4, batch_size=8, training=True, seed=3)
    starts = set()
    for b in ds.take(6):
        for wf, wc in zip(np.rint(b["frames"].numpy() * 255).astype(np.uint8), b["conditions"].numpy()):
            # find the stored sequence and start this window came from
            matches = [(i, s) for i in range(len(conds)) for s in range(30 - 6 + 1)
                       if np.array_equal(conds[i, s:s + 6], wc)]
            assert len(matches) == 1
            i, s = matches[0]
            np.testing.assert_array_equal(wf, frames[i, s:s + 6])
            starts.add(s)
    assert len(starts) > 5


@pytest.mark.slow
def test_same_seed_same_batches_different_seed_differs(generated_dir):
    def first(seed):
        ds = make_dataset(generated_dir, "train", batch_size=4, training=True, seed=seed)
        return [b["conditions"].numpy() for b in ds.take(3)]

    a, b, c = first(11), first(11), first(12)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_eval_mode_is_deterministic_and_starts_at_zero(generated_dir):
    a = [b["conditions"].numpy() for b in make_dataset(generated_dir, "val", batch_size=2, training=False)]
    b = [b["conditions"].numpy() for b in make_dataset(generated_dir, "val", batch_size=2, training=False)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    ref = simulate_sequence(SEED, 256)
    np.testing.assert_array_equal(a[0][0, :, :4], ref["action"][:12])


def test_val_is_held_out_of_train(generated_dir):
    _, train = full_sequences(generated_dir, "train")
    _, val = full_sequences(generated_dir, "val")
    assert len(train) == 256 and len(val) == N_TRAIN - 256
    train_keys = {c.tobytes() for c in train}
    assert not any(v.tobytes() in train_keys for v in val)
    # and training mode never yields a val window
    for b in make_dataset(generated_dir, "train", n_past=1, n_future=29, batch_size=16, training=True, seed=0).take(20):
        assert not any(c.tobytes() in {v.tobytes() for v in val} for c in b["conditions"].numpy())


def test_describe_source_and_root_detection(generated_dir, tmp_path):
    info = describe_source(generated_dir)
    assert info["kind"] == "tfrecord"
    assert info["splits"] == {"train": 256, "val": N_TRAIN - 256, "test": N_TEST}
    (tmp_path / "softmotion30_44k").symlink_to(generated_dir, target_is_directory=True)
    assert resolve_source(tmp_path).root == tmp_path / "softmotion30_44k"


def test_condition_statistics_match_numpy(generated_dir):
    _, train = full_sequences(generated_dir, "train")
    mean, std = condition_statistics(generated_dir, "train", max_sequences=100)
    flat = train[:100].reshape(-1, 7).astype(np.float64)
    assert mean.shape == (7,) and std.shape == (7,) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, np.where(flat.std(0) < 1e-6, 1.0, flat.std(0)), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(split="valid"), "split must be one of"),
    (dict(split="train", n_past=20, n_future=11), "n_past \\+ n_future <= 30"),
    (dict(split="train", batch_size=0), "batch_size"),
])
def test_bad_arguments(generated_dir, kwargs, match):
    args = dict(batch_size=2, training=False) | kwargs
    with pytest.raises(DataError, match=match):
        make_dataset(generated_dir, **args)


def test_engine_none_is_tf_when_tensorflow_imports_and_numpy_is_a_pydataset(generated_dir):
    import keras
    import tensorflow as tf

    from keras_cvae.data import NumpyEngine
    from keras_cvae.data.pipeline import resolve_engine

    assert resolve_engine(None) == "tf" and resolve_engine("numpy") == NumpyEngine()
    assert isinstance(make_dataset(generated_dir, "val", batch_size=2, training=False), tf.data.Dataset)
    ds = make_dataset(generated_dir, "val", batch_size=2, training=False, engine=NumpyEngine(workers=3))
    assert isinstance(ds, keras.utils.PyDataset) and ds.workers == 3 and not ds.use_multiprocessing


@pytest.mark.parametrize("engine", ["tf", "numpy"])
def test_iterate_numpy_gives_numpy_dicts_and_stops_at_max_batches(generated_dir, engine):
    from keras_cvae.data import iterate_numpy

    ds = make_dataset(generated_dir, "train", batch_size=2, training=True, seed=0, engine=engine)
    got = list(iterate_numpy(ds, max_batches=2))
    assert len(got) == 2
    assert all(isinstance(b["frames"], np.ndarray) and b["frames"].shape == (2, 12, 64, 64, 3) for b in got)
    assert len(list(iterate_numpy(make_dataset(generated_dir, "test", batch_size=3, training=False,
                                               engine=engine)))) == 2
