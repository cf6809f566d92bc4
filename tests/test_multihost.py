"""Several processes (JAX): two processes on localhost train as one process with the same
global batch, only the first writes the run folder, and a process that dies ends the other.

The processes stand in for hosts: each is a JAX process of one CPU device, joined over
localhost (gloo collectives), as hosts are over the network.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from keras_cvae import distributed
from keras_cvae.data.numpy_pipeline import WindowBatches
from keras_cvae.data.shards import Shard
from keras_cvae.run_folder import RunFolder
from keras_cvae.tasks.pose.pipeline import PoseWindows

from background import quick_jax_env

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "multihost_driver.py"
TIMEOUT = 10  # --process-timeout of the runs here
# The processes run JAX whatever the suite's backend: the background JAX run (see
# background.py) runs these tests, overlapping the TensorFlow tests.
IN_THE_JAX_RUN = pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax",
                                    reason="runs in the background JAX run, overlapping the TensorFlow tests")
DEATH_LINE = "Terminating process because the JAX distributed service detected fatal errors"


# ---------------------------------------------------------------------- shares of a batch
@pytest.mark.parametrize("first_batch", [0, 3])
def test_the_shares_of_the_processes_make_the_single_process_batch(first_batch):
    whole = WindowBatches(12, 4, True, seed=3, first_batch=first_batch)
    shares = [WindowBatches(12, 4, True, seed=3, first_batch=first_batch, shard=Shard(i, 2)) for i in range(2)]
    for batch in range(6):  # over 10 sequences batch 2 spans two passes
        parts = [share.items(batch, 10) for share in shares]
        assert [len(part) for part in parts] == [2, 2]
        assert parts[0] + parts[1] == whole.items(batch, 10)
    # Over 12 sequences, batches 0-2 are one pass: no sequence is read by both processes.
    seen = [{item for batch in range(3) for item, _ in share.items(batch, 12)} for share in shares]
    assert seen[0] | seen[1] == set(range(12)) and not seen[0] & seen[1]


def test_pose_shares_make_the_single_process_batch():
    frames = np.zeros((7, 2, 1, 1, 3), np.uint8)
    whole = PoseWindows(frames, frames, 4, True, seed=1, start_batch=2)
    shares = [PoseWindows(frames, frames, 4, True, seed=1, start_batch=2, shard=Shard(i, 2)) for i in range(2)]
    for batch in range(4):
        assert shares[0].items(batch) + shares[1].items(batch) == whole.items(batch)


def test_tf_data_deals_the_records_out(small_bair_dir):
    pytest.importorskip("tensorflow")
    from keras_cvae.data import iterate_numpy, make_dataset

    root, _ = small_bair_dir

    def first_batches(shard):
        dataset = make_dataset(root, "train", n_past=1, n_future=1, batch_size=4, training=True, seed=1,
                               engine="tf", shard=shard)
        return list(iterate_numpy(dataset, 3))

    shares = [first_batches(Shard(i, 2)) for i in range(2)]
    assert [batch["frames"].shape[0] for batch in shares[0] + shares[1]] == [2] * 6
    assert not all(np.array_equal(a["frames"], b["frames"]) for a, b in zip(*shares))


def test_a_batch_that_the_processes_cannot_share_evenly_is_refused():
    from keras_cvae.data import DataError

    with pytest.raises(DataError, match="multiple of the 3 processes"):
        Shard(0, 3).rows(4)
    # A short validation batch is cut to a multiple of the devices it is split over.
    batch = {"frames": np.arange(7)}
    assert Shard(1, 2).take(batch, multiple=2)["frames"].tolist() == [2, 3]
    assert Shard(0, 2).take({"frames": np.arange(3)}, multiple=2) is None


# ---------------------------------------------------------------------- settings
def test_flags_or_keras_variables_describe_the_processes():
    environ = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "host0:1234,host1:1234",
               "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "1"}
    group = distributed.process_group(environ=environ)
    assert (group.coordinator, group.count, group.index) == ("host0:1234", 2, 1)
    assert distributed.process_group("h:9", 4, 3, 30, environ=environ).timeout_seconds == 30
    assert distributed.process_group(environ={}) is None
    assert distributed.process_group("h:9", 1, 0, environ={}) is None  # one process: nothing to join
    with pytest.raises(distributed.ProcessGroupError, match="missing: --process-id"):
        distributed.process_group("h:9", 2, environ={})
    with pytest.raises(distributed.ProcessGroupError, match="must be in 0..1"):
        distributed.process_group("h:9", 2, 2, environ={})
    with pytest.raises(distributed.ProcessGroupError, match="HOST:PORT"):
        distributed.process_group("h", 2, 0, environ={})


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") == "jax", reason="the TensorFlow refusal")
def test_several_processes_on_tensorflow_is_one_clear_error(capsys):
    from keras_cvae.cli import train

    code = train.main(["--backend", "tensorflow", "--coordinator", "127.0.0.1:1", "--num-processes", "2",
                       "--process-id", "0", "--preset", "tiny"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert lines == ["error: several processes (--num-processes 2) need the JAX backend (--backend jax); "
                     "TensorFlow trains in one process"]


# ---------------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_args(data, out, *extra):
    """Tiny, 2 epochs of 1 step (a checkpoint after each), the NumPy engine (its data order
    is exact, on resume too)."""
    return ["--backend", "jax", "--preset", "tiny", "--data", str(data), "--out", str(out), "--epochs", "2",
            "--steps-per-epoch", "1", "--validation-steps", "1", "--batch-size", "4",
            "--data-engine", "numpy", "--verbose", "0", "--seed", "3", *extra]


def start(args, watched, kill_at_step=0, devices=1):
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONDONTWRITEBYTECODE": "1", **quick_jax_env(devices)}
    for name in (distributed.ADDRESSES_VARIABLE, distributed.COUNT_VARIABLE, distributed.INDEX_VARIABLE):
        env.pop(name, None)
    command = [sys.executable, str(DRIVER), str(watched), str(kill_at_step), *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_pair(data, out, watched, resume=False, kill_at_step=(0, 0)):
    port = free_port()
    processes = []
    for index in range(2):
        group = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(index),
                 "--process-timeout", str(TIMEOUT)]
        args = (["--resume", str(out), "--data-engine", "numpy", "--verbose", "0", *group]
                if resume else train_args(data, out, *group))
        processes.append(start(args, watched, kill_at_step[index]))
    return processes


def finished(process, timeout=900):
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def writes_of(result) -> list:
    line = [line for line in result.stdout.splitlines() if line.startswith("WRITES: ")][-1]
    return json.loads(line.removeprefix("WRITES: "))


def weights(path) -> dict:
    """Every array of a Keras weights file (.weights.h5 or the one inside model.keras), by path."""
    arrays = {}
    with h5py.File(path, "r") as stream:
        stream.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    return arrays


def largest_difference(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a
               if np.asarray(a[k]).size)


@pytest.fixture(scope="module")
def scenario(generated_dir, tmp_path_factory):
    """One run (global batch 4, 2 epochs of 1 step) on one process and on two, where one
    of the two dies in epoch 2 and both then resume; process starts are the cost here, so
    every check reads this one scenario.

    The one process splits the batch over 2 devices as the two processes do (one device
    each), so that both sum the gradients in the same order: Adam's first steps turn even
    rounding differences of near-zero gradients (a conv bias before BatchNorm) into
    differences of 1e-5, and one device against two is `test_data_parallel`'s comparison.
    """
    root = tmp_path_factory.mktemp("multihost")
    watched = root / "watched"
    watched.mkdir()
    single = start(train_args(generated_dir, root / "single", "--devices", "2"), root / "elsewhere", devices=2)
    # Process 1 dies after the step of epoch 2: process 0 waits for it in epoch 2's validation.
    survivor, victim = start_pair(generated_dir, watched / "pair", watched, kill_at_step=(0, 2))
    victim = finished(victim)
    died = time.monotonic()
    survivor = finished(survivor, timeout=TIMEOUT + 120)
    waited = time.monotonic() - died
    checkpoints_left = [c.name for c in RunFolder(watched / "pair").checkpoints()]
    resumed = [finished(process) for process in start_pair(generated_dir, watched / "pair", watched, resume=True)]
    single = finished(single)
    assert single.returncode == 0, single.stderr[-3000:]
    return {"single": RunFolder(root / "single"), "pair": RunFolder(watched / "pair"), "victim": victim,
            "survivor": survivor, "waited": waited, "checkpoints_left": checkpoints_left, "resumed": resumed}


@pytest.mark.slow
@pytest.mark.jax
@IN_THE_JAX_RUN
def test_a_process_that_dies_ends_the_other_with_one_line(scenario):
    victim, survivor = scenario["victim"], scenario["survivor"]
    assert victim.returncode == -signal.SIGKILL, victim.stderr[-3000:]
    assert survivor.returncode != 0
    # gloo (CPUs) fails at once and the survivor says so; a collective that waits instead
    # (NCCL) ends at the heartbeat timeout with JAX's line.
    last = survivor.stderr.strip().splitlines()[-1]
    assert last.startswith("error: process 0 of 2: another process stopped") or DEATH_LINE in survivor.stderr, \
        survivor.stderr[-3000:]
    assert scenario["waited"] < TIMEOUT + 60, scenario["waited"]
    assert scenario["checkpoints_left"] == ["epoch-0001"]


@pytest.mark.slow
@pytest.mark.jax
@IN_THE_JAX_RUN
def test_two_processes_train_and_resume_as_one_with_the_global_batch(scenario):
    single, pair = scenario["single"], scenario["pair"]
    for result in scenario["resumed"]:
        assert result.returncode == 0, result.stderr[-3000:]
    after_one, after_two = (weights(single.checkpoint(epoch).weights_path) for epoch in (1, 2))
    assert largest_difference(after_one, after_two) > 1e-4  # the second step moved the weights
    assert largest_difference(after_one, weights(pair.checkpoint(1).weights_path)) <= 1e-5
    assert largest_difference(after_two, weights(pair.checkpoint(2).weights_path)) <= 1e-5
    single_log, pair_log = (run.log_file.read_text().splitlines() for run in (single, pair))
    assert single_log[0] == pair_log[0] and len(single_log) == len(pair_log) == 3
    for single_row, pair_row in zip(single_log[1:], pair_log[1:]):  # losses, validation PSNR
        np.testing.assert_allclose(np.array(single_row.split(","), float), np.array(pair_row.split(","), float),
                                   rtol=1e-4)
    info = pair.read_info()
    assert (info["processes"], info["devices"]) == (2, 1)


@pytest.mark.slow
@pytest.mark.jax
@IN_THE_JAX_RUN
def test_only_the_first_process_writes(scenario):
    first, second = (writes_of(result) for result in scenario["resumed"])
    assert any(line.endswith(".lock") for line in first), first  # the watch sees the first's writes
    assert any("epoch-0002" in line for line in first), first
    assert second == []
