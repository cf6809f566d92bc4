"""The NumPy engine of make_dataset: same evaluation batches as tf.data, a seeded training
order of its own, DataErrors for bad records, and a data path that runs without TensorFlow.

tf.data shuffles with TensorFlow's RNG, which NumPy cannot reproduce, so training is checked
by its properties (determinism, windows that are slices of the stored sequences, passes
that visit every sequence once, window starts covering [0, 30 - T]) instead of equality.
"""

import pickle

import numpy as np
import pytest
from PIL import Image
from test_bad_input import bad_record_dir, lab_dataset

from keras_cvae.data import DataError, NumpyEngine
from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import condition_statistics, convert, iterate_numpy, make_dataset, tfds_source
from keras_cvae.data.numpy_pipeline import WindowBatches

from no_tensorflow import run_without_tensorflow


def batches(source, split, engine, max_batches=None, **kw):
    args = dict(batch_size=3, training=False) | kw
    return list(iterate_numpy(make_dataset(source, split, engine=engine, **args), max_batches))


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys() == {"frames", "conditions"}
        for key in x:
            assert x[key].dtype == y[key].dtype == np.float32
            assert np.array_equal(x[key], y[key]), key


@pytest.mark.parametrize("split, n_past, n_future", [("val", 2, 10), ("test", 1, 29)])
def test_bair_evaluation_batches_equal_the_tf_engines(generated_dir, split, n_past, n_future):
    kw = dict(n_past=n_past, n_future=n_future)
    ours = batches(generated_dir, split, "numpy", **kw)
    assert [b["frames"].shape[0] for b in ours] == [3, 1]  # the last batch may be smaller
    assert_same_batches(ours, batches(generated_dir, split, "tf", **kw))


def test_lab_evaluation_batches_equal_the_tf_engines(small_bair_dir, tmp_path):
    root, _ = small_bair_dir
    lab = convert.tfrecord_to_lab(root, tmp_path / "lab")
    for split in ("train", "val", "test"):
        kw = dict(batch_size=2, n_past=1, n_future=29)
        ours = batches(lab, split, "numpy", **kw)
        assert_same_batches(ours, batches(lab, split, "tf", **kw))
        assert_same_batches(ours, batches(root, split, "numpy", **kw))


def stored_windows(source, length):
    """(frames [N, 30, ...], {window conditions bytes: (sequence, start)}) of the train split,
    read by the tf.data evaluation path."""
    stored = batches(source, "train", "tf", batch_size=64, n_past=1, n_future=29)
    frames = np.concatenate([b["frames"] for b in stored])
    conditions = np.concatenate([b["conditions"] for b in stored])
    lookup = {conditions[i, s : s + length].tobytes(): (i, s)
              for i in range(len(conditions)) for s in range(30 - length + 1)}
    assert len(lookup) == len(conditions) * (30 - length + 1)  # every window is told apart
    return frames, lookup


def test_training_windows_are_stored_slices_and_a_pass_visits_each_once(generated_dir):
    length, batch_size = 6, 16
    frames, lookup = stored_windows(generated_dir, length)
    ds = make_dataset(generated_dir, "train", n_past=2, n_future=4, batch_size=batch_size, training=True,
                      seed=3, engine="numpy")
    assert ds.num_batches is None  # infinite
    one_pass = len(frames) // batch_size  # 256 train sequences: 16 batches
    seen, starts = [], set()
    for batch in iterate_numpy(ds, one_pass):
        assert batch["frames"].shape == (batch_size, length, 64, 64, 3)
        assert batch["conditions"].shape == (batch_size, length, 7)
        for window_frames, window_conditions in zip(batch["frames"], batch["conditions"]):
            i, s = lookup[window_conditions.tobytes()]  # a KeyError would be a foreign window
            assert np.array_equal(window_frames, frames[i, s : s + length])
            seen.append(i)
            starts.add(s)
    assert sorted(seen) == list(range(len(frames)))
    assert starts == set(range(30 - length + 1))


