"""The "tf" engine of `make_dataset`: tf.data pipelines for each source, and their errors.

Every builder yields the batches `pipeline.make_dataset` documents. Training streams are
shuffled and repeated, each sequence cut at a stateless random window start seeded by
(seed, element index); evaluation reads in file order from window start 0. Bad records
fail inside iteration with a TensorFlow error that `pipeline_errors` turns into a
DataError naming the file.
"""

import contextlib
import sys

import numpy as np

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import lab_layout, tfds_source
from keras_cvae.data.errors import MARKER, DataError, marked_message
from keras_cvae.data.shards import Shard
from keras_cvae.data.sources import bair_split_files, lab_split_sequences, locate_fault
from keras_cvae.data.windows import random_window_starts_tf, seed_or_fresh, to_unit_tf

SHUFFLE_BUFFER = 1024  # windows in the training shuffle (T=12: 0.15 MB each as uint8)
PARSE_BATCH = 16  # serialized records parsed together in training (16 measured fastest of 16/32/64)
CYCLE_LENGTH = 4  # files read concurrently in training
# TensorFlow's own read errors that name no file: a corrupt record (CRC), an undecodable
# Example or PNG, a missing file, an unparsable CSV number.
_UNNAMED = ("DataLossError", "InvalidArgumentError", "NotFoundError")


def features_for(steps, *, with_defaults: bool = True) -> dict:
    """`tf.io.parse_example` spec for the model camera and the conditions at `steps`.

    With defaults, a missing image key parses as b"" and a missing float as NaN, so the
    checks in the pipeline (byte length, finiteness) report it with the file name.

    Args:
        steps: The time steps to parse.
        with_defaults: Give missing keys the defaults above instead of failing.
    """
    import tensorflow as tf

    spec = {}
    for t in steps:
        spec[bair.image_key(t)] = tf.io.FixedLenFeature(
            [], tf.string, default_value=b"" if with_defaults else None
        )
        spec[bair.action_key(t)] = tf.io.FixedLenFeature(
            [bair.ACTION_DIM], tf.float32,
            default_value=[float("nan")] * bair.ACTION_DIM if with_defaults else None,
        )
        spec[bair.endeffector_key(t)] = tf.io.FixedLenFeature(
            [bair.ENDEFFECTOR_DIM], tf.float32,
            default_value=[float("nan")] * bair.ENDEFFECTOR_DIM if with_defaults else None,
        )
    return spec


def parse_batch(serialized, steps=range(bair.SEQUENCE_LENGTH)):
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
    images = tf.stack([parsed[bair.image_key(t)] for t in steps], axis=1)
    conditions = tf.stack(
        [tf.concat([parsed[bair.action_key(t)], parsed[bair.endeffector_key(t)]], axis=-1) for t in steps],
        axis=1,
    )
    return images, conditions


