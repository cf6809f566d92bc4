"""The BAIR robot-pushing TFRecord layout: schema, writer, readers and validation.

Layout: `softmotion30_44k/{train,test}/traj_A_to_B.tfrecords`, uncompressed TFRecord files of
256 sequences each, named by the absolute index of their first and last sequence. Every
record is one `tf.train.Example` holding, for t in 0..29, `{t}/image_aux1/encoded` and
`{t}/image_main/encoded` (raw uint8 RGB, 64*64*3 bytes, HWC), `{t}/action` (4 floats) and
`{t}/endeffector_pos` (3 floats).

Nothing here needs TensorFlow (`tfrecord` frames the records, `example_proto` encodes the
Examples; the tf.data parsing is in `tf_pipeline`). The schema, writer, readers and
validation share one set of keys and checks, so they stay in one file of about 340 lines.
"""

import re
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from keras_cvae.data import tfrecord
from keras_cvae.data.errors import DataError
from keras_cvae.data.example_proto import (
    BYTES,
    FLOAT,
    ProtoDecodeError,
    bytes_feature,
    decode_example,
    encode_example,
    float_feature,
)

SEQUENCE_LENGTH = 30
IMAGE_SIZE = 64
CHANNELS = 3
FRAME_BYTES = IMAGE_SIZE * IMAGE_SIZE * CHANNELS
ACTION_DIM = 4
ENDEFFECTOR_DIM = 3
CONDITION_DIM = ACTION_DIM + ENDEFFECTOR_DIM
SEQUENCES_PER_FILE = 256
CAMERAS = ("image_aux1", "image_main")
MODEL_CAMERA = "image_aux1"  # the view SVG trains on
SPLIT_DIRS = ("train", "test")
ROOT_NAME = "softmotion30_44k"
FILE_SUFFIX = ".tfrecords"
_FILE_RE = re.compile(r"^traj_(\d+)_to_(\d+)\.tfrecords$")

# The arrays one sequence is made of, with their shapes and dtypes.
SEQUENCE_SPEC = {
    "image_aux1": ((SEQUENCE_LENGTH, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), np.uint8),
    "image_main": ((SEQUENCE_LENGTH, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), np.uint8),
    "action": ((SEQUENCE_LENGTH, ACTION_DIM), np.float32),
    "endeffector_pos": ((SEQUENCE_LENGTH, ENDEFFECTOR_DIM), np.float32),
}


def image_key(t: int, camera: str = MODEL_CAMERA) -> str:
    """Feature key of frame `t` of `camera`."""
    return f"{t}/{camera}/encoded"


def action_key(t: int) -> str:
    """Feature key of the action at step `t`."""
    return f"{t}/action"


def endeffector_key(t: int) -> str:
    """Feature key of the end-effector position at step `t`."""
    return f"{t}/endeffector_pos"


def file_name(start: int, stop: int) -> str:
    """Name of the file holding sequences `start` to `stop` inclusive (BAIR convention)."""
    return f"traj_{start}_to_{stop}{FILE_SUFFIX}"