def test_training_order_is_deterministic_per_seed_whatever_the_workers(generated_dir):
    def first(seed, workers=1):
        ds = make_dataset(generated_dir, "train", batch_size=4, training=True, seed=seed,
                          engine=NumpyEngine(workers=workers))
        return [b["conditions"] for b in iterate_numpy(ds, 3)]

    a, b, c, threaded = first(11), first(11), first(12), first(11, workers=2)
    for x, y, z in zip(a, b, threaded):
        assert np.array_equal(x, y) and np.array_equal(x, z)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.slow
def test_a_resumed_stream_continues_the_uninterrupted_one(generated_dir):
    def stream(start_batch, count, engine):
        ds = make_dataset(generated_dir, "train", batch_size=4, training=True, seed=11,
                          engine=engine, start_batch=start_batch)
        return [b["conditions"] for b in iterate_numpy(ds, count)]

    whole = stream(0, 70, "numpy")  # 280 windows: across the end of the first pass (256)
    assert_same = [np.array_equal(x, y) for x, y in zip(whole[63:], stream(63, 7, "numpy"))]
    assert assert_same == [True] * 7
    # tf.data cannot seek: a resumed stream is a different, reproducible one.
    tf_resumed = stream(5, 1, "tf")[0]
    assert np.array_equal(tf_resumed, stream(5, 1, "tf")[0])
    assert not np.array_equal(tf_resumed, stream(0, 6, "tf")[5])


def test_batches_span_passes_and_every_pass_is_a_permutation():
    spec = WindowBatches(length=12, batch_size=3, training=True, seed=5)
    stream = [item for b in range(7) for item in spec.items(b, size=7)]  # 21 elements: 3 passes
    for p in range(3):
        assert sorted(i for i, _ in stream[7 * p : 7 * (p + 1)]) == list(range(7))
    assert all(0 <= s <= 18 for _, s in stream)
    assert [i for i, _ in stream[:7]] != [i for i, _ in stream[7:14]]  # reshuffled per pass
    assert spec.items(3, size=7) == WindowBatches(12, 3, True, 5).items(3, size=7)
    assert WindowBatches(12, 3, False, 5).items(2, size=7) == [(6, 0)]


def test_dataset_pickles_for_worker_processes(generated_dir):
    ds = make_dataset(generated_dir, "val", batch_size=2, training=False, engine="numpy")
    assert len(ds) == 2 and ds.num_batches == 2
    clone = pickle.loads(pickle.dumps(ds))
    assert_same_batches([ds[1]], [clone[1]])
    with pytest.raises(IndexError):
        ds[2]


def test_condition_statistics_agree_across_engines(generated_dir):
    ours = condition_statistics(generated_dir, "train", max_sequences=100, engine="numpy")
    theirs = condition_statistics(generated_dir, "train", max_sequences=100, engine="tf")
    for x, y in zip(ours, theirs):
        np.testing.assert_allclose(x, y, rtol=1e-6)


def test_engine_argument_and_tfds_source(tmp_path, generated_dir):
    with pytest.raises(DataError, match="engine must be one of"):
        make_dataset(generated_dir, "val", batch_size=2, training=False, engine="torch")
    (tmp_path / tfds_source.TFDS_NAME).mkdir()
    with pytest.raises(DataError, match=rf"^{tmp_path}: a TFDS source needs TensorFlow"):
        make_dataset(tmp_path, "train", batch_size=2, training=True, engine="numpy")


@pytest.mark.parametrize("bad, match", [
    (dict(image_bytes=100), "3/image_aux1/encoded has 100 bytes, expected 12288"),
    (dict(skip=("7/image_aux1/encoded",)), "missing key '7/image_aux1/encoded'"),
    (dict(skip=("2/endeffector_pos",)), "missing key '2/endeffector_pos'"),
    (dict(action_override=[0.0, float("nan"), 0.0, 0.0]), "5/action contains NaN or inf"),
])
@pytest.mark.parametrize("training", [False, True])
def test_bad_record_is_a_data_error_naming_file_and_record(tmp_path, bad, match, training):
    root, path = bad_record_dir(tmp_path, **bad)  # test/traj_0_to_2.tfrecords, record 1 bad
    ds = make_dataset(root, "test", batch_size=2, training=training, seed=0, engine="numpy")
    with pytest.raises(DataError, match=rf"^{path}: record 1: {match}"):
        list(iterate_numpy(ds, 3))  # 3 batches of 2 read every record at least once


