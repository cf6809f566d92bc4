"""Writes a generated dataset in the BAIR TFRecord layout, in parallel.

Two worlds generate data: "pushing" (`pushing_sim`, the robot-pushing stand-in for BAIR)
and "bouncing" (`bouncing`, a stochastic toy whose future the past does not determine).
The simulator runs in worker processes started with "spawn" that never import TensorFlow
(rendering in a process that has imported TensorFlow can crash). The workers also
serialise and frame each record (its CRCs are the costly part), so this process only
writes bytes; nothing here needs TensorFlow. Sequence `i` of train is
the world's sequence `(seed, i)`; sequence `j` of test is its sequence
`(seed, TEST_INDEX_OFFSET + j)`, so the test set does not depend on the
size of train.
"""

import multiprocessing
import os
import shutil
from pathlib import Path

from keras_cvae.data import bair_tfrecord as bair
from keras_cvae.data import tfrecord
from keras_cvae.data.errors import DataError
from keras_cvae.files import staged_directory
from keras_cvae.paths import why_not_creatable

TEST_INDEX_OFFSET = 1_000_000
WORLDS = ("pushing", "bouncing")


def _sequence_function(world: str):
    """The world's `(seed, index) -> sequence dict`, imported in the worker that runs it."""
    if world == "pushing":
        from keras_cvae.data.pushing_sim import simulate_sequence

        return simulate_sequence
    from keras_cvae.data.bouncing import bouncing_sequence

    return bouncing_sequence


def _simulate_record(args) -> bytes:
    """Worker: the world's sequence `index` as a framed TFRecord record, ready to write."""
    world, seed, index = args
    sequence = _sequence_function(world)(seed, index)
    record = bair.sequence_to_record(sequence, where=f"generated {world} sequence {index}")
    return tfrecord.frame(record)


def _file_plan(n: int, offset: int = 0) -> list:
    """[(file name, [sim indices])] with SEQUENCES_PER_FILE sequences per file."""
    plan = []
    for start in range(0, n, bair.SEQUENCES_PER_FILE):
        stop = min(start + bair.SEQUENCES_PER_FILE, n) - 1
        plan.append((bair.file_name(start, stop), [offset + i for i in range(start, stop + 1)]))
    return plan


def write_generated_dataset(out_dir, *, n_train: int, n_test: int, seed: int, workers=None, progress=True,
                            world: str = "pushing") -> Path:
    """Generates `n_train` + `n_test` sequences into `out_dir/{train,test}/traj_A_to_B.tfrecords`.

    Each file is written atomically; `out_dir` must not already hold TFRecord files.

    Args:
        out_dir: Destination root (created).
        n_train: Training sequences (the second file of 256 is the validation split).
        n_test: Test sequences.
        seed: Simulator seed; the same seed gives byte-identical files.
        workers: Simulator processes (default: os.cpu_count(); 0 or 1 still uses one
            worker process so TensorFlow and the simulator never share a process).
        progress: Show a tqdm progress bar.
        world: "pushing" or "bouncing" (see the module docstring).

    Returns:
        `out_dir` as a Path.

    Raises:
        DataError: No train sequences, a negative count, seed or worker count, an
            `out_dir` that cannot be created or already holds TFRecord files.
    """
    out_dir = Path(out_dir)
    if n_train < 1:
        raise DataError(f"n_train (--train) must be at least 1 (a dataset with no train sequences cannot "
                        f"be trained on), got {n_train}")
    if n_test < 0:
        raise DataError(f"n_test (--test) must be at least 0, got {n_test}")
    if seed < 0:
        raise DataError(f"seed (--seed) must be at least 0, got {seed}")
    if world not in WORLDS:
        raise DataError(f"world must be one of {', '.join(WORLDS)}, got {world!r}")
    if workers is not None and workers < 0:
        raise DataError(f"workers (--workers) must be at least 0, got {workers}")
    reason = why_not_creatable(out_dir)
    if reason is not None:
        raise DataError(f"{out_dir}: cannot create the output folder ({reason})")
    if out_dir.exists() and any(out_dir.rglob(f"*{bair.FILE_SUFFIX}")):
        raise DataError(f"{out_dir}: already holds {bair.FILE_SUFFIX} files; choose an empty directory")
    plan = [("train", name, idx) for name, idx in _file_plan(n_train)]
    plan += [("test", name, idx) for name, idx in _file_plan(n_test, TEST_INDEX_OFFSET)]
    total = n_train + n_test
    workers = max(1, min(workers or os.cpu_count() or 1, total))

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="seq", desc="simulating")
    created = not out_dir.exists()
    ctx = multiprocessing.get_context("spawn")
    try:
        with ctx.Pool(workers) as pool:
            for split, name, indices in plan:
                results = pool.imap(_simulate_record, [(world, seed, i) for i in indices], chunksize=4)

                def counted(it):
                    for item in it:
                        if bar is not None:
                            bar.update(1)
                        yield item

                tfrecord.write_framed(out_dir / split / name, counted(results))
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return out_dir


def generate_dataset(out_dir, **settings) -> Path:
    """Generates a new dataset folder: built beside `out_dir` and renamed onto it once
    complete, so a kill never leaves half a dataset where a reader would take it for one
    (the next run removes what a killed one left, see `files.staged_directory`).

    Args:
        out_dir: The dataset folder to create; it must not exist, or be empty.
        **settings: `write_generated_dataset`'s keyword arguments.

    Returns:
        `out_dir` as a Path.

    Raises:
        DataError: `out_dir` exists and is not empty, or as `write_generated_dataset`.
    """
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise DataError(f"{out_dir}: exists and is not empty; datasets are written to a new or empty folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a folder")
    reason = why_not_creatable(out_dir)
    if reason is not None:
        raise DataError(f"{out_dir}: cannot create the output folder ({reason})")
    if out_dir.exists():
        out_dir.rmdir()
    try:
        with staged_directory(out_dir) as building:
            write_generated_dataset(building, **settings)
    except FileExistsError as error:
        raise DataError(f"{out_dir}: another process created it meanwhile") from error
    return out_dir