def file_range(path) -> Optional[tuple]:
    """(start, stop) parsed from a `traj_A_to_B.tfrecords` name, or None for other names."""
    match = _FILE_RE.match(Path(path).name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def list_tfrecord_files(split_dir) -> list:
    """The `*.tfrecords` files of a split directory, sorted by their start index.

    Files not named `traj_A_to_B.tfrecords` come after the named ones, sorted by name.
    Hidden files (unfinished atomic writes) are left out.

    Args:
        split_dir: A directory such as `softmotion30_44k/train`.

    Raises:
        DataError: The directory is missing or holds no `.tfrecords` file.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: directory not found")
    # Hidden files are writes in progress (or cut short by a kill), never data.
    files = [p for p in split_dir.iterdir()
             if p.name.endswith(FILE_SUFFIX) and not p.name.startswith(".") and p.is_file()]
    if not files:
        raise DataError(f"{split_dir}: no {FILE_SUFFIX} files")

    def key(p):
        r = file_range(p)
        return (0, r[0], p.name) if r else (1, 0, p.name)

    return sorted(files, key=key)


def check_sequence(sequence: dict, where: str = "sequence") -> dict:
    """Checks that a sequence dict has the BAIR keys, shapes and dtypes and finite floats.

    Args:
        sequence: Dict with the keys of `SEQUENCE_SPEC`.
        where: Name used in the error message (a file and record index).

    Returns:
        The dict with its arrays converted to the spec dtypes.

    Raises:
        DataError: A key is missing, a shape is wrong or a float is NaN or infinite.
    """
    out = {}
    for key, (shape, dtype) in SEQUENCE_SPEC.items():
        if key not in sequence:
            raise DataError(f"{where}: missing {key!r}")
        value = np.asarray(sequence[key])
        if value.shape != shape:
            raise DataError(f"{where}: {key} has shape {value.shape}, expected {shape}")
        if dtype == np.uint8 and value.dtype != np.uint8:
            raise DataError(f"{where}: {key} has dtype {value.dtype}, expected uint8")
        value = value.astype(dtype, copy=False)
        if dtype == np.float32 and not np.all(np.isfinite(value)):
            raise DataError(f"{where}: {key} contains NaN or inf")
        out[key] = value
    return out


def sequence_to_record(sequence: dict, where: str = "sequence") -> bytes:
    """The serialized `tf.train.Example` of one sequence (checked with `check_sequence`).

    Args:
        sequence: Dict with the keys of `SEQUENCE_SPEC`.
        where: Name used in error messages (a file and record index).

    Raises:
        DataError: The sequence does not match the schema.
    """
    seq = check_sequence(sequence, where)
    features = {}
    for t in range(SEQUENCE_LENGTH):
        for camera in CAMERAS:
            features[image_key(t, camera)] = bytes_feature([seq[camera][t].tobytes()])
        features[action_key(t)] = float_feature(seq["action"][t])
        features[endeffector_key(t)] = float_feature(seq["endeffector_pos"][t])
    return encode_example(features)


def write_sequences(path, sequences: Iterable[dict]) -> Path:
    """Writes sequences to one uncompressed TFRecord file, atomically (no TensorFlow).

    The records go to a temporary file next to `path` that is renamed over `path` only
    once every record is written, so a failure never leaves a half-written file.

    Args:
        path: Destination file, normally named with `file_name(start, stop)`.
        sequences: Dicts with the keys of `SEQUENCE_SPEC`.

    Returns:
        The destination path.

    Raises:
        DataError: A sequence does not match the schema (nothing is written).
    """
    path = Path(path)
    records = (sequence_to_record(s, where=f"{path}: record {i}") for i, s in enumerate(sequences))
    tfrecord.write_records(path, records)
    return path


def _decode(serialized, where: str) -> dict:
    try:
        return decode_example(serialized)
    except ProtoDecodeError as err:
        raise DataError(f"{where}: not a tf.train.Example ({err})") from None


def _values(features: dict, key: str, kind: str, where: str):
    feature = features.get(key)
    if feature is None:
        raise DataError(f"{where}: missing key {key!r}")
    if feature.kind != kind:
        raise DataError(f"{where}: {key} is a {feature.kind} list, expected a {kind} list")
    return feature.values


def _frame(features: dict, t: int, camera: str, where: str) -> np.ndarray:
    """Frame `t` of `camera` as uint8 [64, 64, 3] (a view of the record bytes)."""
    key = image_key(t, camera)
    values = _values(features, key, BYTES, where)
    if len(values) != 1 or len(values[0]) != FRAME_BYTES:
        got = len(values[0]) if len(values) == 1 else f"{len(values)} values"
        raise DataError(f"{where}: {key} has {got} bytes, expected {FRAME_BYTES} (raw uint8 64x64x3)")
    return np.frombuffer(values[0], np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE, CHANNELS)


def _floats(features: dict, name: str, dim: int, where: str) -> np.ndarray:
    """float32 [30, dim] of the per-step float feature `name`, counts and finiteness checked."""
    out = np.empty((SEQUENCE_LENGTH, dim), np.float32)
    for t in range(SEQUENCE_LENGTH):
        key = f"{t}/{name}"
        values = _values(features, key, FLOAT, where)
        if len(values) != dim:
            raise DataError(f"{where}: {key} has {len(values)} floats, expected {dim}")
        out[t] = values
    if not np.all(np.isfinite(out)):
        t = int(np.argwhere(~np.isfinite(out))[0, 0])
        raise DataError(f"{where}: {t}/{name} contains NaN or inf")
    return out


def example_to_sequence(serialized, where: str = "record") -> dict:
    """Decodes one serialized BAIR Example into numpy arrays (both cameras), checking it.

    Args:
        serialized: The record bytes (any bytes-like object).
        where: File name and record index for error messages.

    Raises:
        DataError: The record is not an Example, a key is missing, an image has the wrong
            byte length, a float feature has the wrong length or holds NaN or inf.
    """
    features = _decode(serialized, where)
    out = {
        camera: np.stack([_frame(features, t, camera, where) for t in range(SEQUENCE_LENGTH)])
        for camera in CAMERAS
    }
    out["action"] = _floats(features, "action", ACTION_DIM, where)
    out["endeffector_pos"] = _floats(features, "endeffector_pos", ENDEFFECTOR_DIM, where)
    return out


def record_to_window(serialized, start: int, length: int, where: str = "record") -> tuple:
    """The model camera's frames and the conditions of steps [start, start + length).

    Every one of the 30 steps is checked (as `example_to_sequence` does for the model
    camera); only the window's frames are copied.

    Args:
        serialized: The record bytes.
        start: First step of the window.
        length: Steps in the window.
        where: File name and record index for error messages.

    Returns:
        (frames uint8 [length, 64, 64, 3], conditions float32 [length, 7]: 4 action values
        then 3 end-effector values).

    Raises:
        DataError: As `example_to_sequence`.
    """
    features = _decode(serialized, where)
    frames = [_frame(features, t, MODEL_CAMERA, where) for t in range(SEQUENCE_LENGTH)]
    conditions = np.concatenate(
        [_floats(features, "action", ACTION_DIM, where),
         _floats(features, "endeffector_pos", ENDEFFECTOR_DIM, where)],
        axis=-1,
    )
    return np.stack(frames[start : start + length]), conditions[start : start + length]


def read_records(path) -> Iterator[memoryview]:
    """Yields the raw records of a TFRecord file, checking both CRCs of each (no TensorFlow).

    Raises:
        DataError: The file is missing, truncated or fails its CRC check; the message
            names the file and the index of the first bad record.
    """
    return tfrecord.iter_records(path)


def read_sequences(path) -> Iterator[dict]:
    """Yields every sequence of a BAIR TFRecord file as numpy arrays, fully checked."""
    for index, record in enumerate(read_records(path)):
        yield example_to_sequence(record, where=f"{path}: record {index}")


def index_tfrecord(path) -> tfrecord.RecordIndex:
    """Where every record of a TFRecord file lies, from its length headers (cheap).

    Reads 12 bytes per record and seeks over the payload, so truncation and garbage
    headers are found without reading the data. Payload CRCs are checked when a record
    is read.

    Raises:
        DataError: The file is missing, empty, truncated or a length header is corrupt.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: empty TFRecord file")
    return tfrecord.index_records(path)


def scan_record_framing(path) -> int:
    """The number of records of a TFRecord file, from its length headers (see `index_tfrecord`).

    Raises:
        DataError: The file is missing, empty, truncated or a length header is corrupt.
    """
    return len(index_tfrecord(path))


def validate_tfrecords(directory, *, progress: bool = False) -> dict:
    """Reads every record of every `.tfrecords` file under `directory` and checks it.

    Checks record framing and both CRCs of every record, and the content of each Example
    (keys, image byte lengths, float counts, NaN/inf). Needs no TensorFlow.

    Args:
        directory: A split directory, or a root whose subdirectories hold the files.
        progress: Print one line per file.

    Returns:
        {file path (str): number of records}.

    Raises:
        DataError: The first problem, naming the file and the record index.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: directory not found")
    files = sorted(p for p in directory.rglob(f"*{FILE_SUFFIX}")
                   if not any(part.startswith(".") for part in p.relative_to(directory).parts))
    if not files:
        raise DataError(f"{directory}: no {FILE_SUFFIX} files")
    counts = {}
    for path in files:
        scan_record_framing(path)
        n = 0
        for _ in read_sequences(path):
            n += 1
        counts[str(path)] = n
        if progress:
            print(f"ok {path} ({n} sequences)")
    return counts
