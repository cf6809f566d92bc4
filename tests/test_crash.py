"""`kill -9` at any moment of a real training process, then `--resume`: nothing is lost
beyond the last backup, and the run ends exactly as an uninterrupted one."""

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_cvae.run_folder import RunFolder

pytestmark = pytest.mark.slow  # trains, exports or starts processes: `-m 'not slow'` skips it

REPO = Path(__file__).resolve().parents[1]
EPOCHS, STEPS, BACKUP = 2, 3, 1


def train_args(data, out=None, resume=None):
    """Tiny, eager (the quickest start on this CPU), NumPy engine (an exact stream on resume)."""
    if resume is not None:
        return ["--resume", str(resume), "--data", str(data), "--data-engine", "numpy",
                "--backup-every", str(BACKUP), "--verbose", "0"]
    return ["--preset", "tiny", "--data", str(data), "--out", str(out), "--epochs", str(EPOCHS),
            "--steps-per-epoch", str(STEPS), "--validation-steps", "1", "--run-eagerly",
            "--data-engine", "numpy", "--backup-every", str(BACKUP), "--verbose", "0", "--seed", "3"]


def start_training(args, kill_point=None, kill_count=1):
    command = [sys.executable, "-m", "keras_cvae.cli.train", *args]
    if kill_point is not None:
        command = [sys.executable, str(REPO / "tests" / "crash_driver.py"), kill_point,
                   str(kill_count), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "KERAS_BACKEND": "tensorflow",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process):
    """The process's CompletedProcess once it ends."""
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_training(args, kill_point=None, kill_count=1):
    return finished(start_training(args, kill_point, kill_count))


def log_rows(run):
    with open(run.log_file) as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def straight_and_killed(generated_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    straight = start_training(train_args(generated_dir, out=root / "straight"))  # beside the killed chain
    killed = root / "killed"
    positions = []
    first = run_training(train_args(generated_dir, out=killed), "step", STEPS + 2 * BACKUP)
    assert first.returncode == -signal.SIGKILL, first.stderr
    # Each resume is killed at a new kind of moment, then the last one finishes.
    for point, count in (("checkpoint", 1), ("validation", 1), ("plot", 1), (None, 1)):
        positions.append([c.name for c in RunFolder(killed).checkpoints()])
        result = run_training(train_args(generated_dir, resume=killed), point, count)
        expected = 0 if point is None else -signal.SIGKILL
        assert result.returncode == expected, (point, result.stderr)
    straight = finished(straight)
    assert straight.returncode == 0, straight.stderr
    return RunFolder(root / "straight"), RunFolder(killed), positions


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
