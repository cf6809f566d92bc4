"""TFRecord <-> lab folder conversion is lossless; the lab and TFDS sources feed make_dataset."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_cvae.data import DataError, describe_source, make_dataset
from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import convert, lab_layout, tfds_source
from keras_cvae.data.pipeline import Source, resolve_source

ROOT = Path(__file__).resolve().parents[1]


def all_batches(source, split, **kw):
    out = [b for b in make_dataset(source, split, n_past=1, n_future=29, batch_size=4, training=False, **kw)]
    return np.concatenate([b["frames"].numpy() for b in out]), np.concatenate([b["conditions"].numpy() for b in out])


def test_round_trip_tfrecord_lab_tfrecord_is_lossless(small_bair_dir, tmp_path):
    root, seqs = small_bair_dir
    lab = convert.convert_dataset(root, tmp_path / "lab", to="lab")
    assert sorted(p.name for p in lab.iterdir()) == ["test", "train", "validate"]
    assert (lab / "validate" / "traj_3_to_4" / "1" / "29.png").is_file()
    assert (lab / "train" / "traj_0_to_2" / "2" / "actions.csv").read_text().count("\n") == 30
    # lab sequence k of traj_0_to_2 is sequence k; values exact
    got = lab_layout.read_sequence(lab / "validate" / "traj_3_to_4" / "0")
    np.testing.assert_array_equal(got["image_aux1"], seqs[3]["image_aux1"])
    np.testing.assert_array_equal(got["action"], seqs[3]["action"])
    np.testing.assert_array_equal(got["endeffector_pos"], seqs[3]["endeffector_pos"])

    back = convert.convert_dataset(lab, tmp_path / "back", to="tfrecord")
    names = sorted(str(p.relative_to(back)) for p in back.rglob("*.tfrecords"))
    assert names == sorted(str(p.relative_to(root)) for p in root.rglob("*.tfrecords"))
    for name in names:
        for a, b in zip(bair.read_sequences(root / name), bair.read_sequences(back / name), strict=True):
            np.testing.assert_array_equal(a["image_aux1"], b["image_aux1"])
            np.testing.assert_array_equal(b["image_main"], b["image_aux1"])  # single lab camera
            assert a["action"].tobytes() == b["action"].tobytes()
            assert a["endeffector_pos"].tobytes() == b["endeffector_pos"].tobytes()


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_lab_source_gives_the_same_batches_as_tfrecords(small_bair_dir, tmp_path, split):
    root, _ = small_bair_dir
    lab = convert.tfrecord_to_lab(root, tmp_path / "lab")
    assert describe_source(lab) == {"kind": "lab", "path": str(lab), "splits": describe_source(root)["splits"]}
    fa, ca = all_batches(root, split)
    fb, cb = all_batches(lab, split)
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(ca, cb)


def test_lab_training_mode_windows(small_bair_dir, tmp_path):
    root, seqs = small_bair_dir
    lab = convert.tfrecord_to_lab(root, tmp_path / "lab")
    ds = make_dataset(lab, "train", n_past=2, n_future=3, batch_size=4, training=True, seed=2)
    assert ds.element_spec["frames"].shape.as_list() == [4, 5, 64, 64, 3]
    starts = set()
    for b in ds.take(5):
        for f, c in zip(b["frames"].numpy(), b["conditions"].numpy()):
            hits = [(i, s) for i in range(3) for s in range(26)
                    if np.array_equal(np.concatenate([seqs[i]["action"], seqs[i]["endeffector_pos"]], -1)[s:s + 5], c)]
            assert len(hits) == 1
            i, s = hits[0]
            np.testing.assert_array_equal(np.rint(f * 255).astype(np.uint8), seqs[i]["image_aux1"][s:s + 5])
            starts.add(s)
    assert len(starts) > 3


def test_unnamed_lab_folders_put_validate_second(tmp_path):
    rng = np.random.default_rng(9)
    from conftest import random_sequence

    for split, traj, n in (("train", "a", 2), ("train", "b", 1), ("validate", "v", 1)):
        for k in range(n):
            lab_layout.write_sequence(tmp_path / "lab" / split / traj / str(k), random_sequence(rng))
    out = convert.lab_to_tfrecord(tmp_path / "lab", tmp_path / "out")
    assert [p.name for p in bair.list_tfrecord_files(out / "train")] == [
        "traj_0_to_1.tfrecords", "traj_2_to_2.tfrecords", "traj_3_to_3.tfrecords"]
    v = next(bair.read_sequences(out / "train" / "traj_2_to_2.tfrecords"))
    np.testing.assert_array_equal(v["image_aux1"], lab_layout.read_sequence(tmp_path / "lab" / "validate" / "v" / "0")["image_aux1"])


def test_destination_must_be_empty(small_bair_dir, tmp_path):
    root, _ = small_bair_dir
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "x").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        convert.tfrecord_to_lab(root, tmp_path / "lab")
    assert (tmp_path / "lab" / "x").read_text() == "keep me"


def test_convert_script_help_and_run(small_bair_dir, tmp_path):
    root, _ = small_bair_dir
    help_text = subprocess.run([sys.executable, "-m", "keras_cvae.cli.convert_dataset", "--help"], cwd=ROOT,
                               capture_output=True, text=True).stdout
    for flag in ("--to", "--validate", "--quiet", "src", "dst"):
        assert flag in help_text
    result = subprocess.run([sys.executable, "-m", "keras_cvae.cli.convert_dataset", "--to", "lab", "--quiet", str(root),
                             str(tmp_path / "lab")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert lab_layout.is_lab_root(tmp_path / "lab")


# ---- TFDS ----------------------------------------------------------------------------------

def test_tfds_example_conversion():
    rng = np.random.default_rng(0)
    example = {
        "image_aux1": tf.constant(rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)),
        "image_main": tf.constant(rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)),
        "action": tf.constant(rng.normal(size=(30, 4)).astype(np.float32)),
        "endeffector_pos": tf.constant(rng.normal(size=(30, 3)).astype(np.float32)),
    }
    frames, conditions = tfds_source.example_to_window(example, tf.constant(5), 12)
    assert frames.shape == (12, 64, 64, 3) and frames.dtype == tf.uint8
    np.testing.assert_array_equal(frames.numpy(), example["image_aux1"].numpy()[5:17])
    np.testing.assert_array_equal(conditions.numpy()[:, :4], example["action"].numpy()[5:17])
    np.testing.assert_array_equal(conditions.numpy()[:, 4:], example["endeffector_pos"].numpy()[5:17])


def test_tfds_dir_without_prepared_dataset_is_a_clear_error(tmp_path):
    (tmp_path / tfds_source.TFDS_NAME).mkdir()
    with pytest.raises(DataError, match=rf"{tmp_path / tfds_source.TFDS_NAME}: TFDS dataset not prepared"):
        make_dataset(tmp_path, "train", batch_size=2, training=True)
    with pytest.raises(DataError, match="no prepared TFDS dataset"):
        tfds_source.split_sizes(tmp_path / "elsewhere")


@pytest.mark.parametrize("given", ["data_dir", "dataset_folder", "version_folder"])
def test_tfds_layout_accepted_from_data_dir_dataset_or_version_folder(tmp_path, given):
    version = tmp_path / tfds_source.TFDS_NAME / "0.1.0"
    version.mkdir(parents=True)
    (version / "dataset_info.json").write_text("{}")
    path = {"data_dir": tmp_path, "dataset_folder": version.parent, "version_folder": version}[given]
    assert resolve_source(path) == Source("tfds", tmp_path)


def test_folder_beside_a_tfds_dataset_is_not_tfds(tmp_path):
    (tmp_path / tfds_source.TFDS_NAME).mkdir()
    (tmp_path / "other" / "x").mkdir(parents=True)
    (tmp_path / "other" / "x" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="not a known dataset layout"):
        resolve_source(tmp_path / "other")


def test_tfds_source_through_make_dataset_with_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    (tmp_path / tfds_source.TFDS_NAME).mkdir()
    with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path)):
        ev = next(iter(make_dataset(tmp_path, "test", n_past=2, n_future=3, batch_size=4, training=False)))
        tr = make_dataset(tmp_path, "train", n_past=2, n_future=3, batch_size=4, training=True, seed=0)
        assert tr.element_spec["frames"].shape.as_list() == [4, 5, 64, 64, 3]
        b = next(iter(tr))
    assert ev["frames"].shape == (4, 5, 64, 64, 3) and ev["conditions"].shape == (4, 5, 7)
    for batch in (ev, b):
        f = batch["frames"].numpy()
        assert f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1