def test_bad_crc_and_truncation_are_data_errors(small_bair_dir):
    root, _ = small_bair_dir
    path = root / "test" / bair.file_name(0, 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 + 5000] ^= 0xFF  # inside record 1's payload
    path.write_bytes(bytes(data))
    ds = make_dataset(root, "test", batch_size=1, training=False, engine="numpy")
    assert ds[0]["frames"].shape == (1, 12, 64, 64, 3)  # record 0 is intact
    with pytest.raises(DataError, match=rf"^{path}: record 1: corrupt or truncated TFRecord \(data CRC mismatch\)"):
        ds[1]
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(DataError, match=rf"^{path}: record 1: truncated"):
        make_dataset(root, "test", batch_size=1, training=False, engine="numpy")


def test_bad_lab_files_are_data_errors_naming_the_file(tmp_path):
    root, seq = lab_dataset(tmp_path)  # test/traj_0_to_1/{0,1}
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(seq / "4.png")
    ds = make_dataset(root, "test", batch_size=1, training=False, engine="numpy")
    with pytest.raises(DataError, match=rf"^{seq / '4.png'}: image is 64x48, expected 64x64"):
        ds[1]
    (seq / "actions.csv").write_text("0.5,0.5\n" * 30)
    with pytest.raises(DataError, match=rf"^{seq / 'actions.csv'}: row 0: 2 columns, expected 4"):
        make_dataset(root, "test", batch_size=1, n_past=1, n_future=1, training=False, engine="numpy")[1]
    (root / "test" / "traj_0_to_1" / "0" / "0.png").unlink()
    with pytest.raises(DataError, match=r"traj_0_to_1/0/0\.png: file not found"):
        make_dataset(root, "test", batch_size=1, training=False, engine="numpy")[0]


def test_data_path_without_tensorflow(tmp_path):
    # A JAX machine may have no TensorFlow: generate the default dataset, read it back and
    # batch it (both modes, both sources) in a process where `import tensorflow` fails.
    result = run_without_tensorflow(
        f"""
        from keras_cvae.data import bair_tfrecord, condition_statistics, embedded, iterate_numpy
        from keras_cvae.data import convert, make_dataset
        from keras_cvae.data.pipeline import resolve_engine

        tiny = embedded.EmbeddedDataset("pushing", "pushing_v1", n_train=5, n_test=2)  # stand-in sizes
        embedded.embedded_datasets = lambda: {{"pushing": tiny}}
        root = embedded.ensure_embedded_dataset(progress=False, workers=2)
        assert bair_tfrecord.validate_tfrecords(root)[str(root / "train" / "traj_0_to_4.tfrecords")] == 5
        first = next(bair_tfrecord.read_sequences(root / "test" / "traj_0_to_1.tfrecords"))
        assert first["image_aux1"].shape == (30, 64, 64, 3)
        copy = bair_tfrecord.write_sequences({str(tmp_path / "copy.tfrecords")!r}, [first])
        assert next(bair_tfrecord.read_sequences(copy))["action"].tobytes() == first["action"].tobytes()
        assert resolve_engine(None) == resolve_engine("numpy")
        lab = convert.tfrecord_to_lab(root, {str(tmp_path / "lab")!r})
        for source in (None, lab):
            train = make_dataset(source, "train", batch_size=4, training=True, seed=0)
            for batch in iterate_numpy(train, 3):
                assert batch["frames"].shape == (4, 12, 64, 64, 3)
            test = list(iterate_numpy(make_dataset(source, "test", batch_size=4, training=False)))
            assert [b["conditions"].shape for b in test] == [(2, 12, 7)]
            assert (test[0]["frames"][0, 0] * 255).round().astype("uint8").tobytes() == first["image_aux1"][0].tobytes()
        print(condition_statistics(None)[0].shape)
        """,
        env={"KERAS_BACKEND": "jax", "KERAS_CVAE_DATA": str(tmp_path / "default")},
    )
    assert result.stdout.split()[-1] == "(7,)"
