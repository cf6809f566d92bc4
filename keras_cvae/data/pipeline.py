"""`make_dataset`: video from disk to model batches, for every supported source and engine.

Sources are detected from the path (see `sources`): BAIR TFRecords, a TFDS data_dir, lab
folders, or None for the embedded default dataset.

Batches are {"frames": float32 [B, T, 64, 64, 3] in [0, 1], "conditions": float32 [B, T, 7]}
with T = n_past + n_future and conditions = 4 action values then 3 end-effector values, raw.

Two engines build them: "tf" (tf.data pipelines, see `tf_pipeline`) and "numpy" (a
`keras.utils.PyDataset`, see `numpy_pipeline`, for machines without TensorFlow).
`iterate_numpy` reads either.
"""

import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, Optional, Union

import numpy as np

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data.errors import DataError
from keras_cvae.data.shards import Shard
from keras_cvae.data.sources import (
    Source,
    bair_split_files,
    check_split,
    lab_split_sequences,
    resolve_source,
)
from keras_cvae.data.tf_pipeline import BUILDERS, pipeline_errors
from keras_cvae.data.windows import seed_or_fresh

ENGINES = ("tf", "numpy")


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


def _window_length(n_past, n_future):
    length = n_past + n_future
    if n_past < 1 or n_future < 0 or length > bair.SEQUENCE_LENGTH:
        raise DataError(
            f"need n_past >= 1, n_future >= 0 and n_past + n_future <= {bair.SEQUENCE_LENGTH}, "
            f"got {n_past} + {n_future}"
        )
    return length


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


def _numpy_dataset(src: Source, split, length, batch_size, training, seed, engine: NumpyEngine, start_batch=0,
                   shard: Shard = Shard()):
    # Imported here so that `import keras_cvae.data` does not import keras (and with it
    # TensorFlow, keras' default backend) for the "tf" engine.
    from keras_cvae.data import numpy_pipeline

    if src.kind == "tfds":
        raise DataError(
            f"{src.root}: a TFDS source needs TensorFlow (engine='tf'); convert it to TFRecords "
            "or lab folders to read it with the NumPy engine"
        )
    if src.kind == "tfrecord":
        sequences = numpy_pipeline.TFRecordSequences.from_files(bair_split_files(src.root, split))
    else:
        sequences = numpy_pipeline.LabSequences(tuple(lab_split_sequences(src.root, split)))
    if len(sequences) == 0:
        raise DataError(f"{src.root}: split {split!r} has no sequences")
    batches = numpy_pipeline.WindowBatches(length, batch_size, training, seed_or_fresh(seed), start_batch, shard)
    return numpy_pipeline.WindowDataset(
        sequences,
        batches,
        workers=engine.workers or numpy_pipeline.default_workers(),
        use_multiprocessing=engine.use_multiprocessing,
        max_queue_size=engine.max_queue_size,
    )


def make_dataset(source, split, *, n_past=2, n_future=10, batch_size, training, seed: Optional[int] = None,
                 engine=None, start_batch: int = 0, shard: Shard = Shard()):
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
        shard: Training only: this process's share of every batch when several processes
            train (`data.shards.Shard`); `batch_size` stays the global batch and the
            batches served hold `batch_size / shard.count` sequences. The NumPy engine
            serves exactly this process's rows of the single-process stream; tf.data
            deals the records out in turn before parsing (no record to two processes;
            the stream is not the single-process one). Needs a seed: every process must
            draw the same order.

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
    check_split(split)
    length = _window_length(n_past, n_future)
    if int(batch_size) < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    engine = resolve_engine(engine)
    src = resolve_source(source)
    if start_batch and not training:
        raise DataError("start_batch applies to training streams only")
    if not shard.whole:
        if not training:
            raise DataError("a shard applies to training streams only")
        if seed is None:
            raise DataError("sharded training streams need a seed: every process draws the same order")
        shard.local_size(int(batch_size))  # checks that the processes share it evenly
    if isinstance(engine, NumpyEngine):
        return _numpy_dataset(src, split, length, int(batch_size), bool(training), seed, engine,
                              int(start_batch), shard)
    if start_batch:
        seed = int(np.random.SeedSequence([seed_or_fresh(seed), int(start_batch)]).generate_state(1)[0])
    return BUILDERS[src.kind](src.root, split, length, int(batch_size), bool(training), seed, shard)


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