def decode_pixels(images):
    """Raw frame strings [..., T] (checked lengths) -> uint8 [..., T, 64, 64, 3].

    Args:
        images: string tensor of raw frames, `bair.FRAME_BYTES` each.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    pixels = tf.io.decode_raw(images, tf.uint8)
    return tf.reshape(pixels, tf.concat([shape, [bair.IMAGE_SIZE, bair.IMAGE_SIZE, bair.CHANNELS]], 0))


def _first_bad_message(bad, files, indices, what):
    """A string tensor naming the first bad record of a batch: "DataError: FILE: record I: WHAT"."""
    import tensorflow as tf

    row = tf.argmax(tf.cast(tf.reduce_any(tf.reshape(bad, [tf.shape(bad)[0], -1]), axis=1), tf.int32))
    return tf.strings.join(
        [MARKER, files[row], ": record ", tf.strings.as_string(indices[row]), ": ", what]
    )


def _checked(images, conditions, files, indices):
    """Asserts image byte lengths and finite conditions, naming file and record on failure."""
    import tensorflow as tf

    bad_len = tf.not_equal(tf.strings.length(images), bair.FRAME_BYTES)
    bad_val = tf.logical_not(tf.math.is_finite(conditions))
    checks = [
        tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(bad_len)),
            [_first_bad_message(bad_len, files, indices,
                                f"image_aux1 missing or not {bair.FRAME_BYTES} bytes (raw uint8 64x64x3)")],
        ),
        tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(bad_val)),
            [_first_bad_message(bad_val, files, indices, "action/endeffector_pos missing, NaN or inf")],
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(images), tf.identity(conditions)


def _records_with_origin(path):
    """TFRecordDataset of one file, each record paired with its file name and index."""
    import tensorflow as tf

    return tf.data.Dataset.zip(
        tf.data.TFRecordDataset(path),
        tf.data.Dataset.from_tensors(path).repeat(),
        tf.data.Dataset.range(np.iinfo(np.int64).max),
    )


def _unit_batches(batches, deterministic):
    """(uint8 frames, conditions) batches as the model's dicts, prefetched."""
    import tensorflow as tf

    batches = batches.map(
        lambda pixels, conditions: {"frames": to_unit_tf(pixels), "conditions": conditions},
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    return batches.prefetch(tf.data.AUTOTUNE)


def bair_dataset(root, split, length, batch_size, training, seed, shard=Shard()):
    """Batches of a BAIR TFRecord split.

    Args:
        root: The BAIR root.
        split: "train", "val" or "test".
        length: Steps per window.
        batch_size: Sequences per batch (the global batch, with a shard).
        training: Shuffled, repeated, random window starts; else one pass in file order.
        seed: Seeds the training stream; None: a fresh seed, reads finish out of order.
        shard: Training: this process's share (`data.shards`): of the common record stream
            it parses every `count`-th record, and batches `batch_size / count` windows.
    """
    import tensorflow as tf

    files = bair_split_files(root, split)
    for f in files:  # cheap framing check: truncated files fail here, named
        bair.scan_record_framing(f)
    names = tf.data.Dataset.from_tensor_slices([str(f) for f in files])
    autotune = tf.data.AUTOTUNE
    if not training:
        records = names.flat_map(_records_with_origin).batch(batch_size, drop_remainder=False)

        def parse_eval(serialized, paths, indices):
            images, conditions = parse_batch(serialized, steps=range(length))
            images, conditions = _checked(images, conditions, paths, indices)
            return {"frames": to_unit_tf(decode_pixels(images)), "conditions": conditions}

        return records.map(parse_eval, num_parallel_calls=autotune, deterministic=True).prefetch(autotune)

    deterministic = seed is not None
    base_seed = seed_or_fresh(seed)
    records = names.shuffle(len(files), seed=base_seed, reshuffle_each_iteration=True).repeat()
    records = records.interleave(
        _records_with_origin,
        cycle_length=min(len(files), CYCLE_LENGTH),
        block_length=1,
        num_parallel_calls=min(len(files), CYCLE_LENGTH),
        deterministic=deterministic,
    )
    if not shard.whole:  # dealt out before parsing, the costly part; every process reads all
        records = records.shard(shard.count, shard.index)
    # Batch the serialized records before parsing (one parse_example per batch is much
    # cheaper than one per record), keep only the window of the model camera as uint8,
    # then shuffle those small windows (0.15 MB each instead of 0.75 MB records).
    records = records.batch(PARSE_BATCH, drop_remainder=True).enumerate()

    def parse_train(step, batch):
        serialized, paths, indices = batch
        images, conditions = parse_batch(serialized)  # all 30 steps, model camera only
        images, conditions = _checked(images, conditions, paths, indices)
        # Seeded by the parse batch's place in the common stream: processes draw apart.
        place = step * shard.count + shard.index
        starts = random_window_starts_tf(tf.stack([tf.constant(base_seed, tf.int64), place]), [PARSE_BATCH], length)
        window = starts[:, None] + tf.range(length)[None, :]
        images = tf.gather(images, window, batch_dims=1)
        conditions = tf.gather(conditions, window, batch_dims=1)
        return decode_pixels(images), conditions

    windows = records.map(parse_train, num_parallel_calls=autotune, deterministic=deterministic).unbatch()
    windows = windows.shuffle(SHUFFLE_BUFFER, seed=base_seed, reshuffle_each_iteration=True)
    return _unit_batches(windows.batch(shard.local_size(batch_size), drop_remainder=True), deterministic)


def _window_batches(items, read_window, shuffle_buffer, length, batch_size, training, seed, shard=Shard()):
    """Batches of windows that `read_window(item, start, length)` cuts from `items`.

    Args:
        items: tf.data.Dataset of one item per sequence, in file order.
        read_window: (item, int32 start, static length) -> (uint8 frames, conditions).
        shuffle_buffer: Items in the training shuffle.
        length: Steps per window.
        batch_size: Sequences per batch.
        training: Shuffled, repeated, random window starts; else one pass, start 0.
        seed: Seeds the training stream; None: a fresh seed, reads finish out of order.
        shard: Training: this process's share (`data.shards`): every `count`-th item of the
            common stream, `batch_size / count` per batch.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    deterministic = not training or seed is not None
    if training:
        base_seed = seed_or_fresh(seed)
        items = items.shuffle(shuffle_buffer, seed=base_seed, reshuffle_each_iteration=True).repeat().enumerate()
        if not shard.whole:  # after the enumeration, which seeds each item's window start
            items = items.shard(shard.count, shard.index)
        batch_size = shard.local_size(batch_size)

        def read(i, item):
            start = random_window_starts_tf(tf.stack([tf.constant(base_seed, tf.int64), i]), [], length)
            return read_window(item, start, length)

        windows = items.map(read, num_parallel_calls=autotune, deterministic=deterministic)
    else:
        windows = items.map(lambda item: read_window(item, 0, length), num_parallel_calls=autotune,
                            deterministic=True)
    return _unit_batches(windows.batch(batch_size, drop_remainder=training), deterministic)


def lab_dataset(root, split, length, batch_size, training, seed, shard=Shard()):
    """Batches of a lab folder split (arguments as for `bair_dataset`)."""
    import tensorflow as tf

    folders = lab_split_sequences(root, split)
    items = tf.data.Dataset.from_tensor_slices([str(s) for s in folders])
    return _window_batches(items, lab_layout.read_window_tf, len(folders), length, batch_size, training, seed,
                           shard)


def tfds_dataset(root, split, length, batch_size, training, seed, shard=Shard()):
    """Batches of a prepared TFDS split (arguments as for `bair_dataset`)."""
    items = tfds_source.load_split(root, split, shuffle_files=training, seed=seed)
    return _window_batches(items, tfds_source.example_to_window, SHUFFLE_BUFFER, length, batch_size,
                           training, seed, shard)


BUILDERS = {"tfrecord": bair_dataset, "lab": lab_dataset, "tfds": tfds_dataset}


@contextlib.contextmanager
def pipeline_errors(source=None):
    """Turns a TensorFlow error met while reading batches into a one-line DataError.

    Wrap whatever iterates a `make_dataset` pipeline (`model.fit`, a loop over batches):

        with pipeline_errors(data):
            model.fit(make_dataset(data, "train", ...), ...)

    Errors of the pipeline's in-graph checks (their message carries the DataError marker)
    become `DataError("<file>: record <i>: ...")`. TensorFlow's own read errors name no
    file; with a `source`, the NumPy readers re-read it to find and name the bad file.
    Anything else passes unchanged, and without TensorFlow loaded (the NumPy engine raises
    DataError itself) there is nothing to translate.

    Args:
        source: The dataset directory the batches come from, used to locate a fault that
            TensorFlow does not name; None: translate marked errors only.

    Raises:
        DataError: The translated error.
    """
    try:
        yield
    except Exception as error:
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(error, tf.errors.OpError):
            raise
        message = marked_message(str(getattr(error, "message", error)))
        if message is not None:
            raise DataError(message) from None
        # Only errors of the input pipeline (its IteratorGetNext op) are worth a re-read.
        if source is None or type(error).__name__ not in _UNNAMED or "IteratorGetNext" not in str(error):
            raise
        located = locate_fault(source)
        if located is None:
            raise
        raise located from None
