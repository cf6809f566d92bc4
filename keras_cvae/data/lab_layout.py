"""Reads and writes the course lab's folder layout (in NumPy, and in graph for tf.data).

Layout: `{train,validate,test}/<traj>/<k>/0.png..29.png` plus `actions.csv` (30 rows x 4)
and `endeffector_positions.csv` (30 rows x 3), no header.

The lab layout holds one camera (the model camera, `image_aux1`). PNG is lossless and the
CSV floats are written with `repr` of the float32 value, so both directions are exact.
"""

import re
from pathlib import Path

import numpy as np

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data.errors import MARKER, DataError
from keras_cvae.files import atomic_path, atomic_write_text

SPLIT_DIRS = {"train": "train", "val": "validate", "test": "test"}
ACTIONS_CSV = "actions.csv"
ENDEFFECTOR_CSV = "endeffector_positions.csv"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What tf.strings.to_number parses as a float (it also takes nan and inf, checked after).
_NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(?i:nan|inf|infinity)"


def natural_key(path: Path):
    """Sort key that orders names by their numbers as numbers (traj_2 before traj_10).

    Args:
        path: A file or folder.
    """
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def is_lab_root(path) -> bool:
    """True if `path` has a train/, validate/ or test/ subdirectory of sequence folders."""
    path = Path(path)
    for name in SPLIT_DIRS.values():
        split = path / name
        if split.is_dir() and any(split.glob(f"*/*/{ACTIONS_CSV}")):
            return True
    return False


def list_trajectories(split_dir) -> list:
    """The <traj> folders of a lab split directory, in natural order."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: directory not found")
    return sorted((p for p in split_dir.iterdir() if p.is_dir()), key=natural_key)


def list_sequences(split_dir) -> list:
    """Every <traj>/<k> sequence folder of a lab split directory, in natural order.

    Raises:
        DataError: The directory is missing or holds no sequence folder.
    """
    seqs = []
    for traj in list_trajectories(split_dir):
        seqs.extend(sorted((p for p in traj.iterdir() if p.is_dir()), key=natural_key))
    if not seqs:
        raise DataError(f"{split_dir}: no sequence folders (<traj>/<k>/0.png..29.png)")
    return seqs


def read_csv(path, columns: int) -> np.ndarray:
    """Reads a header-less CSV of SEQUENCE_LENGTH rows x `columns` floats as float32.

    Raises:
        DataError: Missing file, wrong shape, unparsable or non-finite value.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) != bair.SEQUENCE_LENGTH:
        raise DataError(f"{path}: {len(lines)} rows, expected {bair.SEQUENCE_LENGTH}")
    rows = []
    for i, line in enumerate(lines):
        fields = line.split(",")
        if len(fields) != columns:
            raise DataError(f"{path}: row {i}: {len(fields)} columns, expected {columns}")
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            raise DataError(f"{path}: row {i}: not a number in {line.strip()!r}") from None
    values = np.asarray(rows, np.float32)
    if not np.all(np.isfinite(values)):
        raise DataError(f"{path}: contains NaN or inf")
    return values


