"""`kill -9` at any moment of a real training process, then `--resume`: nothing is lost
beyond the last backup, and the run ends exactly as an uninterrupted one."""

import csv
import json

import keras
import numpy as np
import pytest

from keras_cvae.run_folder import RunFolder

import background
from crash_chain import EPOCHS

# trains in processes, started at collection (tests/crash_chain.py): `-m 'not slow'` skips it
pytestmark = [pytest.mark.slow, pytest.mark.background("crash_chain")]


def log_rows(run):
    with open(run.log_file) as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def straight_and_killed(background_runs):
    run = background_runs["crash_chain"]
    status, output = background.finish(run, timeout=900)
    assert status == 0, output[-3000:]
    positions = json.loads(output.strip().splitlines()[-1])
    return RunFolder(run.scratch / "straight"), RunFolder(run.scratch / "killed"), positions


def test_each_kill_resumes_from_the_newest_complete_checkpoint(straight_and_killed):
    _, _, positions = straight_and_killed
    assert positions == [
        ["epoch-0001", "epoch-0001-step-000001"],  # killed a step after the backup
        ["epoch-0001", "epoch-0001-step-000002"],  # killed saving epoch 2: no trace of it
        ["epoch-0001", "epoch-0001-step-000002"],  # killed in validation, before the save
        ["epoch-0001", "epoch-0002"],              # killed plotting, after the save
    ]


def test_the_killed_run_ends_as_the_uninterrupted_one(straight_and_killed):
    straight, killed, _ = straight_and_killed
    assert [c.name for c in killed.checkpoints()] == [c.name for c in straight.checkpoints()]
    rows, expected = log_rows(killed), log_rows(straight)
    assert [row["epoch"] for row in rows] == [str(e) for e in range(1, EPOCHS + 1)]
    assert rows == expected  # every logged value, the schedules' beta and tfr included
    for a, b in zip(straight.load_model().weights, killed.load_model().weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                      err_msg=a.path)
    assert killed.read_info()["epochs_done"] == EPOCHS
    # run.json records a resume with its first checkpoint: the one killed in validation
    # saved none, and the last found the run finished.
    assert [r["from"] for r in killed.read_info()["resumes"]] == [
        "epoch-0001-step-000001", "epoch-0001-step-000002"]


def test_nothing_a_kill_left_half_written_remains(straight_and_killed):
    _, killed, _ = straight_and_killed
    hidden = [p.name for p in killed.path.rglob(".*") if p.name != ".lock"]
    assert hidden == []
    assert sorted(p.name for p in killed.samples_dir.iterdir()) == [
        f"epoch-{e:04d}.gif" for e in range(1, EPOCHS + 1)]  # the cut-short epoch's GIF too
    assert (killed.path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
