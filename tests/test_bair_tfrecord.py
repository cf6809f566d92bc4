"""The BAIR TFRecord schema: hand-written Examples, the writer, the generator's files."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import random_sequence
from keras_cvae.data import DataError, make_dataset
from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data.generate import _file_plan, write_generated_dataset


def hand_written_example(seq, *, skip=(), image_bytes=None, action_override=None):
    """A BAIR Example built directly with tf.train (not the project's writer), keys in BAIR order."""
    feature = {}
    for t in range(30):
        for cam in ("image_main", "image_aux1"):
            raw = seq[cam][t].tobytes()
            if image_bytes is not None and cam == "image_aux1" and t == 3:
                raw = raw[:image_bytes]
            feature[f"{t}/{cam}/encoded"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[raw]))
        action = seq["action"][t].tolist()
        if action_override is not None and t == 5:
            action = action_override
        feature[f"{t}/action"] = tf.train.Feature(float_list=tf.train.FloatList(value=action))
        feature[f"{t}/endeffector_pos"] = tf.train.Feature(
            float_list=tf.train.FloatList(value=seq["endeffector_pos"][t].tolist()))
    for key in skip:
        del feature[key]
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_raw(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)


def test_hand_written_bair_examples_parse_exactly(tmp_path):
    rng = np.random.default_rng(1)
    seqs = [random_sequence(rng) for _ in range(3)]
    write_raw(tmp_path / "softmotion30_44k" / "test" / "traj_0_to_2.tfrecords", [hand_written_example(s) for s in seqs])
    batch = next(iter(make_dataset(tmp_path, "test", n_past=2, n_future=28, batch_size=8, training=False)))
    frames, conditions = batch["frames"].numpy(), batch["conditions"].numpy()
    assert frames.shape == (3, 30, 64, 64, 3) and conditions.shape == (3, 30, 7)
    np.testing.assert_array_equal(np.rint(frames * 255).astype(np.uint8), np.stack([s["image_aux1"] for s in seqs]))
    expected = np.stack([np.concatenate([s["action"], s["endeffector_pos"]], -1) for s in seqs])
    np.testing.assert_array_equal(conditions, expected)
    # The numpy reader agrees, for both cameras.
    got = list(bair.read_sequences(tmp_path / "softmotion30_44k" / "test" / "traj_0_to_2.tfrecords"))
    for g, s in zip(got, seqs):
        for key in bair.SEQUENCE_SPEC:
            np.testing.assert_array_equal(g[key], s[key])


def test_writer_round_trip_and_framing_count(tmp_path):
    rng = np.random.default_rng(2)
    seqs = [random_sequence(rng) for _ in range(4)]
    path = bair.write_sequences(tmp_path / bair.file_name(0, 3), seqs)
    assert bair.scan_record_framing(path) == 4
    for g, s in zip(bair.read_sequences(path), seqs):
        for key in bair.SEQUENCE_SPEC:
            np.testing.assert_array_equal(g[key], s[key])
    assert bair.validate_tfrecords(tmp_path) == {str(path): 4}


def test_writer_refuses_bad_sequence_and_leaves_nothing(tmp_path):
    rng = np.random.default_rng(3)
    good, bad = random_sequence(rng), random_sequence(rng)
    bad["action"][4, 1] = np.nan
    with pytest.raises(DataError, match=r"traj_0_to_1\.tfrecords record 1: action contains NaN"):
        bair.write_sequences(tmp_path / bair.file_name(0, 1), [good, bad])
    assert list(tmp_path.iterdir()) == []
    wrong = random_sequence(rng)
    wrong["image_aux1"] = wrong["image_aux1"][:, :32]
    with pytest.raises(DataError, match="image_aux1 has shape"):
        bair.write_sequences(tmp_path / bair.file_name(0, 0), [wrong])
    assert list(tmp_path.iterdir()) == []


def test_file_plan_names_files_by_absolute_index():
    plan = _file_plan(300)
    assert [name for name, _ in plan] == ["traj_0_to_255.tfrecords", "traj_256_to_299.tfrecords"]
    assert plan[1][1][0] == 256 and plan[1][1][-1] == 299
    assert bair.file_range("traj_256_to_511.tfrecords") == (256, 511)
    assert bair.file_range("other.tfrecords") is None


def test_files_sorted_by_start_index_not_name(tmp_path):
    for start, stop in ((0, 255), (1024, 1279), (256, 511)):
        (tmp_path / bair.file_name(start, stop)).write_bytes(b"x")
    names = [p.name for p in bair.list_tfrecord_files(tmp_path)]
    assert names == ["traj_0_to_255.tfrecords", "traj_256_to_511.tfrecords", "traj_1024_to_1279.tfrecords"]


def test_generator_same_seed_identical_files_different_seed_differs(tmp_path):
    a = write_generated_dataset(tmp_path / "a", n_train=3, n_test=1, seed=5, workers=2, progress=False)
    b = write_generated_dataset(tmp_path / "b", n_train=3, n_test=1, seed=5, workers=1, progress=False)
    c = write_generated_dataset(tmp_path / "c", n_train=3, n_test=1, seed=6, workers=2, progress=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*.tfrecords"))
    assert [str(f) for f in files] == ["test/traj_0_to_0.tfrecords", "train/traj_0_to_2.tfrecords"]
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes()
        assert (a / f).read_bytes() != (c / f).read_bytes()


def test_generator_refuses_non_empty_destination(generated_dir):
    with pytest.raises(DataError, match="already holds"):
        write_generated_dataset(generated_dir, n_train=1, n_test=0, seed=0, progress=False)


def test_simulator_workers_do_not_import_tensorflow():
    # The design notes: rendering and TensorFlow in one process crash. A spawned worker
    # imports exactly this chain.
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, keras_cvae.data.generate as g; g._simulate((0, 0)); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
