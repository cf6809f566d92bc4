"""Shared fixtures: one tiny generated dataset per test session; the background runs."""

from pathlib import Path

import numpy as np
import pytest

import background

BACKGROUND = pytest.StashKey[dict]()

# 260 train sequences: traj_0_to_255 (train) and traj_256_to_259 (val); 4 test sequences.
N_TRAIN = 260
N_TEST = 4
SEED = 0


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory):
    """A BAIR-layout dataset written by the generator (simulator in worker processes)."""
    from keras_cvae.data.generate import write_generated_dataset

    root = tmp_path_factory.mktemp("generated") / "pushing"
    return write_generated_dataset(root, n_train=N_TRAIN, n_test=N_TEST, seed=SEED, workers=2, progress=False)


def random_sequence(rng: np.random.Generator) -> dict:
    """A sequence with the BAIR structure and random content."""
    return {
        "image_aux1": rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8),
        "image_main": rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8),
        "action": rng.normal(size=(30, 4)).astype(np.float32),
        "endeffector_pos": rng.normal(size=(30, 3)).astype(np.float32),
    }


@pytest.fixture
def small_bair_dir(tmp_path):
    """A BAIR-layout dataset of random sequences: train 3 + 2 (val), test 2."""
    from keras_cvae.data import bair_tfrecord as bair

    rng = np.random.default_rng(7)
    seqs = [random_sequence(rng) for _ in range(7)]
    bair.write_sequences(tmp_path / "ds" / "train" / bair.file_name(0, 2), seqs[:3])
    bair.write_sequences(tmp_path / "ds" / "train" / bair.file_name(3, 4), seqs[3:5])
    bair.write_sequences(tmp_path / "ds" / "test" / bair.file_name(0, 1), seqs[5:])
    return tmp_path / "ds", seqs


@pytest.fixture(scope="session")
def write_run():
    """A factory of run folders as training lays them out, holding a given (untrained) model:
    `write_run(path, model, data=None) -> RunFolder`."""
    from keras_cvae.run_folder import RunFolder
    from keras_cvae.tasks.svg.config import get_preset

    def write(path, model, data=None):
        run = RunFolder(Path(path))
        run.write_info({
            "model": model.config.to_dict(), "train": get_preset("tiny").train.to_dict(),
            "data": None if data is None else str(data),
            "condition_mean": model.initial_condition_mean, "condition_std": model.initial_condition_std,
            "preset": "tiny", "created": "2024-01-01T00:00:00", "epochs_done": 0,
        })
        model.save(run.model_file)
        return run

    return write


def _background_name(item):
    marker = item.get_closest_marker("background")
    return None if marker is None else marker.args[0]


@pytest.hookimpl(trylast=True)  # after -m/-k have deselected
def pytest_collection_modifyitems(session, config, items):
    """Starts the background run of every selected test marked `background(name)`, once per
    name, and moves those tests to the end, so the runs overlap every other test."""
    waiting = [item for item in items if _background_name(item) is not None]
    if waiting:
        items[:] = [item for item in items if _background_name(item) is None] + waiting
        names = dict.fromkeys(_background_name(item) for item in waiting)
        config.stash[BACKGROUND] = {name: background.STARTERS[name]() for name in names}


def pytest_unconfigure(config):
    for run in config.stash.get(BACKGROUND, {}).values():
        background.stop(run)


@pytest.fixture(scope="session")
def background_runs(request):
    """The background runs started at collection, by name (see background.STARTERS)."""
    return request.config.stash[BACKGROUND]
