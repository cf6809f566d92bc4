"""`make_dataset`: video from disk to model batches, for every supported source.

Sources (detected from the path):
- "bair": BAIR TFRecords, `root/{train,test}/traj_A_to_B.tfrecords` (root may also be the
  parent of `softmotion30_44k/`). val = the second train file by start index.
- "tfds": a TFDS data_dir holding a prepared `bair_robot_pushing_small` (see tfds_source).
- "lab": the course lab folders `{train,validate,test}/<traj>/<k>/` (val = validate/).
- None: the embedded default dataset (generated once, BAIR layout).

Batches are {"frames": float32 [B, T, 64, 64, 3] in [0, 1], "conditions": float32 [B, T, 7]}
with T = n_past + n_future and conditions = 4 action values then 3 end-effector values, raw.

Two engines build them: "tf" (a tf.data pipeline) and "numpy" (a `keras.utils.PyDataset`,
see `numpy_pipeline`, for machines without TensorFlow). `iterate_numpy` reads either.
"""

import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import lab_folders, tfds_source
from keras_cvae.data.errors import MARKER, DataError, pipeline_errors

SPLITS = ("train", "val", "test")
ENGINES = ("tf", "numpy")
SHUFFLE_BUFFER = 1024  # windows in the training shuffle (T=12: 0.15 MB each as uint8)
PARSE_BATCH = 16  # serialized records parsed together in training (16 measured fastest of 16/32/64)
CYCLE_LENGTH = 4  # files read concurrently in training


@dataclass(frozen=True)
class NumpyEngine:
    """The NumPy engine and how `fit` loads its batches in parallel.

    `make_dataset(..., engine="numpy")` is `engine=NumpyEngine()`.

    Attributes:
        workers: Loaders `fit` (and `iterate_numpy`, with threads) runs at once; None:
            min(usable cores, 8).
        use_multiprocessing: `fit` loads in forked worker processes instead of threads.
            Threads scale while the GIL-free part (file reads, CRC, pixel conversion)
            dominates; processes also spread the Example decoding, but forking a process
            that runs JAX or TensorFlow threads is unsafe in general.
        max_queue_size: Batches loaded ahead.
    """

    workers: Optional[int] = None
    use_multiprocessing: bool = False
    max_queue_size: int = 10


@dataclass(frozen=True)
class Source:
    """A resolved data source: its kind ("bair", "lab", "tfds") and root directory."""

    kind: str
    root: Path
    extra: dict = field(default_factory=dict, compare=False)


def resolve_source(source) -> Source:
    """Detects the kind of `source` (see the module docstring).

    Raises:
        DataError: The path is missing, empty or not in a known layout.
    """
    if source is None:
        from keras_cvae.data.embedded import ensure_embedded_dataset

        return Source("bair", ensure_embedded_dataset())
    if isinstance(source, Source):
        return source
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{path}: directory not found")
    if not path.is_dir():
        raise DataError(f"{path}: not a directory")
    if not any(path.iterdir()):
        raise DataError(f"{path}: directory is empty")
    for root in (path, path / bair.ROOT_NAME):
        for split in bair.SPLIT_DIRS:
            d = root / split
            if d.is_dir() and any(p.name.endswith(bair.FILE_SUFFIX) for p in d.iterdir()):
                return Source("bair", root)
    data_dir = tfds_source.find_data_dir(path)
    if data_dir is not None:
        return Source("tfds", data_dir)
    if lab_folders.is_lab_root(path):
        return Source("lab", path)
    raise DataError(
        f"{path}: not a known dataset layout (expected {{train,test}}/traj_A_to_B.tfrecords, "
        f"a TFDS data_dir with {tfds_source.TFDS_NAME}/, or lab folders "
        "{train,validate,test}/<traj>/<k>/*.png)"
    )


def _check_split(split):
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")


