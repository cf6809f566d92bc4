"""Bad input gives one clear error naming the file (and record), and no half-written output."""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_cvae.data import DataError
from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import convert, describe_source, lab_layout, make_dataset, pipeline_errors
from keras_cvae.tasks.pose import embedded as pose_embedded

from conftest import random_sequence
from test_bair_tfrecord import hand_written_example, write_raw

pytestmark = pytest.mark.slow  # trains, exports or starts processes: `-m 'not slow'` skips it

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
        convert.tfrecord_to_lab(root, root.parent / "lab")
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
        lab_layout.write_sequence(tmp_path / "lab" / "test" / "traj_0_to_1" / str(k), random_sequence(rng))
    return tmp_path / "lab", tmp_path / "lab" / "test" / "traj_0_to_1" / "1"


def test_png_of_wrong_size(tmp_path):
    root, seq = lab_dataset(tmp_path)
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(seq / "4.png")
    with pytest.raises(DataError, match=rf"{seq / '4.png'}: image is 64x48, expected 64x64"):
        lab_layout.read_sequence(seq)
    with pytest.raises(DataError, match=rf"^{seq / '4.png'}: image is 64x48, expected 64x64$"):
        iterate(root)
    with pytest.raises(DataError, match=rf"{seq / '4.png'}"):
        convert.lab_to_tfrecord(root, tmp_path / "out")
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
        lab_layout.read_sequence(seq)
    with pytest.raises(DataError, match=rf"^{seq / 'actions.csv'}: expected 30 rows x 4 columns, got {rows} rows of {cols} columns$"):
        iterate(root)


def test_csv_with_nan(tmp_path):
    root, seq = lab_dataset(tmp_path)
    lines = (seq / "endeffector_positions.csv").read_text().splitlines()
    lines[3] = "nan,0.0,0.0"
    (seq / "endeffector_positions.csv").write_text("\n".join(lines))
    with pytest.raises(DataError, match="contains NaN or inf"):
        lab_layout.read_sequence(seq)
    with pytest.raises(DataError, match=rf"^{seq / 'endeffector_positions.csv'}: contains NaN or inf$"):
        iterate(root)


