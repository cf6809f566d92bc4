"""make_dataset: a killed generation leaves nothing a reader takes for data; the next run
cleans up after it."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_cvae.data import DataError, describe_source

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # starts processes


def make_dataset(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "keras_cvae.cli.make_dataset", "--quiet", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_killed_generation_leaves_no_dataset_and_the_next_run_cleans_up(tmp_path):
    out = tmp_path / "pushing"
    process = make_dataset("--out", str(out), "--train", "520", "--test", "4", "--workers", "1")
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".pushing.tmp-*/train/*.tfrecords")):  # the first file is written
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    with pytest.raises(DataError, match="directory not found"):
        describe_source(out)
    staging = list(tmp_path.glob(".pushing.tmp-*"))
    assert len(staging) == 1

    again = make_dataset("--out", str(out), "--train", "2", "--test", "1", "--workers", "1", "--world", "bouncing")
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    assert f"removed 1 unfinished build(s) that a killed process left beside {out}: {staging[0].name}" in stderr
    assert [p.name for p in tmp_path.iterdir()] == ["pushing"]
    assert describe_source(out)["splits"] == {"train": 2, "test": 1}