def read_png(path) -> np.ndarray:
    """Reads a 64x64 RGB PNG as uint8 [64, 64, 3]."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            pixels = np.asarray(image, np.uint8)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable PNG ({err})") from None
    expected = (bair.IMAGE_SIZE, bair.IMAGE_SIZE, bair.CHANNELS)
    if pixels.shape != expected:
        raise DataError(f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]}, expected 64x64")
    return pixels


def read_sequence(seq_dir) -> dict:
    """Reads one lab sequence folder: {"image_aux1", "action", "endeffector_pos"}."""
    seq_dir = Path(seq_dir)
    frames = np.stack([read_png(seq_dir / f"{t}.png") for t in range(bair.SEQUENCE_LENGTH)])
    return {
        "image_aux1": frames,
        "action": read_csv(seq_dir / ACTIONS_CSV, bair.ACTION_DIM),
        "endeffector_pos": read_csv(seq_dir / ENDEFFECTOR_CSV, bair.ENDEFFECTOR_DIM),
    }


def _write_csv(path: Path, values: np.ndarray):
    # repr of the float32 value as a double: parses back to the same float32 exactly.
    lines = [",".join(repr(float(v)) for v in row) for row in np.asarray(values, np.float32)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_sequence(seq_dir, sequence: dict):
    """Writes one sequence as a lab sequence folder, each file atomically.

    Args:
        seq_dir: The sequence folder (created).
        sequence: {"image_aux1": uint8 [30, 64, 64, 3], "action": [30, 4],
            "endeffector_pos": [30, 3]}.
    """
    from PIL import Image

    seq_dir = Path(seq_dir)
    seq_dir.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(sequence["image_aux1"], np.uint8)
    for t in range(bair.SEQUENCE_LENGTH):
        with atomic_path(seq_dir / f"{t}.png") as path:
            Image.fromarray(frames[t], mode="RGB").save(path, compress_level=1)
    _write_csv(seq_dir / ACTIONS_CSV, sequence["action"])
    _write_csv(seq_dir / ENDEFFECTOR_CSV, sequence["endeffector_pos"])


def _assert_marked(ok, *message):
    """A `tf.debugging.Assert` whose message is "DataError: " + the joined string tensors,
    which `errors.pipeline_errors` turns back into a DataError."""
    import tensorflow as tf

    return tf.debugging.Assert(ok, [tf.strings.join([MARKER, *message])])


def read_window_tf(seq_dir, start, length: int):
    """Reads frames [start, start+length) and their conditions of one lab sequence, in graph.

    A file that is not a PNG, a PNG that is not 64x64 and a CSV of the wrong shape, with a
    non-number or a NaN fail a `tf.debugging.Assert` whose message names the file (see
    `errors.pipeline_errors`); a missing file fails TensorFlow's own read.

    Args:
        seq_dir: string scalar tensor, the sequence folder.
        start: int32 scalar tensor, the first step.
        length: Static number of steps.

    Returns:
        (frames uint8 [length, 64, 64, 3], conditions float32 [length, 7]).
    """
    import tensorflow as tf

    steps = start + tf.range(length)
    paths = tf.strings.join([seq_dir, "/", tf.strings.as_string(steps), ".png"])

    def load(path):
        content = tf.io.read_file(path)
        is_png = _assert_marked(tf.equal(tf.strings.substr(content, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE),
                                path, ": not a PNG file")
        with tf.control_dependencies([is_png]):
            image = tf.io.decode_png(content, channels=3)
        shape = tf.shape(image)
        size = _assert_marked(
            tf.reduce_all(tf.equal(shape[:2], [bair.IMAGE_SIZE, bair.IMAGE_SIZE])),
            path, ": image is ", tf.strings.as_string(shape[1]), "x", tf.strings.as_string(shape[0]),
            ", expected 64x64",
        )
        with tf.control_dependencies([size]):
            return tf.ensure_shape(tf.identity(image), [bair.IMAGE_SIZE, bair.IMAGE_SIZE, 3])

    frames = tf.map_fn(
        load, paths, fn_output_signature=tf.TensorSpec([bair.IMAGE_SIZE, bair.IMAGE_SIZE, 3], tf.uint8)
    )

    def csv(name, columns):
        path = tf.strings.join([seq_dir, "/", name])
        text = tf.strings.regex_replace(tf.strings.strip(tf.io.read_file(path)), "\r", "")
        fields = tf.strings.split(tf.strings.split(text, "\n"), ",")
        rows = tf.cast(fields.nrows(), tf.int32)
        widths = tf.cast(fields.row_lengths(), tf.int32)
        shape = _assert_marked(
            tf.logical_and(tf.equal(rows, bair.SEQUENCE_LENGTH), tf.reduce_all(tf.equal(widths, columns))),
            path, f": expected {bair.SEQUENCE_LENGTH} rows x {columns} columns, got ",
            tf.strings.as_string(rows), " rows of ",
            tf.strings.reduce_join(tf.strings.as_string(tf.unique(widths).y), separator="/"), " columns",
        )
        text_fields = tf.strings.strip(fields.flat_values)
        numbers = _assert_marked(
            tf.reduce_all(tf.strings.regex_full_match(text_fields, _NUMBER)), path, ": a value is not a number"
        )
        with tf.control_dependencies([shape, numbers]):
            values = tf.strings.to_number(text_fields, tf.float32)
        values = tf.reshape(values, [bair.SEQUENCE_LENGTH, columns])
        finite = _assert_marked(tf.reduce_all(tf.math.is_finite(values)), path, ": contains NaN or inf")
        with tf.control_dependencies([finite]):
            return tf.identity(values)

    conditions = tf.concat(
        [csv(ACTIONS_CSV, bair.ACTION_DIM), csv(ENDEFFECTOR_CSV, bair.ENDEFFECTOR_DIM)], axis=-1
    )
    return frames, conditions[start : start + length]