def run_command(name, *args):
    """`keras_cvae.cli.<name>` in a fresh interpreter (what `python scripts/<name>.py` runs)."""
    return subprocess.run([sys.executable, "-m", f"keras_cvae.cli.{name}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_scripts_print_one_error_line_and_exit_non_zero(tmp_path, small_bair_dir):
    root, _ = small_bair_dir
    path = root / "test" / bair.file_name(0, 1)
    path.write_bytes(path.read_bytes()[:-10])
    result = run_command("convert_dataset", "--to", "lab", str(root), str(tmp_path / "lab"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {path}: record 1: truncated")
    assert not (tmp_path / "lab").exists()
    result = run_command("make_dataset", "--out", str(root), "--train", "1", "--test", "0", "--quiet")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {root}: exists and is not empty")


def test_train_in_a_fresh_process_prints_only_its_error_line_without_tensorflows_start_up_lines(tmp_path):
    # The command imports TensorFlow (select_backend) before it checks its flags, so every
    # start-up line TensorFlow logs (oneDNN, CUDA drivers, cuInit) would land in stderr.
    result = run_command("train", "--preset", "tiny", "--batch-size", "0", "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: batch_size (--batch-size) must be an integer of at least 1, got 0"
    ]
    assert not (tmp_path / "run").exists()


def test_pipeline_errors_passes_other_errors_unchanged(tmp_path):
    import tensorflow as tf

    with pytest.raises(KeyError):
        with pipeline_errors(tmp_path):
            raise KeyError("not a data error")
    unmarked = tf.errors.InvalidArgumentError(None, None, "shapes do not match")
    with pytest.raises(tf.errors.InvalidArgumentError, match="shapes do not match"):
        with pipeline_errors():
            raise unmarked
    marked = tf.errors.InvalidArgumentError(None, None, "assertion failed: [DataError: f.tfrecords: record 3: bad] [[{{node A}}]]")
    with pytest.raises(DataError, match=r"^f\.tfrecords: record 3: bad$"):
        with pipeline_errors():
            raise marked


# ---------------------------------------------------------------------- the script corpus
# Every bad input to every script, run in-process through the script's `main(argv)`: exit
# status 1, one stderr line "error: ..." naming the file (or the flag), no file left behind.

SCRIPTS = ("train", "evaluate", "export", "make_dataset", "convert_dataset", "predict_onnx")


@pytest.fixture(scope="module")
def scripts():
    """{name: the keras_cvae.cli module behind scripts/<name>.py}."""
    return {name: importlib.import_module(f"keras_cvae.cli.{name}") for name in SCRIPTS}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, write_run):
    """A run folder holding an untrained tiny model, trained (as run.json says) on good data."""
    from keras_cvae.tasks.svg.config import get_preset
    from keras_cvae.tasks.svg.model import SVG

    from test_evaluation import random_sequences, write_dataset

    root = tmp_path_factory.mktemp("corpus")
    data = write_dataset(root / "data", random_sequences(3, seed=1))
    return write_run(root / "run", SVG(get_preset("tiny").model, seed=0), data)


def bair_corpus_dir(root, bad_file, fault):
    """train/traj_0_to_2 (train), train/traj_3_to_5 (val), test/traj_0_to_2, each of 3
    records; record 1 of `bad_file` ("train", "val" or "test") has `fault`.

    Returns:
        (dataset root, the bad file).
    """
    rng = np.random.default_rng(11)
    files = {"train": root / "train" / bair.file_name(0, 2), "val": root / "train" / bair.file_name(3, 5),
             "test": root / "test" / bair.file_name(0, 2)}
    bad = {"short": dict(image_bytes=100), "nan": dict(action_override=[0.0, float("nan"), 0.0, 0.0])}
    for name, path in files.items():
        faulty = name == bad_file and fault in bad
        records = [hand_written_example(random_sequence(rng), **(bad[fault] if faulty and i == 1 else {}))
                   for i in range(3)]
        write_raw(path, records)
    if fault == "crc":
        data = bytearray(files[bad_file].read_bytes())
        data[len(data) // 2] ^= 0xFF  # inside record 1's payload
        files[bad_file].write_bytes(bytes(data))
    return root, files[bad_file]


def lab_corpus_dir(root, bad_split, fault):
    """Lab folders train/ (2 sequences), validate/ (1), test/ (2); sequence 1 of `bad_split`
    has `fault`.

    Returns:
        (dataset root, the bad file).
    """
    rng = np.random.default_rng(12)
    for split, count in (("train", 2), ("validate", 1), ("test", 2)):
        for k in range(count):
            lab_layout.write_sequence(root / split / "traj_0" / str(k), random_sequence(rng))
    seq = root / bad_split / "traj_0" / "1"
    if fault == "missing_png":
        (seq / "4.png").unlink()
        return root, seq / "4.png"
    if fault == "wrong_size":
        Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(seq / "4.png")
        return root, seq / "4.png"
    if fault == "text_png":
        (seq / "4.png").write_text("not an image\n")
        return root, seq / "4.png"
    lines = (seq / "actions.csv").read_text().splitlines()
    lines[2] = {"csv_columns": "0.5,0.5,0.5", "csv_number": "0.5,abc,0.5,0.5"}[fault]
    (seq / "actions.csv").write_text("\n".join(lines) + "\n")
    return root, seq / "actions.csv"


def a_file(tmp_path):
    """A regular file, for outputs asked to go under it."""
    path = tmp_path / "a_file"
    path.write_text("in the way\n")
    return path


TRAIN = ["--preset", "tiny", "--no-xla", "--steps-per-epoch", "1", "--epochs", "1", "--verbose", "0"]
EVALUATE = ["--horizon", "10", "--samples", "1", "--quiet"]


def train_flag(flag, value):
    return lambda tmp_path, run: (["--data", str(run.path.parent / "data"), "--out", str(tmp_path / "run"),
                                   *TRAIN, flag, value], flag)


def train_bair(bad_file, fault):
    def case(tmp_path, run):
        root, bad = bair_corpus_dir(tmp_path / "ds", bad_file, fault)
        return ["--data", str(root), "--out", str(tmp_path / "run"), *TRAIN], f"{bad}: record 1: "
    return case


def train_lab(fault):
    def case(tmp_path, run):
        root, bad = lab_corpus_dir(tmp_path / "lab", "train", fault)
        return ["--data", str(root), "--out", str(tmp_path / "run"), *TRAIN], f"{bad}: "
    return case


def evaluate_flag(flag, value):
    return lambda tmp_path, run: (["--run", str(run.path), "--out", str(tmp_path / "eval"), *EVALUATE,
                                   flag, value], flag)


def save_predictions_case(target, names):
    def case(tmp_path, run):
        (tmp_path / "folder").mkdir()
        path = target.format(tmp=tmp_path, file=a_file(tmp_path))
        return (["--run", str(run.path), "--out", str(tmp_path / "eval"), *EVALUATE, "--save-predictions", path],
                names)
    return case


def evaluate_bair(fault):
    def case(tmp_path, run):
        root, bad = bair_corpus_dir(tmp_path / "ds", "test", fault)
        return (["--run", str(run.path), "--data", str(root), "--out", str(tmp_path / "eval"), *EVALUATE],
                f"{bad}: record 1: ")
    return case


def evaluate_lab(fault):
    def case(tmp_path, run):
        root, bad = lab_corpus_dir(tmp_path / "lab", "test", fault)
        return (["--run", str(run.path), "--data", str(root), "--out", str(tmp_path / "eval"), *EVALUATE],
                f"{bad}: ")
    return case


def train_pose_without_a_label(tmp_path, run):
    root = pose_embedded.write_dance_dataset(tmp_path / "dance", sizes={"train": (1, 8), "val": (1, 8)}, seed=0)
    missing = root / "train" / "train_label" / "frame3.png"
    missing.unlink()
    return ["--task", "pose", "--preset", "pose-tiny", "--data", str(root), "--out", str(tmp_path / "new")], "frame3.png"


def export_case(*argv, names="--out"):
    def case(tmp_path, run):
        args = [a.format(run=run.path, tmp=tmp_path, file=a_file(tmp_path)) for a in ("--run", "{run}", *argv)]
        return args, names.format(run=run.path, tmp=tmp_path)
    return case


def export_into_a_users_folder(tmp_path, run):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    return ["--run", str(run.path), "--out", str(tmp_path / "mine")], "thesis.txt"


def make_dataset_case(*argv, names):
    def case(tmp_path, run):
        a_file(tmp_path)
        return [a.format(tmp=tmp_path) for a in ("--quiet", "--workers", "1", *argv)], names.format(tmp=tmp_path)
    return case


def convert_truncated(tmp_path, run):
    root, bad = bair_corpus_dir(tmp_path / "ds", "test", None)
    bad.write_bytes(bad.read_bytes()[:-10])
    return ["--quiet", "--to", "lab", str(root), str(tmp_path / "lab")], f"{bad}: record 2: truncated"


def convert_lab_fault(tmp_path, run):
    root, bad = lab_corpus_dir(tmp_path / "lab", "train", "wrong_size")
    return ["--quiet", "--to", "tfrecord", str(root), str(tmp_path / "out")], f"{bad}: image is 64x48"


def convert_under_file(tmp_path, run):
    root, _ = bair_corpus_dir(tmp_path / "ds", "test", None)
    return ["--quiet", "--to", "lab", str(root), str(a_file(tmp_path) / "lab")], f"{a_file(tmp_path)} is a file"


def predict_case(*argv, names, model_dir="{tmp}/model"):
    def case(tmp_path, run):
        (tmp_path / "model").mkdir()
        context = tmp_path / "f0.png"
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(context)
        args = ["--model-dir", model_dir, "--context", str(context), "--conditions", str(tmp_path / "c.csv"),
                "--out", "{tmp}/predictions", *argv]
        return [a.format(tmp=tmp_path, file=a_file(tmp_path)) for a in args], names.format(tmp=tmp_path)
    return case


CORPUS = {
    # train.py: flags (checked by the frozen configs), then data faults met up front
    "train --batch-size 0": ("train", train_flag("--batch-size", "0")),
    "train --epochs 0": ("train", train_flag("--epochs", "0")),
    "train --tfr 1.5": ("train", train_flag("--tfr", "1.5")),
    "train --validation-steps 0": ("train", train_flag("--validation-steps", "0")),
    "train --lr -1": ("train", train_flag("--lr", "-1")),
    "train --kl-ratio 0": ("train", train_flag("--kl-ratio", "0")),
    "train --kl-cycles 0": ("train", train_flag("--kl-cycles", "0")),
    "train --tfr-floor above --tfr": ("train", train_flag("--tfr-floor", "1.5")),
    "train missing --data": ("train", lambda tmp_path, run: (
        ["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), *TRAIN], f"{tmp_path / 'nowhere'}: ")),
    "train corrupt record payload": ("train", train_bair("train", "crc")),
    "train short image bytes": ("train", train_bair("train", "short")),
    "train NaN action": ("train", train_bair("train", "nan")),
    "train lab missing PNG": ("train", train_lab("missing_png")),
    "train lab PNG of wrong size": ("train", train_lab("wrong_size")),
    "train lab text file named .png": ("train", train_lab("text_png")),
    "train lab CSV wrong column count": ("train", train_lab("csv_columns")),
    "train lab CSV non-number": ("train", train_lab("csv_number")),
    # train.py: faults met only once training runs (the validation split)
    "train val corrupt record payload": ("train", train_bair("val", "crc")),
    "train val short image bytes": ("train", train_bair("val", "short")),
    "train --out under a file": ("train", lambda tmp_path, run: (
        ["--data", str(run.path.parent / "data"), "--out", str(a_file(tmp_path) / "run"), *TRAIN],
        f"{a_file(tmp_path)} is a file")),
    "train --backup-every -1": ("train", train_flag("--backup-every", "-1")),
    "train --devices 0": ("train", train_flag("--devices", "0")),
    "train --devices 2, more than there are": ("train", train_flag("--devices", "2")),
    "train --resume missing folder": ("train", lambda tmp_path, run: (
        ["--resume", str(tmp_path / "nowhere")], str(tmp_path / "nowhere"))),
    "train --resume changing --kl": ("train", lambda tmp_path, run: (
        ["--resume", str(run.path), "--kl", "none"], f"{run.run_file}: kl cannot change")),
    "train --resume with --preset": ("train", lambda tmp_path, run: (
        ["--resume", str(run.path), "--preset", "tiny"], "--preset")),
    "train --resume with --latents": ("train", lambda tmp_path, run: (
        ["--resume", str(run.path), "--latents", "hierarchical"], "--latents")),
    "train --task pose missing label": ("train", train_pose_without_a_label),
    "train --task pose with --latents": ("train", lambda tmp_path, run: (
        ["--task", "pose", "--latents", "hierarchical", "--out", str(tmp_path / "new")], "--latents")),
    # evaluate.py
    "evaluate --save-predictions a folder": ("evaluate", save_predictions_case("{tmp}/folder", "folder: is a folder")),
    "evaluate --save-predictions under a file": ("evaluate", save_predictions_case(
        "{file}/preds.npz", "is a file, not a folder")),
    "evaluate --samples 0": ("evaluate", evaluate_flag("--samples", "0")),
    "evaluate --batch-size 0": ("evaluate", evaluate_flag("--batch-size", "0")),
    "evaluate --max-sequences 0": ("evaluate", evaluate_flag("--max-sequences", "0")),
    "evaluate --horizon 29": ("evaluate", evaluate_flag("--horizon", "29")),
    "evaluate --out under a file": ("evaluate", lambda tmp_path, run: (
        ["--run", str(run.path), *EVALUATE, "--out", str(a_file(tmp_path) / "eval")], f"{a_file(tmp_path)} is a file")),
    "evaluate missing --run": ("evaluate", lambda tmp_path, run: (
        ["--run", str(tmp_path / "nowhere"), *EVALUATE], str(tmp_path / "nowhere"))),
    "evaluate corrupt record payload": ("evaluate", evaluate_bair("crc")),
    "evaluate short image bytes": ("evaluate", evaluate_bair("short")),
    "evaluate NaN action": ("evaluate", evaluate_bair("nan")),
    "evaluate lab missing PNG": ("evaluate", evaluate_lab("missing_png")),
    "evaluate lab PNG of wrong size": ("evaluate", evaluate_lab("wrong_size")),
    "evaluate lab text file named .png": ("evaluate", evaluate_lab("text_png")),
    "evaluate lab CSV wrong column count": ("evaluate", evaluate_lab("csv_columns")),
    "evaluate lab CSV non-number": ("evaluate", evaluate_lab("csv_number")),
    # export.py
    "export --opset 5": ("export", export_case("--opset", "5", names="--opset")),
    "export --tolerance 0": ("export", export_case("--tolerance", "0", names="--tolerance")),
    "export --out under a file": ("export", export_case("--out", "{file}/export", names="is a file")),
    "export --out a folder of the user's": ("export", export_into_a_users_folder),
    "export --out the run folder itself": ("export", export_case("--out", "{run}", names="not an export folder")),
    "export missing --run": ("export", lambda tmp_path, run: (
        ["--run", str(tmp_path / "nowhere"), "--out", str(tmp_path / "export")], str(tmp_path / "nowhere"))),
    # make_dataset.py
    "make_dataset --train 0": ("make_dataset", make_dataset_case("--out", "{tmp}/new", "--train", "0", names="--train")),
    "make_dataset --test -1": ("make_dataset", make_dataset_case("--out", "{tmp}/new", "--test", "-1", names="--test")),
    "make_dataset --seed -1": ("make_dataset", make_dataset_case("--out", "{tmp}/new", "--seed", "-1", names="--seed")),
    "make_dataset --out under a file": ("make_dataset", make_dataset_case(
        "--out", "{tmp}/a_file/new", "--train", "1", "--test", "0", names="{tmp}/a_file is a file")),
    # convert_dataset.py
    "convert truncated record": ("convert_dataset", convert_truncated),
    "convert lab PNG of wrong size": ("convert_dataset", convert_lab_fault),
    "convert destination under a file": ("convert_dataset", convert_under_file),
    "convert missing source": ("convert_dataset", lambda tmp_path, run: (
        ["--quiet", "--to", "tfrecord", str(tmp_path / "nowhere"), str(tmp_path / "out")], str(tmp_path / "nowhere"))),
    # predict_onnx.py
    "predict --samples 0": ("predict_onnx", predict_case("--samples", "0", names="--samples")),
    "predict --fps 0": ("predict_onnx", predict_case("--fps", "0", names="--fps")),
    "predict --seed -1": ("predict_onnx", predict_case("--seed", "-1", names="--seed")),
    "predict --out under a file": ("predict_onnx", predict_case("--out", "{file}/predictions", names="is a file")),
    "predict model dir without metadata": ("predict_onnx", predict_case(names="{tmp}/model/metadata.json")),
}


def tree(*folders):
    return {p for folder in folders for p in Path(folder).rglob("*")}


@pytest.mark.parametrize("case", [
    pytest.param(name, marks=entry[2:]) for name, entry in CORPUS.items()
])
def test_bad_input_corpus(case, scripts, tiny_run, tmp_path, capsys, monkeypatch):
    script, setup = CORPUS[case][:2]
    argv, names = setup(tmp_path, tiny_run)
    monkeypatch.chdir(tmp_path)  # default outputs (runs/, saved_models/) land here, watched
    before = tree(tmp_path, tiny_run.path)
    capsys.readouterr()
    code = scripts[script].main(argv)
    err = capsys.readouterr().err
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert names in lines[0]
    assert tree(tmp_path, tiny_run.path) == before
