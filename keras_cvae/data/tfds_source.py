"""TensorFlow Datasets' `bair_robot_pushing_small`, read from an already prepared data_dir.

Splits: TFDS publishes "train" (43,264) and "test" (256). The BAIR convention holds one
256-sequence file of train out for validation; TFDS does not keep the file boundaries, so
here "val" is the first 256 examples of TFDS's train split (`train[:256]`) and "train" is
the rest (`train[256:]`). "test" is TFDS's test split.
"""

from pathlib import Path

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data.errors import DataError

TFDS_NAME = "bair_robot_pushing_small"
VAL_SIZE = 256
SPLITS = {"train": f"train[{VAL_SIZE}:]", "val": f"train[:{VAL_SIZE}]", "test": "test"}


def is_tfds_dir(path) -> bool:
    """True if `path` is a TFDS data_dir holding a prepared `bair_robot_pushing_small`."""
    return (Path(path) / TFDS_NAME).is_dir()


def find_data_dir(path):
    """The TFDS data_dir of `path`, or None if `path` is not in the TFDS layout.

    Accepts the data_dir itself, its `bair_robot_pushing_small/` folder, or a version
    folder inside that (TFDS then reads the newest prepared version).

    Args:
        path: A directory.
    """
    path = Path(path)
    for candidate in (path, path.parent, path.parent.parent):
        if is_tfds_dir(candidate) and (candidate == path or TFDS_NAME in path.parts[len(candidate.parts):][:1]):
            return candidate
    return None


def _builder(data_dir):
    import tensorflow_datasets as tfds

    data_dir = Path(data_dir)
    if not is_tfds_dir(data_dir):
        raise DataError(f"{data_dir}: no prepared TFDS dataset {TFDS_NAME}/ in this data_dir")
    try:
        builder = tfds.builder(TFDS_NAME, data_dir=str(data_dir))
    except Exception as err:  # tfds raises AssertionError / FileNotFoundError / ValueError
        raise DataError(f"{data_dir / TFDS_NAME}: TFDS dataset not prepared or unreadable ({err})") from None
    return builder


def split_sizes(data_dir) -> dict:
    """{"train", "val", "test": number of sequences} from the prepared dataset's info."""
    builder = _builder(data_dir)
    splits = builder.info.splits
    if not splits:
        raise DataError(f"{Path(data_dir) / TFDS_NAME}: TFDS dataset not prepared or unreadable (no splits)")
    n_train = splits["train"].num_examples if "train" in splits else 0
    return {
        "train": max(n_train - VAL_SIZE, 0),
        "val": min(n_train, VAL_SIZE),
        "test": splits["test"].num_examples if "test" in splits else 0,
    }


def load_split(data_dir, split: str, *, shuffle_files: bool = False, seed=None):
    """The split as a `tf.data.Dataset` of TFDS example dicts (never downloads)."""
    import tensorflow_datasets as tfds

    builder = _builder(data_dir)
    read_config = tfds.ReadConfig(shuffle_seed=seed) if seed is not None else None
    try:
        return builder.as_dataset(
            split=SPLITS[split], shuffle_files=shuffle_files, read_config=read_config
        )
    except Exception as err:
        reason = " ".join(str(err).split())[:300]
        raise DataError(
            f"{Path(data_dir) / TFDS_NAME}: TFDS dataset not prepared or unreadable, split {split!r} ({reason})"
        ) from None


def example_to_window(example: dict, start, length: int):
    """Converts one TFDS example to the model's window.

    Args:
        example: {"image_aux1": uint8 [30, 64, 64, 3], "action": float32 [30, 4],
            "endeffector_pos": float32 [30, 3], ...} as tfds yields it.
        start: int scalar (tensor), first step of the window.
        length: Static window length.

    Returns:
        (frames uint8 [length, 64, 64, 3], conditions float32 [length, 7]).
    """
    import tensorflow as tf

    frames = example[bair.MODEL_CAMERA][start : start + length]
    conditions = tf.concat(
        [tf.cast(example["action"], tf.float32), tf.cast(example["endeffector_pos"], tf.float32)],
        axis=-1,
    )[start : start + length]
    frames = tf.ensure_shape(frames, [length, bair.IMAGE_SIZE, bair.IMAGE_SIZE, bair.CHANNELS])
    conditions = tf.ensure_shape(conditions, [length, bair.CONDITION_DIM])
    return frames, conditions
