"""The BAIR robot-pushing TFRecord layout: schema, writer, readers and validation.

Layout: `softmotion30_44k/{train,test}/traj_A_to_B.tfrecords`, uncompressed TFRecord files of
256 sequences each, named by the absolute index of their first and last sequence. Every
record is one `tf.train.Example` holding, for t in 0..29, `{t}/image_aux1/encoded` and
`{t}/image_main/encoded` (raw uint8 RGB, 64*64*3 bytes, HWC), `{t}/action` (4 floats) and
`{t}/endeffector_pos` (3 floats).
"""

import os
import re
import struct
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from keras_cvae.data.errors import DataError

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

    Args:
        split_dir: A directory such as `softmotion30_44k/train`.

    Raises:
        DataError: The directory is missing or holds no `.tfrecords` file.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: directory not found")
    files = [p for p in split_dir.iterdir() if p.name.endswith(FILE_SUFFIX) and p.is_file()]
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


def sequence_to_example(sequence: dict):
    """Builds the `tf.train.Example` of one sequence (checked with `check_sequence`)."""
    import tensorflow as tf

    seq = check_sequence(sequence)
    feature = {}
    for t in range(SEQUENCE_LENGTH):
        for camera in CAMERAS:
            feature[image_key(t, camera)] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[seq[camera][t].tobytes()])
            )
        feature[action_key(t)] = tf.train.Feature(
            float_list=tf.train.FloatList(value=seq["action"][t].tolist())
        )
        feature[endeffector_key(t)] = tf.train.Feature(
            float_list=tf.train.FloatList(value=seq["endeffector_pos"][t].tolist())
        )
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_sequences(path, sequences: Iterable[dict]) -> Path:
    """Writes sequences to one uncompressed TFRecord file, atomically.

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
    import tensorflow as tf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for i, sequence in enumerate(sequences):
                try:
                    example = sequence_to_example(sequence)
                except DataError as err:
                    raise DataError(f"{path} record {i}: {err}".replace(": sequence:", ":")) from None
                writer.write(example.SerializeToString())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def example_to_sequence(serialized: bytes, where: str = "record") -> dict:
    """Decodes one serialized BAIR Example into numpy arrays (both cameras), checking it.

    Args:
        serialized: The record bytes.
        where: File name and record index for error messages.

    Raises:
        DataError: The record is not an Example, a key is missing, an image has the wrong
            byte length, a float feature has the wrong length or holds NaN or inf.
    """
    import tensorflow as tf

    example = tf.train.Example()
    try:
        example.ParseFromString(serialized)
    except Exception as err:  # protobuf's DecodeError
        raise DataError(f"{where}: not a tf.train.Example ({err})") from None
    features = example.features.feature

    def get(key, kind):
        if key not in features:
            raise DataError(f"{where}: missing key {key!r}")
        return getattr(features[key], kind).value

    out = {camera: np.empty(SEQUENCE_SPEC[camera][0], np.uint8) for camera in CAMERAS}
    out["action"] = np.empty(SEQUENCE_SPEC["action"][0], np.float32)
    out["endeffector_pos"] = np.empty(SEQUENCE_SPEC["endeffector_pos"][0], np.float32)
    for t in range(SEQUENCE_LENGTH):
        for camera in CAMERAS:
            values = get(image_key(t, camera), "bytes_list")
            if len(values) != 1 or len(values[0]) != FRAME_BYTES:
                got = len(values[0]) if len(values) == 1 else f"{len(values)} values"
                raise DataError(
                    f"{where}: {image_key(t, camera)} has {got} bytes, expected {FRAME_BYTES}"
                    " (raw uint8 64x64x3)"
                )
            out[camera][t] = np.frombuffer(values[0], np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE, CHANNELS)
        for key, name, dim in (
            (action_key(t), "action", ACTION_DIM),
            (endeffector_key(t), "endeffector_pos", ENDEFFECTOR_DIM),
        ):
            values = get(key, "float_list")
            if len(values) != dim:
                raise DataError(f"{where}: {key} has {len(values)} floats, expected {dim}")
            out[name][t] = values
    for name in ("action", "endeffector_pos"):
        if not np.all(np.isfinite(out[name])):
            t = int(np.argwhere(~np.isfinite(out[name]))[0, 0])
            raise DataError(f"{where}: {t}/{name} contains NaN or inf")
    return out


def read_records(path) -> Iterator[bytes]:
    """Yields the raw records of a TFRecord file, turning corruption into DataError.

    Raises:
        DataError: The file is missing, truncated or fails its CRC check; the message
            names the file and the index of the first bad record.
    """
    import tensorflow as tf

    path = Path(path)
    scan_record_framing(path)  # names truncation cleanly before TensorFlow reads
    index = 0
    iterator = iter(tf.data.TFRecordDataset(str(path)))
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError, tf.errors.InvalidArgumentError) as err:
            reason = _clean_tf_message(err)
            raise DataError(f"{path} record {index}: corrupt or truncated TFRecord ({reason})") from None
        yield record.numpy()
        index += 1


def _clean_tf_message(err) -> str:
    """The useful part of a TensorFlow error message, on one line."""
    text = getattr(err, "message", None) or str(err)
    text = re.sub(r"\{\{function_node [^}]*\}\}", "", text)
    text = re.sub(r"\[Op:[^\]]*\].*", "", text)
    text = " ".join(text.split())
    return text or type(err).__name__


def read_sequences(path) -> Iterator[dict]:
    """Yields every sequence of a BAIR TFRecord file as numpy arrays, fully checked."""
    for index, record in enumerate(read_records(path)):
        yield example_to_sequence(record, where=f"{path} record {index}")


def scan_record_framing(path) -> int:
    """Counts the records of a TFRecord file by walking its length headers (cheap).

    Reads 12 bytes per record and seeks over the payload, so truncation and garbage
    headers are found without reading the data. Payload CRCs are not checked (see
    `validate_tfrecords`).

    Returns:
        The number of records.

    Raises:
        DataError: The file is empty, truncated or a length header is implausible.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise DataError(f"{path}: file not found") from None
    if size == 0:
        raise DataError(f"{path}: empty TFRecord file")
    count, offset = 0, 0
    with open(path, "rb") as f:
        while offset < size:
            header = f.read(12)
            if len(header) < 12:
                raise DataError(f"{path} record {count}: truncated TFRecord (incomplete header)")
            (length,) = struct.unpack("<Q", header[:8])
            end = offset + 12 + length + 4
            if end > size:
                raise DataError(
                    f"{path} record {count}: truncated or corrupt TFRecord "
                    f"(record of {length} bytes runs past the end of the {size}-byte file)"
                )
            offset = end
            f.seek(offset)
            count += 1
    return count


