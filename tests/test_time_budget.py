"""Training to a time budget: the plan's arithmetic, and budgeted runs on a fake clock.

The runs use a clock that advances one second per reading, so that each step and each
epoch's end "take" one second and the plans are the same on every machine: the test
checks the planning and stopping logic, not this machine's speed.
"""

import dataclasses
import json

import keras
import numpy as np
import pytest

from keras_cvae import time_budget, training
from keras_cvae.run_folder import RunError, RunFolder
from keras_cvae.time_budget import plan_epochs
from test_training import tiny_job


def test_a_plan_fits_whole_epochs_and_ends_the_schedules_with_the_last_step():
    plan = plan_epochs(epochs_done=3, steps_per_epoch=10, seconds_left=100.0, step_seconds=2.0,
                       epoch_overhead_seconds=5.0, schedule_position=40.0, schedule_steps=200)
    assert plan.end_epoch == 3 + 4  # 100 s / (10 x 2 s + 5 s) = 4 epochs
    assert plan.position(30) == pytest.approx(40.0)  # continuous where it starts
    assert plan.position(70) == pytest.approx(200.0)  # at the schedules' end with the last step


def test_a_plan_with_no_time_or_no_schedule_left_stands_the_clock_still():
    no_time = plan_epochs(epochs_done=3, steps_per_epoch=10, seconds_left=20.0, step_seconds=2.0,
                          epoch_overhead_seconds=5.0, schedule_position=40.0, schedule_steps=200)
    assert no_time.end_epoch == 3 and no_time.rate == 0.0 and no_time.position(1000) == 40.0
    done = plan_epochs(epochs_done=3, steps_per_epoch=10, seconds_left=1e6, step_seconds=2.0,
                       epoch_overhead_seconds=5.0, schedule_position=200.0, schedule_steps=200)
    assert done.end_epoch > 3 and done.rate == 0.0 and done.position(10**6) == 200.0


class FakeTime:
    """A `time` module whose clock advances one second per reading."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        self.now += 1.0
        return self.now


@pytest.fixture
def fake_clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(time_budget, "time", fake)
    monkeypatch.setattr(training, "time", fake)
    return fake


def schedule_position(model):
    offset, rate = keras.ops.convert_to_numpy(model.schedule_clock)
    return float(offset + rate * int(keras.ops.convert_to_numpy(model.optimizer.iterations)))


pytestmark = pytest.mark.slow


# On JAX: the rehearsal's flagship stage is a budgeted JAX run (test_gpu_session.py), and
# test_backends.py checks the schedules inside one jitted JAX fit.
def test_a_budgeted_run_stops_at_its_planned_epoch_with_its_schedules_complete(generated_dir, tmp_path,
                                                                               fake_clock):
    # 12 "seconds": the first epoch (2 steps) measures 1 s a step and 1 s an epoch's end,
    # so at the second epoch's start 8 s are left: 2 more epochs of 3 s.
    job = tiny_job(generated_dir, out=tmp_path / "run", time_limit_minutes=0.2)
    result = training.train(job)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["time_limit"]["end_epoch"] == info["epochs_done"] == 3
    assert info["time_limit"]["step_seconds"] == 1.0
    assert result.steps == result.session_steps == 3 * job.train.steps_per_epoch
    assert "as planned" in result.budget_note and "schedules complete" in result.budget_note
    assert RunFolder(tmp_path / "run").checkpoints()[-1].name == "epoch-0003"
    # The first epoch holds the schedules at their start; the last step reaches their end.
    assert result.history["kl_anneal"][0] == 0.0
    assert result.history["kl_anneal"][-1] > 0.0
    model = RunFolder(tmp_path / "run").load_model()
    assert np.allclose(keras.ops.convert_to_numpy(model.schedule_clock), info["time_limit"]["schedule_clock"])
    training.compile_model(model, job.train)
    model.optimizer.iterations.assign(result.steps)
    assert schedule_position(model) == pytest.approx(job.train.total_steps)


def test_a_budget_spent_mid_epoch_leaves_a_backup_that_resumes(generated_dir, tmp_path, fake_clock):
    # 3 "seconds" and an epoch of 6 one-second steps: the run starts at 1 s, its first step
    # ends at 3 s, and after the second (4 s) one more would end past 4 s: it stops there.
    job = tiny_job(generated_dir, out=tmp_path / "run", time_limit_minutes=0.05)
    job = dataclasses.replace(job, train=dataclasses.replace(job.train, steps_per_epoch=6))
    result = training.train(job)
    run = RunFolder(tmp_path / "run")
    assert result.steps == 2 and "2 steps into epoch 1" in result.budget_note
    assert [c.name for c in run.checkpoints()] == ["epoch-0000-step-000002"]
    assert run.model_file.is_file()
    assert json.loads(run.run_file.read_text())["time_limit"]["stopped"] == {"epoch": 0, "step": 2}
    resume = dataclasses.replace(job, out=None, resume=run.path, time_limit_minutes=None)
    with pytest.raises(RunError, match="--time-limit"):
        training.train(resume)
    with pytest.raises(RunError, match="--epochs cannot extend it"):
        training.train(dataclasses.replace(resume, resume_changes={"epochs": 5}))
    fake_clock.now = 0.0
    # It finishes the epoch (4 steps, to 6 s), then 9 s are left for one more (7 s).
    resumed = training.train(dataclasses.replace(resume, time_limit_minutes=0.25))
    assert resumed.steps == 12 and resumed.session_steps == 10


def test_a_time_limit_must_be_a_positive_number_of_minutes(generated_dir):
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"time limit \(--time-limit\)"):
            tiny_job(generated_dir, time_limit_minutes=bad)
