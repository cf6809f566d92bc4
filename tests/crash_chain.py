"""The crash tests' processes, for tests/test_crash.py: a training run killed with SIGKILL at
several kinds of moment and resumed each time, beside the same run uninterrupted.

    python tests/crash_chain.py

Writes the generated data and both run folders (`straight`, `killed`) under $SCRATCH and
prints, as JSON on its last line, the checkpoints each resume found.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from keras_cvae.data.generate import write_generated_dataset
from keras_cvae.run_folder import RunFolder

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


def main(root: Path) -> list:
    """Runs both trainings on a generated dataset; the checkpoints each resume found."""
    # 260 sequences: the first file of 256 trains, the second validates. The toy draws fastest.
    data = write_generated_dataset(root / "data", n_train=260, n_test=0, seed=0, workers=1, progress=False,
                                   world="bouncing")
    straight = start_training(train_args(data, out=root / "straight"))  # beside the killed chain
    killed = root / "killed"
    positions = []
    first = run_training(train_args(data, out=killed), "step", STEPS + 2 * BACKUP)
    assert first.returncode == -signal.SIGKILL, first.stderr
    # Each resume is killed at a new kind of moment, then the last one finishes.
    for point, count in (("checkpoint", 1), ("validation", 1), ("plot", 1), (None, 1)):
        positions.append([c.name for c in RunFolder(killed).checkpoints()])
        result = run_training(train_args(data, resume=killed), point, count)
        expected = 0 if point is None else -signal.SIGKILL
        assert result.returncode == expected, (point, result.stderr)
    straight = finished(straight)
    assert straight.returncode == 0, straight.stderr
    return positions


if __name__ == "__main__":
    print(json.dumps(main(Path(os.environ["SCRATCH"]))))
