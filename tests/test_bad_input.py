"""Bad input gives one clear error naming the file (and record), and no half-written output."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import random_sequence
from keras_cvae.data import DataError, describe_source, make_dataset, pipeline_errors
from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import lab_folders
from test_bair_tfrecord import hand_written_example, write_raw

ROOT = Path(__file__).resolve().parents[1]


def bad_record_dir(tmp_path, **bad):
    """test/traj_0_to_2.tfrecords whose record 1 is bad (hand-written Examples)."""
    rng = np.random.default_rng(4)
    seqs = [random_sequence(rng) for _ in range(3)]
    records = [hand_written_example(s, **(bad if i == 1 else {})) for i, s in enumerate(seqs)]
    path = tmp_path / "ds" / "test" / "traj_0_to_2.tfrecords"
    write_raw(path, records)
    return tmp_path / "ds", path


def iterate(source, split="test", training=False):
    ds = make_dataset(source, split, batch_size=2, training=training, seed=0)
    with pipeline_errors(source):
        for i, _ in enumerate(ds):
            if training and i > 3:
                break


@pytest.mark.parametrize("setup", ["missing", "empty", "unknown"])
def test_missing_empty_or_unknown_directory(tmp_path, setup):
    path = tmp_path / "data"
    if setup != "missing":
        path.mkdir()
    if setup == "unknown":
        (path / "notes.txt").write_text("hi")
    expected = {"missing": "directory not found", "empty": "directory is empty", "unknown": "not a known dataset layout"}
    with pytest.raises(DataError, match=expected[setup]) as info:
        make_dataset(path, "train", batch_size=2, training=True)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(DataError):
        describe_source(path)


def test_missing_split_and_val_without_second_file(small_bair_dir, tmp_path):
    root, seqs = small_bair_dir
    (root / "train" / bair.file_name(3, 4)).unlink()
    with pytest.raises(DataError, match="only 1"):
        make_dataset(root, "val", batch_size=2, training=False)
    bair.write_sequences(tmp_path / "only_train" / "train" / bair.file_name(0, 0), seqs[:1])
    with pytest.raises(DataError, match=r"only_train/test: directory not found"):
        make_dataset(tmp_path / "only_train", "test", batch_size=2, training=False)


def test_truncated_tfrecord_named_with_record(small_bair_dir):
    root, _ = small_bair_dir
    path = root / "train" / bair.file_name(0, 2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3 + 100])  # cuts record 2
    msg = rf"{path}: record 2: truncated"
    with pytest.raises(DataError, match=msg):
        make_dataset(root, "train", batch_size=2, training=True)
    with pytest.raises(DataError, match=msg):
        bair.validate_tfrecords(root)
    with pytest.raises(DataError, match=msg):
        lab_folders.tfrecord_to_lab(root, root.parent / "lab")
    assert not (root.parent / "lab").exists()
    assert [p.name for p in root.parent.iterdir()] == ["ds"]  # no staging dir left behind


def test_empty_tfrecord_file(small_bair_dir):
    root, _ = small_bair_dir
    (root / "test" / bair.file_name(0, 1)).write_bytes(b"")
    with pytest.raises(DataError, match="empty TFRecord file"):
        make_dataset(root, "test", batch_size=2, training=False)


def test_corrupt_payload_crc_named_by_validator(small_bair_dir):
    root, _ = small_bair_dir
    path = root / "test" / bair.file_name(0, 1)
    data = bytearray(path.read_bytes())
    record = 12 + len(data) // 2 + 5000  # inside record 1's payload
    data[record] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"{path}: record 1: corrupt or truncated"):
        bair.validate_tfrecords(root)


@pytest.mark.parametrize("bad, reader_match, graph_match", [
    (dict(image_bytes=100), "3/image_aux1/encoded has 100 bytes, expected 12288", "image_aux1 missing or not 12288 bytes"),
    (dict(skip=("7/image_aux1/encoded",)), "missing key '7/image_aux1/encoded'", "image_aux1 missing"),
    (dict(skip=("2/action",)), "missing key '2/action'", "action/endeffector_pos missing, NaN or inf"),
    (dict(action_override=[0.0, float("nan"), 0.0, 0.0]), "5/action contains NaN or inf", "action/endeffector_pos missing, NaN or inf"),
    (dict(action_override=[0.0, float("inf"), 0.0, 0.0]), "5/action contains NaN or inf", "action/endeffector_pos missing, NaN or inf"),
])
@pytest.mark.parametrize("training", [False, True])
def test_bad_record_content_names_file_and_record(tmp_path, bad, reader_match, graph_match, training):
    root, path = bad_record_dir(tmp_path, **bad)
    with pytest.raises(DataError, match=rf"{path}: record 1: {reader_match}"):
        bair.validate_tfrecords(root)
    if training:
        # a val-less layout: put the file in train/ as its only file
        (root / "train").mkdir()
        path.rename(root / "train" / path.name)
        path = root / "train" / path.name
    with pytest.raises(DataError, match=rf"^{path}: record 1: {graph_match}"):
        iterate(root, "train" if training else "test", training)


def test_action_with_wrong_float_count_named_by_reader(tmp_path):
    root, path = bad_record_dir(tmp_path, action_override=[1.0, 2.0, 3.0])
    with pytest.raises(DataError, match=rf"{path}: record 1: 5/action has 3 floats, expected 4"):
        bair.validate_tfrecords(root)


def lab_dataset(tmp_path):
    rng = np.random.default_rng(5)
    for k in range(2):
        lab_folders.write_sequence(tmp_path / "lab" / "test" / "traj_0_to_1" / str(k), random_sequence(rng))
    return tmp_path / "lab", tmp_path / "lab" / "test" / "traj_0_to_1" / "1"


def test_png_of_wrong_size(tmp_path):
    root, seq = lab_dataset(tmp_path)
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(seq / "4.png")
    with pytest.raises(DataError, match=rf"{seq / '4.png'}: image is 64x48, expected 64x64"):
        lab_folders.read_sequence(seq)
    with pytest.raises(DataError, match=rf"^{seq / '4.png'}: image is 64x48, expected 64x64$"):
        iterate(root)
    with pytest.raises(DataError, match=rf"{seq / '4.png'}"):
        lab_folders.lab_to_tfrecord(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("rows, cols, match", [
    (30, 3, r"row 0: 3 columns, expected 4"),
    (29, 4, r"29 rows, expected 30"),
    (31, 4, r"31 rows, expected 30"),
])
def test_csv_with_wrong_shape(tmp_path, rows, cols, match):
    root, seq = lab_dataset(tmp_path)
    (seq / "actions.csv").write_text("\n".join(",".join(["0.5"] * cols) for _ in range(rows)) + "\n")
    with pytest.raises(DataError, match=rf"{seq / 'actions.csv'}.*{match}"):
        lab_folders.read_sequence(seq)
    with pytest.raises(DataError, match=rf"^{seq / 'actions.csv'}: expected 30 rows x 4 columns, got {rows} rows of {cols} columns$"):
        iterate(root)


def test_csv_with_nan(tmp_path):
    root, seq = lab_dataset(tmp_path)
    lines = (seq / "endeffector_positions.csv").read_text().splitlines()
    lines[3] = "nan,0.0,0.0"
    (seq / "endeffector_positions.csv").write_text("\n".join(lines))
    with pytest.raises(DataError, match="contains NaN or inf"):
        lab_folders.read_sequence(seq)
    with pytest.raises(DataError, match=rf"^{seq / 'endeffector_positions.csv'}: contains NaN or inf$"):
        iterate(root)


def run_script(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_scripts_print_one_error_line_and_exit_non_zero(tmp_path, small_bair_dir):
    root, _ = small_bair_dir
    path = root / "test" / bair.file_name(0, 1)
    path.write_bytes(path.read_bytes()[:-10])
    result = run_script("scripts/convert_dataset.py", "--to", "lab", str(root), str(tmp_path / "lab"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {path}: record 1: truncated")
    assert not (tmp_path / "lab").exists()
    result = run_script("scripts/make_dataset.py", "--out", str(root), "--train", "1", "--test", "0", "--quiet")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {root}: already holds")