def bair_split_files(root, split: str) -> list:
    """The TFRecord files of `split` in a BAIR root, sorted by start index.

    val is the second train file by start index; train is every other train file.

    Raises:
        DataError: The split directory is missing/empty, or val is asked of a train
            directory with fewer than two files.
    """
    _check_split(split)
    root = Path(root)
    if split == "test":
        return bair.list_tfrecord_files(root / "test")
    files = bair.list_tfrecord_files(root / "train")
    if split == "val":
        if len(files) < 2:
            raise DataError(
                f"{root / 'train'}: the val split is the second train file, but there is only {len(files)}"
            )
        return [files[1]]
    return files[:1] + files[2:]


def split_sizes(source) -> dict:
    """{split: number of sequences} for every split the source has."""
    src = resolve_source(source)
    sizes = {}
    for split in SPLITS:
        try:
            if src.kind == "bair":
                sizes[split] = sum(bair.scan_record_framing(f) for f in bair_split_files(src.root, split))
            elif src.kind == "lab":
                sizes[split] = len(lab_folders.list_sequences(src.root / lab_folders.SPLIT_DIRS[split]))
        except DataError:
            if split == "train":
                raise
    if src.kind == "tfds":
        sizes = tfds_source.split_sizes(src.root)
    return sizes


def describe_source(source) -> dict:
    """{"kind", "path", "splits": {split: sequences}} for metadata and printing."""
    src = resolve_source(source)
    return {"kind": src.kind, "path": str(src.root), "splits": split_sizes(src)}


def _window_length(n_past, n_future):
    length = n_past + n_future
    if n_past < 1 or n_future < 0 or length > bair.SEQUENCE_LENGTH:
        raise DataError(
            f"need n_past >= 1, n_future >= 0 and n_past + n_future <= {bair.SEQUENCE_LENGTH}, "
            f"got {n_past} + {n_future}"
        )
    return length


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


def _window_starts(seed_pair, batch, length):
    import tensorflow as tf

    return tf.random.stateless_uniform(
        [batch], seed=seed_pair, minval=0, maxval=bair.SEQUENCE_LENGTH - length + 1, dtype=tf.int32
    )


def _records_with_origin(path):
    """TFRecordDataset of one file, each record paired with its file name and index."""
    import tensorflow as tf

    return tf.data.Dataset.zip(
        tf.data.TFRecordDataset(path),
        tf.data.Dataset.from_tensors(path).repeat(),
        tf.data.Dataset.range(np.iinfo(np.int64).max),
    )


def _bair_dataset(root, split, length, batch_size, training, seed):
    import tensorflow as tf

    files = bair_split_files(root, split)
    for f in files:  # cheap framing check: truncated files fail here, named
        bair.scan_record_framing(f)
    names = tf.data.Dataset.from_tensor_slices([str(f) for f in files])
    autotune = tf.data.AUTOTUNE
    if not training:
        records = names.flat_map(_records_with_origin).batch(batch_size, drop_remainder=False)

        def parse_eval(serialized, paths, indices):
            images, conditions = bair.parse_batch(serialized, steps=range(length))
            images, conditions = _checked(images, conditions, paths, indices)
            return {"frames": bair.decode_frames(images), "conditions": conditions}

        return records.map(parse_eval, num_parallel_calls=autotune, deterministic=True).prefetch(autotune)

    deterministic = seed is not None
    base_seed = int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
    records = names.shuffle(len(files), seed=base_seed, reshuffle_each_iteration=True).repeat()
    records = records.interleave(
        _records_with_origin,
        cycle_length=min(len(files), CYCLE_LENGTH),
        block_length=1,
        num_parallel_calls=min(len(files), CYCLE_LENGTH),
        deterministic=deterministic,
    )
    # Batch the serialized records before parsing (one parse_example per batch is much
    # cheaper than one per record), keep only the window of the model camera as uint8,
    # then shuffle those small windows (0.15 MB each instead of 0.75 MB records).
    records = records.batch(PARSE_BATCH, drop_remainder=True).enumerate()

    def parse_train(step, batch):
        serialized, paths, indices = batch
        images, conditions = bair.parse_batch(serialized)  # all 30 steps, model camera only
        images, conditions = _checked(images, conditions, paths, indices)
        starts = _window_starts(tf.stack([tf.constant(base_seed, tf.int64), step]), PARSE_BATCH, length)
        window = starts[:, None] + tf.range(length)[None, :]
        images = tf.gather(images, window, batch_dims=1)
        conditions = tf.gather(conditions, window, batch_dims=1)
        pixels = tf.reshape(
            tf.io.decode_raw(images, tf.uint8),
            [PARSE_BATCH, length, bair.IMAGE_SIZE, bair.IMAGE_SIZE, bair.CHANNELS],
        )
        return pixels, conditions

    windows = records.map(parse_train, num_parallel_calls=autotune, deterministic=deterministic).unbatch()
    windows = windows.shuffle(SHUFFLE_BUFFER, seed=base_seed, reshuffle_each_iteration=True)
    batches = windows.batch(batch_size, drop_remainder=True)
    batches = batches.map(
        lambda pixels, conditions: {"frames": tf.cast(pixels, tf.float32) / 255.0, "conditions": conditions},
        num_parallel_calls=autotune,
        deterministic=deterministic,
    )
    return batches.prefetch(autotune)


