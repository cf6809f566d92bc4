"""The NumPy engine of `make_dataset`: a `keras.utils.PyDataset` that needs no TensorFlow.

It serves the "tfrecord" (BAIR TFRecords) and "lab" (folder) sources with the batch contract of the
tf.data engine: {"frames": float32 [B, T, 64, 64, 3] in [0, 1], "conditions": float32
[B, T, 7]}.

The order is a pure function of (seed, batch index), so any number of workers, threads or
processes, gives the same batches:

- Training: an infinite stream of passes over the split. Pass p visits the sequences in the
  order `rng.permutation(n)` and gives each a window start `rng.integers(0, 30 - T + 1)`,
  with `rng = np.random.default_rng([seed, p])`; batch b holds stream elements
  [b * B, (b + 1) * B), so every batch is full and a batch may span two passes. A process
  of several serves its rows of every batch (`data.shards`): together they serve the batch.
- Evaluation: file order (then record order), window start 0, one pass, the last batch may
  be smaller.

tf.data's training shuffle draws from TensorFlow's own RNG, which NumPy cannot reproduce:
the two engines give the same evaluation batches exactly, but different training orders
(each deterministic for its seed).
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import keras
import numpy as np

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import lab_layout, tfrecord
from keras_cvae.data.shards import Shard
from keras_cvae.data.windows import random_window_starts, to_unit

MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    """min(usable cores, MAX_DEFAULT_WORKERS)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


@dataclass(frozen=True)
class TFRecordSequences:
    """The sequences of a list of BAIR TFRecord files, by random access.

    Attributes:
        indices: One `tfrecord.RecordIndex` per file, in file order.
    """

    indices: tuple

    @classmethod
    def from_files(cls, files) -> "TFRecordSequences":
        """Indexes the files (reads their length headers; truncation fails here, named)."""
        return cls(tuple(bair.index_tfrecord(f) for f in files))

    def __len__(self) -> int:
        return sum(len(index) for index in self.indices)

    def locate(self, item: int) -> tuple:
        """(file index, record index) of sequence `item` (file order, then record order)."""
        counts = np.cumsum([len(index) for index in self.indices])
        file = int(np.searchsorted(counts, item, side="right"))
        return file, item - (int(counts[file - 1]) if file else 0)

    def window(self, item: int, start: int, length: int) -> tuple:
        """(frames uint8 [length, 64, 64, 3], conditions float32 [length, 7]) of one sequence.

        Raises:
            DataError: A CRC or the Example is bad; names the file and the record.
        """
        file, record = self.locate(item)
        index = self.indices[file]
        payload = tfrecord.read_record(index, record)
        return bair.record_to_window(payload, start, length, where=f"{index.path}: record {record}")


@dataclass(frozen=True)
class LabSequences:
    """The sequences of a lab split, `<traj>/<k>/` folders in natural order.

    Attributes:
        folders: The sequence folders.
    """

    folders: tuple

    def __len__(self) -> int:
        return len(self.folders)

    def window(self, item: int, start: int, length: int) -> tuple:
        """(frames uint8 [length, 64, 64, 3], conditions float32 [length, 7]) of one sequence.

        Raises:
            DataError: A PNG or CSV file is missing or malformed; names the file.
        """
        folder = Path(self.folders[item])
        frames = np.stack([lab_layout.read_png(folder / f"{t}.png") for t in range(start, start + length)])
        conditions = np.concatenate(
            [lab_layout.read_csv(folder / lab_layout.ACTIONS_CSV, bair.ACTION_DIM),
             lab_layout.read_csv(folder / lab_layout.ENDEFFECTOR_CSV, bair.ENDEFFECTOR_DIM)],
            axis=-1,
        )
        return frames, conditions[start : start + length]


@dataclass(frozen=True)
class WindowBatches:
    """What to cut from the sequences and in which order.

    Attributes:
        length: Frames per window (n_past + n_future).
        batch_size: Sequences per batch.
        training: Infinite shuffled stream with random window starts (see the module
            docstring), or one pass in file order with window start 0.
        seed: Seeds the training order and window starts.
        first_batch: Training: index 0 serves this batch of the stream (a resumed run
            continues where it stopped).
        shard: Training: the rows of every batch this process serves (`data.shards`);
            `batch_size` is then the global batch, of which it serves its share.
    """

    length: int
    batch_size: int
    training: bool
    seed: int
    first_batch: int = 0
    shard: Shard = Shard()

    def pass_order(self, pass_index: int, size: int) -> tuple:
        """(sequence order [size], window starts [size]) of training pass `pass_index`."""
        rng = np.random.default_rng([self.seed, pass_index])
        order = rng.permutation(size)
        starts = random_window_starts(rng, size, self.length)
        return order, starts

    def items(self, batch: int, size: int) -> list:
        """[(sequence, window start)] of batch `batch` over `size` sequences."""
        if not self.training:
            stop = min((batch + 1) * self.batch_size, size)
            return [(item, 0) for item in range(batch * self.batch_size, stop)]
        batch += self.first_batch
        rows = self.shard.rows(self.batch_size)
        elements = range(batch * self.batch_size + rows.start, batch * self.batch_size + rows.stop)
        orders = {p: self.pass_order(p, size) for p in {e // size for e in elements}}
        out = []
        for element in elements:
            order, starts = orders[element // size]
            position = element % size
            out.append((int(order[position]), int(starts[position])))
        return out


class WindowDataset(keras.utils.PyDataset):
    """Batches of video windows as a `keras.utils.PyDataset` (see the module docstring).

    Args:
        sequences: A `TFRecordSequences` or `LabSequences`.
        batches: A `WindowBatches`.
        workers: Parallel workers `fit` uses to load batches.
        use_multiprocessing: Load in worker processes instead of threads.
        max_queue_size: Batches loaded ahead.
    """

    def __init__(self, sequences, batches: WindowBatches, *, workers: int = 1,
                 use_multiprocessing: bool = False, max_queue_size: int = 10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        self.sequences = sequences
        self.batches = batches
        self.size = len(sequences)

    @property
    def num_batches(self) -> Optional[int]:
        """Batches in one pass (evaluation), or None: training never ends."""
        if self.batches.training:
            return None
        return math.ceil(self.size / self.batches.batch_size)

    def __len__(self) -> int:
        if self.batches.training:
            raise TypeError("a training WindowDataset is infinite; it has no len()")
        return self.num_batches

    def __getitem__(self, batch: int) -> dict:
        if not self.batches.training and not 0 <= batch < self.num_batches:
            raise IndexError(f"batch {batch} out of range (0..{self.num_batches - 1})")
        windows = [self.sequences.window(item, start, self.batches.length)
                   for item, start in self.batches.items(batch, self.size)]
        frames = np.stack([frames for frames, _ in windows])
        return {
            "frames": to_unit(frames),
            "conditions": np.stack([conditions for _, conditions in windows]),
        }