def validate_tfrecords(directory, *, progress: bool = False) -> dict:
    """Reads every record of every `.tfrecords` file under `directory` and checks it.

    Checks record framing and CRCs (TensorFlow's reader) and the content of each Example
    (keys, image byte lengths, float counts, NaN/inf).

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
    files = sorted(directory.rglob(f"*{FILE_SUFFIX}"))
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


def features_for(steps, *, with_defaults: bool = True) -> dict:
    """`tf.io.parse_example` spec for the model camera and the conditions at `steps`.

    With defaults, a missing image key parses as b"" and a missing float as NaN, so the
    checks in the pipeline (byte length, finiteness) report it with the file name.
    """
    import tensorflow as tf

    spec = {}
    for t in steps:
        spec[image_key(t)] = tf.io.FixedLenFeature([], tf.string, default_value=b"" if with_defaults else None)
        spec[action_key(t)] = tf.io.FixedLenFeature(
            [ACTION_DIM], tf.float32, default_value=[float("nan")] * ACTION_DIM if with_defaults else None
        )
        spec[endeffector_key(t)] = tf.io.FixedLenFeature(
            [ENDEFFECTOR_DIM], tf.float32,
            default_value=[float("nan")] * ENDEFFECTOR_DIM if with_defaults else None,
        )
    return spec


def parse_batch(serialized, steps=range(SEQUENCE_LENGTH)):
    """Parses a batch of serialized BAIR Examples (model camera only), without decoding.

    Args:
        serialized: string tensor [B].
        steps: The time steps to parse.

    Returns:
        (images, conditions): string tensor [B, len(steps)] of raw frames and float32
        [B, len(steps), 7] (4 action values then 3 end-effector values). Missing keys give
        b"" / NaN (see `features_for`).
    """
    import tensorflow as tf

    steps = list(steps)
    parsed = tf.io.parse_example(serialized, features_for(steps))
    images = tf.stack([parsed[image_key(t)] for t in steps], axis=1)
    conditions = tf.stack(
        [tf.concat([parsed[action_key(t)], parsed[endeffector_key(t)]], axis=-1) for t in steps],
        axis=1,
    )
    return images, conditions


def decode_frames(images):
    """Raw frame strings [..., T] (checked lengths) -> float32 [..., T, 64, 64, 3] in [0, 1]."""
    import tensorflow as tf

    shape = tf.shape(images)
    pixels = tf.io.decode_raw(images, tf.uint8)
    pixels = tf.reshape(pixels, tf.concat([shape, [IMAGE_SIZE, IMAGE_SIZE, CHANNELS]], 0))
    return tf.cast(pixels, tf.float32) / 255.0