def _lab_dataset(root, split, length, batch_size, training, seed):
    import tensorflow as tf

    seqs = lab_folders.list_sequences(Path(root) / lab_folders.SPLIT_DIRS[split])
    dirs = tf.data.Dataset.from_tensor_slices([str(s) for s in seqs])
    autotune = tf.data.AUTOTUNE
    if training:
        deterministic = seed is not None
        base_seed = int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        dirs = dirs.shuffle(len(seqs), seed=base_seed, reshuffle_each_iteration=True).repeat().enumerate()

        def read(i, d):
            start = tf.random.stateless_uniform(
                [], seed=tf.stack([tf.constant(base_seed, tf.int64), i]),
                minval=0, maxval=bair.SEQUENCE_LENGTH - length + 1, dtype=tf.int32,
            )
            return lab_folders.read_window_tf(d, start, length)

        ds = dirs.map(read, num_parallel_calls=autotune, deterministic=deterministic)
    else:
        ds = dirs.map(lambda d: lab_folders.read_window_tf(d, 0, length), num_parallel_calls=autotune,
                      deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    ds = ds.map(lambda f, c: {"frames": tf.cast(f, tf.float32) / 255.0, "conditions": c},
                num_parallel_calls=autotune, deterministic=not training or seed is not None)
    return ds.prefetch(autotune)


def _tfds_dataset(root, split, length, batch_size, training, seed):
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    ds = tfds_source.load_split(root, split, shuffle_files=training, seed=seed)
    if training:
        base_seed = int(seed) if seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
        ds = ds.shuffle(SHUFFLE_BUFFER, seed=base_seed, reshuffle_each_iteration=True).repeat().enumerate()

        def window(i, example):
            start = tf.random.stateless_uniform(
                [], seed=tf.stack([tf.constant(base_seed, tf.int64), i]),
                minval=0, maxval=bair.SEQUENCE_LENGTH - length + 1, dtype=tf.int32,
            )
            return tfds_source.example_to_window(example, start, length)

        ds = ds.map(window, num_parallel_calls=autotune, deterministic=seed is not None)
    else:
        ds = ds.map(lambda e: tfds_source.example_to_window(e, 0, length), num_parallel_calls=autotune)
    ds = ds.batch(batch_size, drop_remainder=training)
    ds = ds.map(lambda f, c: {"frames": tf.cast(f, tf.float32) / 255.0, "conditions": c},
                num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def _tensorflow_importable() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine(engine=None) -> Union[str, NumpyEngine]:
    """"tf" or a `NumpyEngine` for `make_dataset`'s `engine` argument.

    None means "tf" if TensorFlow can be imported and `NumpyEngine()` otherwise.

    Raises:
        DataError: `engine` is not None, "tf", "numpy" or a `NumpyEngine`.
    """
    if engine is None:
        engine = "tf" if _tensorflow_importable() else "numpy"
    if isinstance(engine, NumpyEngine):
        return engine
    if engine not in ENGINES:
        raise DataError(f"engine must be one of {ENGINES}, a NumpyEngine or None, got {engine!r}")
    return NumpyEngine() if engine == "numpy" else engine


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])


def _numpy_dataset(src, split, length, batch_size, training, seed, engine: NumpyEngine, start_batch=0):
    from keras_cvae.data import numpy_pipeline

    if src.kind == "tfds":
        raise DataError(
            f"{src.root}: a TFDS source needs TensorFlow (engine='tf'); convert it to TFRecords "
            "or lab folders to read it with the NumPy engine"
        )
    if src.kind == "bair":
        sequences = numpy_pipeline.TFRecordSequences.from_files(bair_split_files(src.root, split))
    else:
        folders = lab_folders.list_sequences(Path(src.root) / lab_folders.SPLIT_DIRS[split])
        sequences = numpy_pipeline.LabSequences(tuple(folders))
    if len(sequences) == 0:
        raise DataError(f"{src.root}: split {split!r} has no sequences")
    batches = numpy_pipeline.WindowBatches(
        length, batch_size, training, int(seed) if seed is not None else _fresh_seed(), start_batch
    )
    return numpy_pipeline.WindowDataset(
        sequences,
        batches,
        workers=engine.workers or numpy_pipeline.default_workers(),
        use_multiprocessing=engine.use_multiprocessing,
        max_queue_size=engine.max_queue_size,
    )


def make_dataset(source, split, *, n_past=2, n_future=10, batch_size, training, seed: Optional[int] = None,
                 engine=None, start_batch: int = 0):
    """Batches of video windows and their conditions from `source`.

    Args:
        source: Dataset directory (BAIR TFRecords, TFDS data_dir or lab folders; detected),
            or None for the embedded default dataset.
        split: "train", "val" or "test".
        n_past: Context frames per window.
        n_future: Frames to predict per window.
        batch_size: Sequences per batch.
        training: True: records shuffled, a random window start per sequence in
            [0, 30 - T], repeated forever, full batches only (static batch dimension).
            False: window start 0, file order, one pass, last batch may be smaller.
        seed: Seeds shuffling and window starts. With a seed the training order is
            deterministic; None draws a fresh seed (and lets tf.data's parallel reads
            finish out of order, a little faster).
        engine: "tf" (tf.data), "numpy" (a `keras.utils.PyDataset`, no TensorFlow; bair
            and lab sources only), a `NumpyEngine` (the NumPy engine with its parallelism
            options), or None: "tf" if TensorFlow can be imported, else "numpy".
            Evaluation batches are identical across engines; training orders differ
            (tf.data shuffles with TensorFlow's RNG, see `numpy_pipeline`).
        start_batch: Training only: where a resumed run's stream starts. The NumPy engine
            serves exactly batch `start_batch` of the seeded stream onwards (it has random
            access). tf.data cannot seek without reading everything before, so the "tf"
            engine reseeds its stream from (seed, start_batch): deterministic, but not the
            continuation of the stream of `seed`.

    Returns:
        "tf": a tf.data.Dataset; bad records fail inside iteration with a TensorFlow
        error; iterate it inside `pipeline_errors(source)` to get the DataError
        "<file>: record <i>: ..." (or "<file>: ..." for lab folders) instead.
        "numpy": a `numpy_pipeline.WindowDataset`; bad records raise DataError
        "<file>: record <i>: ..." when their batch is loaded.
        Both yield {"frames": float32 [B, T, 64, 64, 3] in [0, 1],
        "conditions": float32 [B, T, 7]} (4 action values then 3 end-effector values, raw).

    Raises:
        DataError: Bad arguments, missing/empty/unknown source, missing split, truncated
            file, or a TFDS source with the NumPy engine.
    """
    _check_split(split)
    length = _window_length(n_past, n_future)
    if int(batch_size) < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    engine = resolve_engine(engine)
    src = resolve_source(source)
    if start_batch and not training:
        raise DataError("start_batch applies to training streams only")
    if isinstance(engine, NumpyEngine):
        return _numpy_dataset(src, split, length, int(batch_size), bool(training), seed, engine,
                              int(start_batch))
    if start_batch:
        base = seed if seed is not None else _fresh_seed()
        seed = int(np.random.SeedSequence([int(base), int(start_batch)]).generate_state(1)[0])
    build = {"bair": _bair_dataset, "lab": _lab_dataset, "tfds": _tfds_dataset}[src.kind]
    return build(src.root, split, length, int(batch_size), bool(training), seed)


def _prefetched(dataset) -> Iterator[dict]:
    """The batches of a `keras.utils.PyDataset` in order, loaded by `dataset.workers` threads
    up to `max(workers, max_queue_size)` batches ahead."""
    count = dataset.num_batches
    indices = itertools.count() if count is None else range(count)
    workers = max(1, dataset.workers)
    if workers == 1:
        yield from (dataset[i] for i in indices)
        return
    ahead = max(workers, dataset.max_queue_size)
    pool = ThreadPoolExecutor(workers)
    try:
        pending = deque()
        for i in indices:
            pending.append(pool.submit(dataset.__getitem__, i))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        # A consumer that stops early (always, for training) must not wait for the batches
        # queued ahead of it.
        pool.shutdown(wait=False, cancel_futures=True)


def iterate_numpy(dataset, max_batches: Optional[int] = None) -> Iterator[dict]:
    """Yields the batches of either engine's dataset as dicts of NumPy arrays.

    Args:
        dataset: What `make_dataset` returned: a tf.data.Dataset or a
            `keras.utils.PyDataset` (loaded `dataset.workers` threads ahead, in order).
        max_batches: Stop after this many batches; None: until the dataset ends (a
            training dataset never ends).
    """
    if hasattr(dataset, "as_numpy_iterator"):
        batches = dataset.as_numpy_iterator()
    else:
        batches = _prefetched(dataset)
    return itertools.islice(batches, max_batches)


def condition_statistics(source, split="train", max_sequences=1024, engine=None):
    """Per-dimension mean and standard deviation of the conditions, for normalisation.

    Uses every step of the first `max_sequences` sequences of `split` (file order).
    A dimension whose std is below 1e-6 (constant) gets std 1.

    Args:
        source: As for `make_dataset`.
        split: The split to measure.
        max_sequences: Sequences used at most.
        engine: As for `make_dataset` (None: "tf" if TensorFlow can be imported).

    Returns:
        (mean float32 [7], std float32 [7]).

    Raises:
        DataError: Missing or malformed data, named by file (and record).
    """
    ds = make_dataset(source, split, n_past=1, n_future=bair.SEQUENCE_LENGTH - 1, batch_size=64,
                      training=False, engine=engine)
    total = np.zeros(bair.CONDITION_DIM, np.float64)
    total_sq = np.zeros(bair.CONDITION_DIM, np.float64)
    count, seen = 0, 0
    with pipeline_errors(source):
        for batch in iterate_numpy(ds):
            c = batch["conditions"][: max_sequences - seen].astype(np.float64)
            seen += c.shape[0]
            c = c.reshape(-1, bair.CONDITION_DIM)
            total += c.sum(0)
            total_sq += (c**2).sum(0)
            count += c.shape[0]
            if seen >= max_sequences:
                break
    if count == 0:
        raise DataError(f"{source}: split {split!r} has no sequences")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std = np.where(std < 1e-6, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)
